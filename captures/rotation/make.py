"""Regenerates `captures/rotation/`: a wrapped tcpdump ring buffer of an outbound mail relay.

The story (see README.md beside this file): the sending MTA `mail.example.org` (198.51.100.25)
delivers to three partners for about an hour and a half, capturing on its own interface with
`tcpdump -w relay.pcap -C … -W 4`. At 10:40 UTC partner A replaces its firewall with a PIX that
runs `inspect esmtp` without `allow-tls` and has the signature-header bug (DOMAIN.md §1): from
then on A's STARTTLS arrives as `XXXXXXXA`, unsigned mail goes out in cleartext, and every
DKIM-signed message is reset right after its DKIM-Signature header and retried by the relay's
queue, failing the same way each time. Partners B and C keep working STARTTLS.

Only the client-side capture exists (the relay's own). The ring buffer wrapped once: the first
file was overwritten, so the oldest surviving file starts in the middle of the traffic and the
names (`relay.pcap0` … `relay.pcap3`) do not sort in time order.

Built with the sample generator's building blocks (`generate.py` for dialogues, `_tcp.py` for
the wire); everything derives from a fixed seed, so two runs give identical bytes.
Run: `.venv/bin/python captures/rotation/make.py [--out DIR] [--check]`.
This script does not analyse captures.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _dialogues import (  # noqa: E402
    ESA,
    POSTFIX,
    Envelope,
    Message,
    ServerStyle,
    Signature,
    data_payload,
    header_end,
    mask_ehlo_keywords,
    postfix_queue_id,
    render_message,
)
from _tcp import TOPOLOGY, Connection, internet_checksum, pcap_file, simulate  # noqa: E402
from generate import (  # noqa: E402
    _BODIES,
    CLIENT_NAME,
    LOCAL_TZ,
    _deliver,
    _ehlo,
    _greet,
    _quit,
    _report_body,
    _Session,
    _starttls,
    _think,
)

SEED = 20240319
"""Every random choice (times, peers, ports, ISNs, delays, keys, ciphertext) derives from this."""

FIRST_MAIL = datetime(2024, 3, 19, 9, 52, 0, tzinfo=UTC)
"""When the relay starts sending (the first, overwritten file of the ring buffer)."""
LAST_MAIL = datetime(2024, 3, 19, 11, 28, 0, tzinfo=UTC)
"""No new message is queued after this."""
UPGRADE = datetime(2024, 3, 19, 10, 40, 0, tzinfo=UTC)
"""Partner A's firewall change: from here on its SMTP is inspected."""
MEAN_GAP_S = 150.0
"""Mean time between two new messages from people (exponential inter-arrival times)."""
STATUS_EVERY_S = 900
"""The monitoring system mails a status report to partner A's NOC every 15 minutes."""

RETRY_BACKOFF_S = (300, 600, 1200, 2400)
"""Postfix's retry schedule for a deferred message: `minimal_backoff_time` 300 s, doubling up
to `maximal_backoff_time` (postconf(5)); the delay before the 2nd, 3rd, … attempt."""

RING_FILES = 4
"""`tcpdump -W 4`: the ring keeps four files, then overwrites the oldest."""
ROTATE_BYTES = 80_000
"""`tcpdump -C`: a file is closed once it is larger than this (tcpdump counts millions of bytes;
the rule is the same: checked before each packet is written)."""
BASENAME = "relay.pcap"
"""`tcpdump -w relay.pcap -W 4` names the files relay.pcap0 … relay.pcap3."""
PCAP_HEADER_LEN = 24
PCAP_RECORD_HEADER_LEN = 16
"""Classic pcap layout (draft-ietf-opsawg-pcap §4 and §5)."""
ETHERNET_LEN = 14
IPV4_ID_AT = ETHERNET_LEN + 4
IPV4_CHECKSUM_AT = ETHERNET_LEN + 10
IPV4_SRC_AT = ETHERNET_LEN + 12
"""IPv4 header fields (RFC 791 §3.1) after an Ethernet II header."""

RELAY = "alice@example.org"
NOTIFIER = "noreply@alerts.example.org"
"""System notifications: a domain the relay does not sign for."""


@dataclass(frozen=True, slots=True)
class Partner:
    """A receiving MTA and how to reach it."""

    name: str
    address: str
    style: ServerStyle
    domain: str
    after_tls: tuple[str, ...]
    """What it offers in the EHLO reply once TLS is up."""
    weight: int
    """Share of the relay's messages that go to it."""
    inspected_from: datetime | None = None
    """When a firewall in front of it started inspecting SMTP."""


PARTNERS = (
    Partner(
        "A",
        "203.0.113.10",
        replace(
            POSTFIX,
            hostname="mx.partner-a.example",
            banner_text="mx.partner-a.example ESMTP Postfix",
        ),
        "partner-a.example",
        tuple(k for k in POSTFIX.ehlo_keywords if k != "STARTTLS"),
        5,
        inspected_from=UPGRADE,
    ),
    Partner(
        "B",
        "203.0.113.20",
        replace(
            POSTFIX,
            hostname="mx1.partner-b.example",
            banner_text="mx1.partner-b.example ESMTP Postfix",
        ),
        "partner-b.example",
        tuple(k for k in POSTFIX.ehlo_keywords if k != "STARTTLS"),
        3,
    ),
    Partner(
        "C",
        "203.0.113.30",
        replace(ESA, hostname="esa.partner-c.example", banner_text="esa.partner-c.example ESMTP"),
        "partner-c.example",
        ("8BITMIME", "SIZE 10485760"),
        2,
    ),
)

SUBJECTS = (
    "Q1 figures",
    "Relay report",
    "Maintenance window",
    "Ihre Anfrage",
    "Order confirmation",
    "Meeting notes",
    "Invoice 2024-0319",
    "Re: contract draft",
)
NOTIFICATIONS = ("Backup finished", "Disk usage warning", "Certificate renewal reminder")


@dataclass(frozen=True, slots=True)
class Queued:
    """One message in the relay's queue."""

    number: int
    partner: Partner
    queued_us: int
    signed: bool
    envelope: Envelope
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt: a TCP connection to the partner."""

    message: Queued
    number: int
    """1 for the first attempt."""
    start_us: int
    outcome: str
    """'tls', 'cleartext' or 'reset'."""


def _us(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def _messages(rng: random.Random) -> list[Queued]:
    """People's mail at random times (signed), the monitoring system's now and then and every
    quarter of an hour to partner A's NOC (unsigned)."""
    found: list[tuple[int, Partner, bool, Envelope, str, str]] = []
    t = _us(FIRST_MAIL)
    weights = [p.weight for p in PARTNERS]
    while t <= _us(LAST_MAIL):
        partner = rng.choices(PARTNERS, weights)[0]
        signed = rng.random() < 0.75
        local = rng.choice(("bob", "carol", "dave", "erin", "frank"))
        to = (f"{local}@{partner.domain}",)
        if signed:
            subject = rng.choice(SUBJECTS)
            body = (
                _report_body(rng, rng.randint(4, 30))
                if "report" in subject
                else (rng.choice(_BODIES))
            )
            envelope = Envelope(RELAY, to)
        else:
            subject = rng.choice(NOTIFICATIONS)
            body = f"{subject} on host{rng.randint(1, 9)}.example.org.\n\n-- \nmonitoring\n"
            envelope = Envelope(NOTIFIER, to)
        found.append((t, partner, signed, envelope, subject, body))
        t += round(rng.expovariate(1 / MEAN_GAP_S) * 1_000_000) + 5_000_000
    t = _us(FIRST_MAIL) + 3 * 60_000_000
    while t <= _us(LAST_MAIL):
        at = t + rng.randint(0, 4_000_000)
        hosts = rng.randint(40, 44)
        body = f"All {hosts} hosts up, queues empty.\n\n-- \nmonitoring\n"
        envelope = Envelope(NOTIFIER, (f"noc@{PARTNERS[0].domain}",))
        found.append((at, PARTNERS[0], False, envelope, "Status report", body))
        t += STATUS_EVERY_S * 1_000_000
    found.sort(key=lambda m: m[0])
    return [
        Queued(n, p, at, signed, env, subject, body)
        for n, (at, p, signed, env, subject, body) in enumerate(found)
    ]


def _inspected(partner: Partner, start_us: int) -> bool:
    return partner.inspected_from is not None and start_us >= _us(partner.inspected_from)


def _attempts(messages: Sequence[Queued], end_us: int) -> list[Attempt]:
    """Every delivery attempt, retries included, in start order."""
    out: list[Attempt] = []
    for message in messages:
        start = message.queued_us
        for number in range(1, len(RETRY_BACKOFF_S) + 2):
            inspected = _inspected(message.partner, start)
            outcome = "tls" if not inspected else "reset" if message.signed else "cleartext"
            out.append(Attempt(message, number, start, outcome))
            if outcome != "reset" or number > len(RETRY_BACKOFF_S):
                break
            start += RETRY_BACKOFF_S[number - 1] * 1_000_000
            if start > end_us:
                break
    out.sort(key=lambda a: a.start_us)
    return out


def _render(message: Queued, rng: random.Random) -> bytes:
    """The message as the relay queued it: the same bytes on every attempt."""
    moment = datetime.fromtimestamp(message.queued_us // 1_000_000, tz=UTC)
    queue_id = postfix_queue_id(rng)
    sender = message.envelope.mail_from
    name = "Alice Example" if sender == RELAY else "Monitoring"
    rcpt = message.envelope.rcpt_to[0]
    return render_message(
        Message(
            from_=f"{name} <{sender}>",
            to=f"{rcpt.split('@')[0].capitalize()} <{rcpt}>",
            subject=message.subject,
            date=moment.astimezone(LOCAL_TZ).strftime("%a, %d %b %Y %H:%M:%S %z"),
            message_id=f"<{moment:%Y%m%d%H%M%S}.{queue_id}@{CLIENT_NAME}>",
            body=message.body,
            signature=Signature.DKIM if message.signed else Signature.NONE,
            received=f"by {CLIENT_NAME} (Postfix, from userid 1000)\r\n\tid {queue_id}; "
            f"{moment.astimezone(LOCAL_TZ):%a, %d %b %Y %H:%M:%S %z} (CET)",
        ),
        rng,
        timestamp=message.queued_us // 1_000_000,
    )


def _dialogue(attempt: Attempt, payload: bytes, rng: random.Random) -> _Session:
    """Script one attempt; returns the session (its script holds the dialogue)."""
    partner = attempt.message.partner
    s = _Session(rng, partner.style, attempt.start_us)
    envelope = attempt.message.envelope
    _greet(s)
    if attempt.outcome == "tls":
        _ehlo(s)
        _starttls(s)
        seen = _ehlo(s, partner.after_tls)
        _deliver(s, seen, envelope, payload)
        return s
    seen = _ehlo(s, rewrite=mask_ehlo_keywords)
    if attempt.outcome == "cleartext":
        _deliver(s, seen, envelope, payload)
        return s
    # PIX < 7.2(3): the signature header crosses in a segment of its own, the next one is
    # dropped and both ends get a RST.
    cut = header_end(data_payload(payload), b"DKIM-Signature")
    _deliver(s, seen, envelope, payload, breaks=(cut,), drop_from=cut)
    return s


def _records(pcap: bytes) -> list[tuple[int, bytes]]:
    """(timestamp µs, frame) of every record of a little-endian microsecond pcap."""
    out = []
    pos = PCAP_HEADER_LEN
    while pos < len(pcap):
        sec, usec, incl, _ = struct.unpack_from("<IIII", pcap, pos)
        pos += PCAP_RECORD_HEADER_LEN
        out.append((sec * 1_000_000 + usec, pcap[pos : pos + incl]))
        pos += incl
    return out


def _renumber(frames: list[tuple[int, bytes]], host: str, rng: random.Random) -> None:
    """One IP-ID counter for `host` across all its connections (each partner was simulated on
    its own, with a counter of its own), checksums recomputed."""
    src = bytes(int(x) for x in host.split("."))
    ip_id = rng.getrandbits(16)
    for i, (ts, frame) in enumerate(frames):
        if frame[IPV4_SRC_AT : IPV4_SRC_AT + 4] != src:
            continue
        data = bytearray(frame)
        header_len = (data[ETHERNET_LEN] & 0x0F) * 4
        struct.pack_into("!H", data, IPV4_ID_AT, ip_id)
        struct.pack_into("!H", data, IPV4_CHECKSUM_AT, 0)
        checksum = internet_checksum(bytes(data[ETHERNET_LEN : ETHERNET_LEN + header_len]))
        struct.pack_into("!H", data, IPV4_CHECKSUM_AT, checksum)
        frames[i] = (ts, bytes(data))
        ip_id = (ip_id + 1) & 0xFFFF


def _ring(frames: Sequence[tuple[int, bytes]]) -> tuple[list[list[tuple[int, bytes]]], int]:
    """Cut the packets as `tcpdump -C` does; returns the surviving files by ring slot and how
    many files were written in all."""
    chunks: list[list[tuple[int, bytes]]] = [[]]
    size = PCAP_HEADER_LEN
    for ts, frame in frames:
        if size > ROTATE_BYTES:
            chunks.append([])
            size = PCAP_HEADER_LEN
        chunks[-1].append((ts, frame))
        size += PCAP_RECORD_HEADER_LEN + len(frame)
    slots: list[list[tuple[int, bytes]]] = [[] for _ in range(RING_FILES)]
    for index, chunk in enumerate(chunks):
        slots[index % RING_FILES] = chunk
    return slots, len(chunks)


@dataclass(frozen=True, slots=True)
class RotationSet:
    files: tuple[tuple[str, bytes], ...]
    """(file name, pcap bytes) by name."""
    attempts: tuple[Attempt, ...]
    written: int
    """Files tcpdump wrote in all (those beyond four overwrote the oldest)."""
    first_kept_us: int
    """Time of the first packet that survived."""


def build() -> RotationSet:
    rng = random.Random(f"{SEED}:rotation")
    messages = _messages(rng)
    attempts = _attempts(messages, _us(LAST_MAIL) + 120_000_000)
    payloads = {m.number: _render(m, rng) for m in messages}
    ports: set[int] = set()
    frames: list[tuple[int, bytes]] = []
    for partner in PARTNERS:
        connections = []
        for attempt in attempts:
            if attempt.message.partner is not partner:
                continue
            s = _dialogue(attempt, payloads[attempt.message.number], rng)
            closer = None if attempt.outcome == "reset" else _quit(s)
            port = rng.randint(32768, 60999)
            while port in ports:
                port = rng.randint(32768, 60999)
            ports.add(port)
            connections.append(
                Connection(
                    s.script.done(closer, _think(rng, 0.1, 0.3)),
                    attempt.start_us,
                    port,
                    rng.randint(61000, 64999),
                )
            )
        topology = replace(TOPOLOGY, server_public_ip=partner.address)
        pair = simulate(connections, random.Random(f"{SEED}:{partner.name}:tcp"), topology)
        frames.extend(_records(pair.client_side))
    frames.sort(key=lambda r: r[0])
    _renumber(frames, TOPOLOGY.client_ip, rng)
    slots, written = _ring(frames)
    if written <= RING_FILES:
        raise ValueError(f"the ring buffer must wrap: {written} files written")
    files = tuple((f"{BASENAME}{i}", pcap_file(chunk)) for i, chunk in enumerate(slots))
    first_kept = min(chunk[0][0] for chunk in slots)
    by_time = sorted(range(RING_FILES), key=lambda i: slots[i][0][0])
    if by_time == sorted(by_time):
        raise ValueError("the file names must not sort in time order")
    return RotationSet(files, tuple(attempts), written, first_kept)


README_BEGIN = "<!-- rotation:begin (written by make.py) -->"
README_END = "<!-- rotation:end -->"


def _utc(ts_us: int) -> str:
    return datetime.fromtimestamp(ts_us / 1_000_000, UTC).strftime("%H:%M:%S")


def table(rotation: RotationSet) -> str:
    """The README's tables: the files in time order, and what each partner got."""
    rows = [
        "| file | first packet (UTC) | last packet (UTC) | packets | bytes |",
        "|---|---|---|---|---|",
    ]
    files = []
    for name, data in rotation.files:
        records = _records(data)
        files.append((records[0][0], name, records[-1][0], len(records), len(data)))
    for first, name, last, count, size in sorted(files):
        rows.append(f"| `{name}` | {_utc(first)} | {_utc(last)} | {count} | {size:,} |")
    kept = [a for a in rotation.attempts if a.start_us >= rotation.first_kept_us]
    rows += [
        "",
        "| partner | server | attempts | over TLS | cleartext (masked) | reset after "
        "DKIM-Signature | messages retried |",
        "|---|---|---|---|---|---|---|",
    ]
    for partner in PARTNERS:
        mine = [a for a in kept if a.message.partner is partner]
        retried = {a.message.number for a in mine if a.number > 1}
        rows.append(
            f"| {partner.name} | `{partner.address}` ({partner.style.hostname}) | {len(mine)} | "
            f"{sum(a.outcome == 'tls' for a in mine)} | "
            f"{sum(a.outcome == 'cleartext' for a in mine)} | "
            f"{sum(a.outcome == 'reset' for a in mine)} | {len(retried)} |"
        )
    return "\n".join(rows)


def refresh_readme(readme: Path, rotation: RotationSet) -> None:
    text = readme.read_text(encoding="utf-8")
    head, sep, rest = text.partition(README_BEGIN)
    _, sep2, tail = rest.partition(README_END)
    if sep and sep2:
        new = f"{head}{README_BEGIN}\n{table(rotation)}\n{README_END}{tail}"
        if new != text:
            readme.write_text(new, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=HERE, help="output folder")
    parser.add_argument(
        "--check",
        action="store_true",
        help="only compare the files on disk with a fresh generation",
    )
    args = parser.parse_args(argv)
    rotation = build()
    if args.check:
        stale = [
            name
            for name, data in rotation.files
            if not (args.out / name).exists() or (args.out / name).read_bytes() != data
        ]
        for name in stale:
            print(f"stale: {args.out / name}")
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in rotation.files:
        (args.out / name).write_bytes(data)
        print(args.out / name)
    if args.out.resolve() == HERE and (HERE / "README.md").exists():
        refresh_readme(HERE / "README.md", rotation)
    return 0


if __name__ == "__main__":
    sys.exit(main())
