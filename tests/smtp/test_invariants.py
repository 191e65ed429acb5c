"""Invariants over any input: the way bytes are cut into segments never changes what is seen, and
nothing a peer sends makes the observer raise or grow without bound."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer._common import Direction, FrameMarks, FrameRef
from analyzer.smtp import SmtpObserver
from analyzer.smtp.events import DataEnd, Event

from .dialogue import C, S

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CLIENT_FRAGMENTS = [
    b"EHLO client.example.com\r\n",
    b"HELO x\r\n",
    b"MAIL FROM:<a@example.com> SIZE=10\r\n",
    b"RCPT TO:<b@example.org>\r\n",
    b"DATA\r\n",
    b"BDAT 5\r\nHELLO",
    b"BDAT 3 LAST\r\nabc",
    b"BDAT x\r\n",
    b"STARTTLS\r\n",
    b"AUTH LOGIN\r\n",
    b"AUTH PLAIN AHUAcA==\r\n",
    b"dXNlcg==\r\n",
    b"*\r\n",
    b"QUIT\r\n",
    b"RSET\r\n",
    b"XXXXXXXX\r\n",
    b"XXXX\n",
    b"DKIM-Signature: v=1; a=rsa-sha256;\r\n",
    b"\tb=abc\r\n",
    b"Subject: x\r\n",
    b"\r\n",
    b".\r\n",
    b"..dot\r\n",
    b"body line\n",
    b"\r\n.\r\n",
    b"\x16\x03\x01\x00\x05hello",
    b"x" * 1200 + b"\r\n",
    b"\x00",
    b"\r",
    b"\n",
    b".",
    b"QUIT",
]
SERVER_FRAGMENTS = [
    b"220 mx.example.org ESMTP\r\n",
    b"220-mx\r\n220 second\r\n",
    b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 STARTTLS\r\n",
    b"250 2.1.0 Ok\r\n",
    b"354 End data with <CR><LF>.<CR><LF>\r\n",
    b"334 VXNlcm5hbWU6\r\n",
    b"235 2.7.0 ok\r\n",
    b"220 2.0.0 Ready to start TLS\r\n",
    b"500 #5.5.1 command not recognized\r\n",
    b"221 Bye\r\n",
    b"garbage\r\n",
    b"250-unfinished\r\n",
    b"\x16\x03\x03\x00\x02ab",
    b"250",
    b"\r\n",
    b"554 no\n",
]


@dataclass(frozen=True)
class Send:
    direction: Direction
    data: bytes


@dataclass(frozen=True)
class Lose:
    direction: Direction
    length: int


@dataclass(frozen=True)
class Close:
    direction: Direction
    reset: bool


Step = Send | Lose | Close

directions = st.sampled_from([C, S])
dialogue_sends = st.one_of(
    st.builds(
        Send,
        st.just(C),
        st.lists(st.sampled_from(CLIENT_FRAGMENTS), min_size=1, max_size=4).map(b"".join),
    ),
    st.builds(
        Send,
        st.just(S),
        st.lists(st.sampled_from(SERVER_FRAGMENTS), min_size=1, max_size=3).map(b"".join),
    ),
)
soup_sends = st.builds(Send, directions, st.binary(min_size=1, max_size=300))
dialogues = st.lists(dialogue_sends, min_size=1, max_size=25)
soups = st.lists(
    st.one_of(
        soup_sends,
        dialogue_sends,
        st.builds(Lose, directions, st.integers(0, 5000)),
        st.builds(Close, directions, st.booleans()),
    ),
    min_size=1,
    max_size=25,
)


def play(steps: list[Step], cuts: list[list[int]] | None = None, **limits: int) -> list[Event]:
    """Feed `steps`; the data of step i is cut at `cuts[i]`. Every piece of one step carries that
    step's frame and time, as the segments of one capture would carry their own."""
    observer = SmtpObserver(**limits)
    offsets = {C: 0, S: 0}
    events: list[Event] = []
    bound = limits.get("max_line", 65536) + limits.get("max_header_block", 256 * 1024) + 1024
    for i, step in enumerate(steps):
        frame = FrameRef("h", i + 1)
        ts = 100.0 + i
        if isinstance(step, Send):
            points = [0, *(cuts[i] if cuts else []), len(step.data)]
            for start, end in itertools.pairwise(points):
                piece = step.data[start:end]
                events += observer.feed(
                    step.direction, piece, offset=offsets[step.direction], ts=ts, frame=frame
                )
                offsets[step.direction] += len(piece)
        elif isinstance(step, Lose):
            events += observer.feed_gap(
                step.direction,
                offset=offsets[step.direction],
                length=step.length,
                ts=ts,
                frame=frame,
            )
            offsets[step.direction] += step.length
        else:
            events += observer.feed_close(
                step.direction,
                reset=step.reset,
                offset=offsets[step.direction],
                ts=ts,
                frame=frame,
            )
        assert observer.buffered(C) <= bound and observer.buffered(S) <= bound
    events += observer.feed_eof(ts=1000.0)
    return events


def cut_points(draw: st.DataObject, steps: list[Step]) -> list[list[int]]:
    cuts: list[list[int]] = []
    for step in steps:
        if isinstance(step, Send) and len(step.data) > 1:
            points = draw.draw(st.sets(st.integers(1, len(step.data) - 1), max_size=12))
            cuts.append(sorted(points))
        else:
            cuts.append([])
    return cuts


@SETTINGS
@given(dialogues, st.data())
def test_a_dialogue_cut_anyhow_gives_the_same_events(
    steps: list[Step], draw: st.DataObject
) -> None:
    assert play(steps, cut_points(draw, steps)) == play(steps)


@SETTINGS
@given(dialogues)
def test_a_dialogue_fed_octet_by_octet_gives_the_same_events(steps: list[Step]) -> None:
    one_by_one = [list(range(1, len(s.data))) if isinstance(s, Send) else [] for s in steps]
    assert play(steps, one_by_one) == play(steps)


@SETTINGS
@given(soups, st.data())
def test_any_bytes_gaps_and_closes_never_raise_and_do_not_depend_on_cuts(
    steps: list[Step], draw: st.DataObject
) -> None:
    assert play(steps, cut_points(draw, steps)) == play(steps)


@SETTINGS
@given(soups, st.data())
def test_small_limits_hold_whatever_the_input(steps: list[Step], draw: st.DataObject) -> None:
    limits = {"max_line": 16, "max_header_block": 40}
    assert play(steps, cut_points(draw, steps), **limits) == play(steps, **limits)


def play_segments(steps: list[Step], cuts: list[list[int]], *, as_runs: bool) -> list[Event]:
    """Feed `steps`, each piece of a step's data as a segment with its own frame and time: one
    by one, or (`as_runs`) all pieces of a step together as one run with their marks."""
    observer = SmtpObserver()
    offsets = {C: 0, S: 0}
    events: list[Event] = []
    for i, step in enumerate(steps):
        if isinstance(step, Send):
            points = [0, *cuts[i], len(step.data)]
            base = offsets[step.direction]
            starts = [base + p for p in points[:-1]]
            frames = [FrameRef("r", 100 * i + j) for j in range(len(starts))]
            times = [100.0 + i + j / 100 for j in range(len(starts))]
            if as_runs:
                events += observer.feed(
                    step.direction,
                    step.data,
                    offset=base,
                    ts=times[0],
                    frame=frames[0],
                    marks=FrameMarks(starts, frames, times),
                )
            else:
                for j, (start, end) in enumerate(itertools.pairwise(points)):
                    events += observer.feed(
                        step.direction,
                        step.data[start:end],
                        offset=base + start,
                        ts=times[j],
                        frame=frames[j],
                    )
            offsets[step.direction] += len(step.data)
        elif isinstance(step, Lose):
            events += observer.feed_gap(
                step.direction, offset=offsets[step.direction], length=step.length, ts=0.0,
                frame=None,
            )  # fmt: skip
            offsets[step.direction] += step.length
        else:
            events += observer.feed_close(
                step.direction, reset=step.reset, offset=offsets[step.direction], ts=0.0,
                frame=None,
            )  # fmt: skip
    return events + observer.feed_eof(ts=1000.0)


@SETTINGS
@given(soups, st.data())
def test_segments_handed_on_as_one_run_give_the_same_events_and_frames(
    steps: list[Step], draw: st.DataObject
) -> None:
    cuts = cut_points(draw, steps)
    assert play_segments(steps, cuts, as_runs=True) == play_segments(steps, cuts, as_runs=False)


def reference(stream: bytes) -> tuple[bool, int, int, int]:
    """(complete, size, bare LF lines, long lines) of mail data, computed the slow, obvious way:
    split into lines, undo the doubled dots (RFC 5321 §4.5.2)."""
    end = (b"\r\n" + stream).find(b"\r\n.\r\n")
    complete = end >= 0
    message = stream[:end] if complete else stream
    lines = message.split(b"\n")
    terminated = lines[:-1]
    size = len(message) - sum(1 for line in lines if line.startswith(b"."))
    bare = sum(1 for line in terminated if not line.endswith(b"\r"))
    long_lines = 0
    for i, line in enumerate(lines):
        content = line[:-1] if i < len(terminated) and line.endswith(b"\r") else line
        if content.startswith(b"."):
            content = content[1:]
        long_lines += len(content) > 998
    return complete, size, bare, long_lines


body_octets = st.lists(
    st.one_of(
        st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"\r\n.", b"\r\n..", b"\r\n.\r\n", b"a"]),
        st.binary(max_size=20),
        st.integers(990, 1010).map(lambda n: b"L" * n),
        st.sampled_from([b"Subject: x\r\n", b"\r\n\r\n", b" folded\r\n"]),
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(body_octets, st.data())
def test_message_statistics_match_a_line_by_line_reference(
    body: bytes, draw: st.DataObject
) -> None:
    steps: list[Step] = [
        Send(S, b"220 mx\r\n"),
        Send(C, b"DATA\r\n"),
        Send(S, b"354 go\r\n"),
        Send(C, body),
    ]
    ends = [e for e in play(steps, cut_points(draw, steps)) if isinstance(e, DataEnd)]
    assert len(ends) == 1
    end = ends[0]
    assert (end.complete, end.size, end.bare_lf_lines, end.long_lines) == reference(body)


@settings(max_examples=300, deadline=None)
@given(body_octets, st.data())
def test_a_message_body_handed_on_as_one_run_is_seen_as_its_segments(
    body: bytes, draw: st.DataObject
) -> None:
    steps: list[Step] = [
        Send(S, b"220 mx\r\n"),
        Send(C, b"DATA\r\n"),
        Send(S, b"354 go\r\n"),
        Send(C, b"Subject: x\r\n\r\n" + body + b"\r\n.\r\nQUIT\r\n" + body),
    ]
    cuts = cut_points(draw, steps)
    assert play_segments(steps, cuts, as_runs=True) == play_segments(steps, cuts, as_runs=False)


def tls_record(content_type: int, payload: bytes) -> bytes:
    return bytes([content_type, 3, 3]) + len(payload).to_bytes(2, "big") + payload


tls_octets = st.lists(
    st.one_of(
        st.builds(tls_record, st.sampled_from([22, 23]), st.binary(max_size=60)),
        st.binary(max_size=8),
        st.just(b"250 cleartext\r\n"),
    ),
    max_size=8,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(body_octets, tls_octets, tls_octets, st.data())
def test_bdat_chunks_and_tls_records_handed_on_as_one_run_are_seen_as_their_segments(
    body: bytes, client_tls: bytes, server_tls: bytes, draw: st.DataObject
) -> None:
    chunk = b"Subject: x\r\n\r\n" + body
    steps: list[Step] = [
        Send(S, b"220 mx\r\n"),
        Send(C, b"EHLO x\r\n"),
        Send(S, b"250-mx\r\n250 CHUNKING\r\n"),
        Send(C, b"BDAT %d\r\n%sBDAT 3 LAST\r\nabcSTARTTLS\r\n" % (len(chunk), chunk)),
        Send(S, b"250 ok\r\n250 ok\r\n220 go\r\n"),
        Send(C, b"\x16\x03\x01" + client_tls),
        Send(S, server_tls),
        Send(C, client_tls),
    ]
    cuts = cut_points(draw, steps)
    assert play_segments(steps, cuts, as_runs=True) == play_segments(steps, cuts, as_runs=False)
