"""Reassembly invariants: however a stream is cut, repeated and reordered, it comes back whole."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.capture.segment import ACK, FIN, PSH, Segment
from analyzer.flows import EndKind, FlowAnomaly, FlowTable

from .wire import C2S, MASK, S2C, Conversation, Recorder

Case = tuple[bytes, list[tuple[int, int]], list[int], int]


@st.composite
def cut_repeated_and_shuffled(draw: st.DrawFn, *, min_piece: int = 1) -> Case:
    """A stream, the ranges of its segments (a partition plus repeated sub-ranges), the order
    in which the segments are captured, and the sender's ISN -- half of the time one that puts
    the 2**32 wrap inside the stream."""
    data = draw(st.binary(min_size=max(1, min_piece), max_size=2_000))
    if draw(st.booleans()):
        isn = MASK - draw(st.integers(0, len(data)))
    else:
        isn = draw(st.integers(0, MASK))
    cuts: list[int] = [0]
    while cuts[-1] < len(data):
        cuts.append(cuts[-1] + draw(st.integers(min_piece, 300)))
    cuts[-1] = len(data)
    if len(cuts) > 2 and cuts[-1] - cuts[-2] < min_piece:
        del cuts[-2]
    ranges = list(itertools.pairwise(cuts))
    extra = draw(st.integers(0, 8))
    for _ in range(extra):
        start = draw(st.integers(0, len(data) - min_piece))
        end = draw(st.integers(start + min_piece, min(len(data), start + 400)))
        ranges.append((start, end))
    order = draw(st.permutations(range(len(ranges))))
    return data, ranges, list(order), isn


def feed(
    conv: Conversation,
    from_client: bool,
    handshake: list[Segment],
    segments: list[Segment],
    with_acks: bool = False,
) -> Recorder:
    """Handshake, then the segments; with_acks: after each, the receiver acknowledges what it
    holds contiguously (as a real receiver would), which must never look like a gap."""
    rec = Recorder()
    table = FlowTable(rec)
    for seg in handshake:
        table.add(seg)
    me, _ = conv.side(from_client)
    base = me.nxt
    have: set[int] = set()
    fin_offset: int | None = None
    for seg in segments:
        table.add(seg)
        if with_acks:
            start = (seg.seq - base) & MASK
            have.update(range(start, start + seg.payload_len))
            if seg.flags & FIN:
                fin_offset = start + seg.payload_len
            prefix = 0
            while prefix in have:
                prefix += 1
            if prefix == fin_offset:
                prefix += 1
            table.add(conv.ack(not from_client, ack=base + prefix))
    table.finish()
    return rec


def segments_of(
    conv: Conversation,
    from_client: bool,
    data: bytes,
    ranges: list[tuple[int, int]],
    order: list[int],
    fin_at: int | None,
    versions: dict[int, bytes] | None = None,
) -> list[Segment]:
    me, _ = conv.side(from_client)
    start_seq = me.nxt
    segments: list[Segment] = []
    for position, i in enumerate(order):
        a, b = ranges[i]
        payload = (versions or {}).get(i, data[a:b])
        flags = ACK | PSH
        if fin_at is not None and position == fin_at and b == len(data):
            flags |= FIN
        segments.append(conv.segment(from_client, seq=start_seq + a, payload=payload, flags=flags))
    return segments


@settings(max_examples=150, deadline=None)
@given(
    case=cut_repeated_and_shuffled(),
    other_isn=st.integers(0, MASK),
    from_client=st.booleans(),
    with_acks=st.booleans(),
)
def test_any_cutting_repetition_and_order_gives_back_the_stream(
    case: Case, other_isn: int, from_client: bool, with_acks: bool
) -> None:
    data, ranges, order, isn = case
    if from_client:
        conv = Conversation(client_isn=isn, server_isn=other_isn)
    else:
        conv = Conversation(client_isn=other_isn, server_isn=isn)
    handshake = conv.handshake()
    segments = segments_of(conv, from_client, data, ranges, order, None)
    rec = feed(conv, from_client, handshake, segments, with_acks)
    direction = C2S if from_client else S2C
    assert rec.stream(0, direction) == data
    assert rec.gaps() == []
    assert rec.anomalies() == []
    stats = rec.closed[0].of(direction)
    assert stats.bytes == len(data)
    assert stats.conflicts == 0


@settings(max_examples=100, deadline=None)
@given(case=cut_repeated_and_shuffled(), fin_pick=st.integers(0, 1_000))
def test_the_fin_comes_after_every_byte_whatever_segment_carries_it(
    case: Case, fin_pick: int
) -> None:
    data, ranges, order, isn = case
    carriers = [p for p, i in enumerate(order) if ranges[i][1] == len(data)]
    fin_at = carriers[fin_pick % len(carriers)]
    conv = Conversation(client_isn=isn)
    handshake = conv.handshake()
    segments = segments_of(conv, True, data, ranges, order, fin_at)
    rec = feed(conv, True, handshake, segments, with_acks=True)
    assert rec.stream(0, C2S) == data
    assert rec.gaps() == []
    assert rec.anomalies() == []
    (end,) = rec.ends(0)
    assert (end.kind, end.offset) == (EndKind.FIN, len(data))
    kinds = [k for k, _, v in rec.events if k in ("data", "end")]
    assert kinds[-1] == "end"


@settings(max_examples=150, deadline=None)
@given(
    case=cut_repeated_and_shuffled(min_piece=2),
    flips=st.lists(st.tuples(st.integers(0, 1_000), st.integers(0, 1_999)), max_size=6),
)
def test_the_first_copy_wins_and_every_difference_is_reported(
    case: Case, flips: list[tuple[int, int]]
) -> None:
    data, ranges, order, isn = case
    # Rewrite some bytes of some segments (a middlebox touching one copy of them).
    versions: dict[int, bytes] = {}
    for which, where in flips:
        i = which % len(ranges)
        a, b = ranges[i]
        changed = bytearray(versions.get(i, data[a:b]))
        changed[where % (b - a)] ^= 0x20
        versions[i] = bytes(changed)
    # What the stream must hold: each byte as the first segment (in capture order) had it.
    expected = bytearray(len(data))
    filled = [False] * len(data)
    differs = False
    for i in order:
        a, b = ranges[i]
        payload = versions.get(i, data[a:b])
        for k in range(a, b):
            if not filled[k]:
                expected[k] = payload[k - a]
                filled[k] = True
            elif expected[k] != payload[k - a]:
                differs = True
    conv = Conversation(client_isn=isn)
    handshake = conv.handshake()
    segments = segments_of(conv, True, data, ranges, order, None, versions)
    rec = feed(conv, True, handshake, segments)
    assert rec.stream(0, C2S) == bytes(expected)
    assert rec.gaps() == []
    mismatches = rec.anomalies(FlowAnomaly.RETRANSMISSION_MISMATCH)
    assert bool(mismatches) == differs
    assert rec.closed[0].client_to_server.conflicts == len(mismatches)
    for note in mismatches:
        earlier, later = note.frames
        assert earlier.frame_no < later.frame_no
