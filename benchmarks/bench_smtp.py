"""Speed of the SMTP observer alone, on synthetic sessions fed the way the flow layer feeds it.

Two workloads:
- `data`: one session carrying a 10 MB message (base64 body, 76-character lines) in 1460-byte
  segments; the time of the message's segments alone gives the DATA throughput.
- `dialogue`: a command-heavy session (many small transactions, pipelined MAIL/RCPT/DATA,
  replies for each), fed one segment per command group and reply group.

    .venv/bin/python benchmarks/bench_smtp.py [--size-mb 10] [--chunk 1460] [--repeat 5]
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analyzer._common import Direction, FrameRef
from analyzer.smtp import SmtpObserver
from analyzer.smtp.events import DataEnd

C = Direction.CLIENT_TO_SERVER
S = Direction.SERVER_TO_CLIENT
FRAME = FrameRef("bench", 1)

GREETING = b"220 mx.example.org ESMTP Postfix\r\n"
EHLO = b"EHLO client.example.com\r\n"
EHLO_REPLY = (
    b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-VRFY\r\n250-ETRN\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n"
)
ENVELOPE = b"MAIL FROM:<alice@example.com> SIZE=%d\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
ENVELOPE_REPLY = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
QUEUED = b"250 2.0.0 Ok: queued as 4Xb1Yz2Kq3\r\n"


def message(size: int) -> bytes:
    """A message of about `size` octets: headers, then a base64 attachment."""
    headers = (
        b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;\r\n"
        b"\th=from:to:subject:date; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
        b"\tb=dGVzdHNpZ25hdHVyZQ==\r\n"
        b"From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\n"
        b"Subject: report\r\nMessage-ID: <1@example.com>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    raw = bytes(range(256)) * (size * 3 // 4 // 256 + 1)
    encoded = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    return headers + encoded[: size - len(headers)].rsplit(b"\r\n", 1)[0] + b"\r\n"


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def bench_data(size: int, chunk: int) -> tuple[float, int]:
    """Seconds spent feeding the message's segments, and the message size the observer saw."""
    body = message(size) + b".\r\n"
    segments = list(chunks(body, chunk))
    observer = SmtpObserver()
    offsets = {C: 0, S: 0}

    def feed(direction: Direction, data: bytes) -> list[object]:
        events = observer.feed(direction, data, offset=offsets[direction], ts=0.0, frame=FRAME)
        offsets[direction] += len(data)
        return list(events)

    feed(S, GREETING)
    feed(C, EHLO)
    feed(S, EHLO_REPLY)
    feed(C, ENVELOPE % len(body))
    feed(S, ENVELOPE_REPLY)
    events: list[object] = []
    start = time.perf_counter()
    for segment in segments:
        events += feed(C, segment)
    elapsed = time.perf_counter() - start
    ends = [e for e in events if isinstance(e, DataEnd)]
    assert len(ends) == 1 and ends[0].complete, "the message did not end"
    return elapsed, ends[0].size


def dialogue(transactions: int) -> list[tuple[Direction, bytes]]:
    steps: list[tuple[Direction, bytes]] = [(S, GREETING), (C, EHLO), (S, EHLO_REPLY)]
    body = b"Subject: t\r\nFrom: a@example.com\r\n\r\nhello\r\n.\r\n"
    for _ in range(transactions):
        steps += [
            (C, ENVELOPE % len(body)),
            (S, ENVELOPE_REPLY),
            (C, body),
            (S, QUEUED),
            (C, b"NOOP\r\n"),
            (S, b"250 2.0.0 Ok\r\n"),
            (C, b"RSET\r\n"),
            (S, b"250 2.0.0 Ok\r\n"),
        ]
    steps += [(C, b"QUIT\r\n"), (S, b"221 2.0.0 Bye\r\n")]
    return steps


def bench_dialogue(transactions: int) -> tuple[float, int, int]:
    """Seconds, octets and events of a command-heavy session."""
    steps = dialogue(transactions)
    observer = SmtpObserver()
    offsets = {C: 0, S: 0}
    octets = 0
    events = 0
    start = time.perf_counter()
    for direction, data in steps:
        events += len(
            observer.feed(direction, data, offset=offsets[direction], ts=0.0, frame=FRAME)
        )
        offsets[direction] += len(data)
        octets += len(data)
    events += len(observer.feed_eof(ts=0.0))
    return time.perf_counter() - start, octets, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=10.0)
    parser.add_argument("--chunk", type=int, default=1460)
    parser.add_argument("--transactions", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    size = int(args.size_mb * 1_000_000)

    best = min(bench_data(size, args.chunk)[0] for _ in range(args.repeat))
    print(
        f"DATA: {size / 1e6:.1f} MB message in {args.chunk}-byte segments: "
        f"{best * 1000:.1f} ms, {size / best / 1e6:.0f} MB/s"
    )

    runs = [bench_dialogue(args.transactions) for _ in range(args.repeat)]
    seconds, octets, events = min(runs)
    print(
        f"dialogue: {args.transactions} transactions, {octets / 1e6:.2f} MB, {events} events: "
        f"{seconds * 1000:.1f} ms, {octets / seconds / 1e6:.1f} MB/s, "
        f"{events / seconds / 1000:.0f}k events/s"
    )


if __name__ == "__main__":
    main()
