"""A segment missing from the capture whose delivery the receiver's ACK proves, although that ACK
goes no further than the segment after it (a delayed ACK covering two segments, RFC 1122 §4.2.3.2;
RFC 9293 §3.8.6.3): the hole is a gap of its own length, the next segment comes out at its own
offset, at once, and nothing else is made of it."""

from __future__ import annotations

from analyzer.capture.segment import Segment
from analyzer.flows import FlowTable, StreamData, StreamGap

from .wire import C2S, S2C, Conversation, Recorder


def run(segments: list[Segment]) -> Recorder:
    rec = Recorder()
    table = FlowTable(rec)
    for seg in segments:
        table.add(seg)
    table.finish()
    return rec


FIRST = b"Subject: one\r\n" + b"x" * 1000 + b"\r\n"
SECOND = b"y" * 500 + b"\r\n"
THIRD = b".\r\n"


def delayed_ack_pair(lost_first: bool) -> tuple[list[Segment], int]:
    conv = Conversation()
    segs = [*conv.handshake(), conv.send(False, b"354 go ahead\r\n"), conv.ack(True)]
    start = len(segs)
    first = conv.send(True, FIRST)
    second = conv.send(True, SECOND)
    both = conv.ack(False)  # one ACK for the two
    third = conv.send(True, THIRD)
    reply = conv.send(False, b"250 ok\r\n")
    segs += [second] if lost_first else [first, second]
    segs += [both, third, reply]
    segs += [conv.ack(True), *conv.close()]
    return segs, start


def test_the_lost_first_segment_of_a_delayed_ack_pair_is_a_gap_of_its_length() -> None:
    segs, _ = delayed_ack_pair(lost_first=True)
    rec = run(segs)
    gaps = [g for g in rec.gaps(0) if g.direction is C2S]
    assert [(g.offset, g.length) for g in gaps] == [(0, len(FIRST))]
    assert rec.stream(0, C2S) == SECOND + THIRD  # the rest at its own offsets (checked contiguous)
    assert rec.anomalies(index=0) == []
    assert rec.stream(0, S2C) == b"354 go ahead\r\n250 ok\r\n"


def test_the_segment_after_the_hole_comes_out_when_the_ack_arrives_not_at_the_end() -> None:
    segs, _ = delayed_ack_pair(lost_first=True)
    rec = run(segs)
    stream: list[tuple[str, object, int]] = []
    for _kind, _, value in rec.events:
        if isinstance(value, StreamData):
            stream.append(("data", value.direction, value.offset))
        elif isinstance(value, StreamGap):
            stream.append(("gap", value.direction, value.offset))
    # The hole, then SECOND and THIRD at their offsets, all before the server's reply to them
    # (not held back to the end of the connection, where the SMTP reader would see the reply
    # first and the message cut).
    assert stream == [
        ("data", S2C, 0),
        ("gap", C2S, 0),
        ("data", C2S, len(FIRST)),
        ("data", C2S, len(FIRST) + len(SECOND)),
        ("data", S2C, len(b"354 go ahead\r\n")),
    ]


def test_the_lost_second_segment_is_the_ordinary_case_and_stays_a_gap_too() -> None:
    conv = Conversation()
    segs = [*conv.handshake(), conv.send(False, b"354 go\r\n"), conv.ack(True)]
    first = conv.send(True, FIRST)
    conv.send(True, SECOND)  # not captured
    segs += [first, conv.ack(False), conv.send(True, THIRD), *conv.close()]
    rec = run(segs)
    gaps = [g for g in rec.gaps(0) if isinstance(g, StreamGap) and g.direction is C2S]
    assert [(g.offset, g.length) for g in gaps] == [(len(FIRST), len(SECOND))]
    assert rec.stream(0, C2S) == FIRST + THIRD


def test_nothing_missing_no_gap() -> None:
    segs, _ = delayed_ack_pair(lost_first=False)
    segs_full = segs
    rec = run(segs_full)
    assert rec.gaps(0) == []
