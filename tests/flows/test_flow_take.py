"""The table's short path for segments offered as fields (`take`), the idle clock of a table fed
one shard (`tick`), the exact idle sweep and the size of tombstones."""

from __future__ import annotations

import dataclasses
import re
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer._common import Anomaly
from analyzer.capture.conversation import raw_key
from analyzer.capture.segment import Segment
from analyzer.flows import FlowAnomaly, FlowInfo, FlowTable

from .wire import C2S, Conversation, Frames, Recorder

MASK = 0xFFFFFFFF
SOME = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def traffic(draw: st.DrawFn) -> list[Segment]:
    """A few interleaved connections with handshakes or not, data both ways, retransmissions,
    reordering, acknowledgements of bytes never seen, FINs and RSTs."""
    frames = Frames(ts=0.0, step=draw(st.sampled_from([0.001, 0.3, 40.0])))
    convs = [
        Conversation(
            frames,
            client=("192.0.2.1", 40000 + i),
            client_isn=draw(st.integers(0, MASK)),
            server_isn=draw(st.integers(0, MASK)),
        )
        for i in range(draw(st.integers(1, 3)))
    ]
    segments: list[Segment] = []
    for conv in convs:
        if draw(st.booleans()):
            segments += conv.handshake()
    for _ in range(draw(st.integers(0, 40))):
        conv = draw(st.sampled_from(convs))
        from_client = draw(st.booleans())
        op = draw(
            st.sampled_from(["data", "data", "data", "ack", "again", "swap", "ahead", "fin", "rst"])
        )
        if op == "data":
            segments.append(conv.send(from_client, draw(st.binary(min_size=1, max_size=40))))
        elif op == "ack":
            segments.append(conv.ack(from_client))
        elif op == "again" and segments:
            old = draw(st.sampled_from(segments))
            frame, ts = frames.next(None)
            segments.append(dataclasses.replace(old, frame=frame, ts=ts))
        elif op == "swap" and len(segments) > 1:
            segments[-1], segments[-2] = segments[-2], segments[-1]
        elif op == "ahead":
            _, peer = conv.side(from_client)
            ahead = draw(st.integers(1, 3000))
            segments.append(conv.ack(from_client, ack=(peer.nxt + ahead) & MASK))
        elif op == "fin":
            segments.append(conv.fin(from_client))
        elif op == "rst":
            segments.append(conv.rst(from_client))
    return segments


def offer(table: FlowTable, seg: Segment) -> bool:
    """Hand a segment to `take` as the decoder would."""
    return table.take(
        raw_key(seg.src, seg.sport, seg.dst, seg.dport),
        seg.ts,
        seg.frame.frame_no,
        seg.frame.file_no,
        seg.flags,
        seg.seq,
        seg.ack,
        seg.payload,
        seg.payload_len,
        seg.ttl,
        seg.ip_id,
        seg.src_mac,
    )


def told(segments: list[Segment], *, taking: bool, **options: float) -> Recorder:
    rec = Recorder()
    table = FlowTable(rec, **options)  # type: ignore[arg-type]
    for seg in segments:
        if not (taking and offer(table, seg)):
            table.add(seg)
    table.finish()
    return rec


@SOME
@given(traffic(), st.sampled_from([900.0, 5.0]))
def test_taking_segments_as_fields_tells_the_sink_exactly_what_adding_them_does(
    segments: list[Segment], idle_timeout: float
) -> None:
    added = told(segments, taking=False, idle_timeout=idle_timeout)
    taken = told(segments, taking=True, idle_timeout=idle_timeout)
    assert taken.events == added.events
    assert taken.closed == added.closed  # last frames included, though taken ACKs build none


def test_only_acks_and_data_of_open_connections_are_taken() -> None:
    conv = Conversation()
    table = FlowTable(Recorder())
    syn, synack, ack = conv.handshake()
    assert not offer(table, syn)
    table.add(syn)
    assert not offer(table, synack)
    table.add(synack)
    assert offer(table, ack)
    assert offer(table, conv.send(True, b"EHLO x\r\n"))
    assert not offer(table, conv.fin(True))


@SOME
@given(traffic(), traffic(), st.sampled_from([900.0, 5.0, 0.5]))
def test_a_table_fed_one_shard_and_the_others_clock_treats_its_connections_alike(
    mine: list[Segment], theirs: list[Segment], idle_timeout: float
) -> None:
    """Two captures' traffic interleaved by time: a table fed only the first, ticking on the
    second's timestamps, reports about the first exactly what a table fed both does."""
    theirs = [
        dataclasses.replace(seg, src="203.0.113." + seg.src.rsplit(".", 1)[1], dst="198.18.0.1")
        for seg in theirs
    ]
    tagged = sorted(
        [(seg.ts, 0, n, seg) for n, seg in enumerate(mine)]
        + [(seg.ts, 1, n, seg) for n, seg in enumerate(theirs)],
        key=lambda item: item[:3],
    )
    everything, alone = Recorder(), Recorder()
    whole = FlowTable(everything, idle_timeout=idle_timeout)
    shard = FlowTable(alone, idle_timeout=idle_timeout)
    for _, which, _, seg in tagged:
        whole.add(seg)
        if which == 0:
            shard.add(seg)
        else:
            shard.tick(seg.ts)
    whole.finish()
    shard.finish()
    ours = {info.index for info in everything.infos.values() if info.client.ip == "192.0.2.1"}
    renumber = dict(zip(sorted(ours), range(len(ours)), strict=True))
    expected = [(kind, renumber[i], value) for kind, i, value in everything.events if i in ours]
    actual = [(kind, i, value) for kind, i, value in alone.events]
    assert [(k, i) for k, i, _ in actual] == [(k, i) for k, i, _ in expected]
    for (_, _, got), (_, _, want) in zip(actual, expected, strict=True):
        if isinstance(got, FlowInfo) and isinstance(want, FlowInfo):
            assert dataclasses.replace(got, index=want.index) == want
        elif (
            isinstance(got, Anomaly)
            and isinstance(want, Anomaly)
            and got.kind is FlowAnomaly.PORT_REUSE
        ):
            # it quotes the earlier connection's number, which counts only this table's
            assert re.sub(r"flow \d+", "flow N", got.detail) == re.sub(
                r"flow \d+", "flow N", want.detail
            )
            assert dataclasses.replace(got, detail=want.detail) == want
        else:
            assert got == want


def test_a_connection_idle_past_the_timeout_is_closed_even_behind_a_busier_one() -> None:
    """The activity order is kept to a fraction of a second; the sweep must not stop at a
    connection that was moved there earlier but has been busy since."""
    frames = Frames(ts=0.0, step=0.01)
    busy = Conversation(frames, client=("192.0.2.1", 40001))
    idle = Conversation(frames, client=("192.0.2.1", 40002))
    other = Conversation(frames, client=("192.0.2.1", 40003))
    rec = Recorder()
    table = FlowTable(rec, idle_timeout=10.0)
    table.add(busy.send(True, b"a", ts=0.0))  # moved to the recent end at 0.0
    table.add(idle.send(True, b"b", ts=0.02))  # moved there at 0.02
    table.add(busy.send(True, b"c", ts=0.05))  # busy again, too soon to be moved
    table.add(other.send(True, b"d", ts=10.03))  # the sweep: idle since 0.02, busy since 0.05
    (note,) = rec.anomalies(FlowAnomaly.FLOW_EVICTED)
    assert note.frames and "idle for 10.0 s" in note.detail
    assert list(rec.closed) == [1]
    table.add(idle.send(True, b"e", ts=10.04))
    table.finish()
    assert rec.stream(3, C2S) == b"e"  # the idle one came back as a new conversation


def test_tombstones_of_closed_connections_are_small() -> None:
    frames = Frames(ts=0.0, step=0.001)
    rec = Recorder()
    table = FlowTable(rec)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(1_000):
        conv = Conversation(frames, client=(f"10.0.{i >> 8}.{i & 255}", 20000 + i))
        for seg in [*conv.handshake(), conv.send(True, b"x" * 3000), conv.ack(False)]:
            table.add(seg)
        for seg in conv.close():
            table.add(seg)
    rec.events.clear()  # what the sink keeps is not the table's
    rec.closed.clear()
    rec.infos.clear()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert table.open_flows == 0
    assert len(table._closed) == 1_000  # all within the linger
    assert kept / 1_000 < 2_000, kept / 1_000  # it was 8.5 kB with the whole reassembler
