"""A connection of which only the SYN was seen waits as that SYN: it keeps its number, becomes a
flow exactly as if it had been one all along, and a flood of them never pushes an open
connection out of the table."""

from __future__ import annotations

import tracemalloc

from analyzer.capture.segment import SYN, Segment
from analyzer.flows import FlowAnomaly, FlowTable

from .wire import C2S, Conversation, Frames, Recorder


def _syn(conv: Conversation, isn: int) -> Segment:
    return conv.segment(True, seq=isn, ack=0, flags=SYN, mss=1460, tsval=7)


def _flood(frames: Frames, count: int, base: int = 0) -> list[Segment]:
    return [
        _syn(Conversation(frames, client=(f"10.9.{i >> 8 & 255}.{i & 255}", 2000 + i)), i * 7919)
        for i in range(base, base + count)
    ]


def test_a_syn_flood_does_not_push_an_open_connection_out_of_a_full_table() -> None:
    frames = Frames()
    mail = Conversation(frames)
    rec = Recorder()
    table = FlowTable(rec, max_flows=10, max_half_open=10)
    for seg in [*mail.handshake(), mail.send(False, b"220 mx ESMTP\r\n")]:
        table.add(seg)
    for syn in _flood(frames, 100):
        table.add(syn)
    for seg in [mail.send(True, b"QUIT\r\n"), mail.send(False, b"221 bye\r\n"), *mail.close()]:
        table.add(seg)
    table.finish()
    assert not rec.closed[0].evicted
    assert rec.stream(0, C2S) == b"QUIT\r\n"
    assert sorted(rec.closed) == list(range(101))
    full = [a for a in rec.anomalies(FlowAnomaly.FLOW_EVICTED) if "half-open" in a.detail]
    assert len(full) == 90  # the flood's oldest, beyond the 10 that may wait


def test_a_waiting_syn_keeps_its_number_and_what_it_said() -> None:
    frames = Frames()
    late = Conversation(frames, client=("192.0.2.7", 40007), client_isn=5_000)
    quick = Conversation(frames, client=("192.0.2.8", 40008))
    rec = Recorder()
    table = FlowTable(rec)
    syn, synack, ack = late.handshake()
    table.add(syn)
    for seg in [*quick.handshake(), *quick.close()]:
        table.add(seg)
    for seg in [synack, ack, late.send(True, b"EHLO a\r\n")]:
        table.add(seg)
    table.finish()
    first, second = rec.infos[0], rec.infos[1]
    assert first.client.port == 40007 and second.client.port == 40008
    assert first.handshake_seen and first.syn_frame == syn.frame
    assert first.start_ts == syn.ts
    assert first.client_isn == 5_000 and first.mss == (1460, 1380)
    assert rec.closed[0].client_to_server.packets == 3
    assert rec.closed[0].client_to_server.first_frame == syn.frame
    assert rec.stream(0, C2S) == b"EHLO a\r\n"
    assert rec.anomalies() == []


def test_a_reply_seen_before_its_syn_is_waited_for_is_one_connection() -> None:
    conv = Conversation()
    syn, synack, ack = conv.handshake()
    rec = Recorder()
    table = FlowTable(rec)
    for seg in [syn, conv.segment(True, seq=syn.seq, ack=0, flags=SYN), synack, ack]:
        table.add(seg)  # the SYN, its retransmission, then the handshake's rest
    table.finish()
    assert list(rec.infos) == [0]
    assert rec.closed[0].client_to_server.packets == 3
    assert rec.anomalies() == []


def test_an_unanswered_syn_idles_out_as_an_evicted_flow() -> None:
    frames = Frames(ts=0.0)
    lonely = Conversation(frames, client=("192.0.2.1", 40001))
    busy = Conversation(frames, client=("192.0.2.1", 40002))
    rec = Recorder()
    table = FlowTable(rec, idle_timeout=60.0)
    table.add(_syn(lonely, 1))
    for seg in busy.handshake():
        table.add(seg)
    for t in range(1, 100):
        table.add(busy.send(True, b".", ts=float(t)))
    (note,) = rec.anomalies(FlowAnomaly.FLOW_EVICTED)
    assert "idle" in note.detail and rec.closed[0].evicted
    assert rec.infos[0].client.port == 40001 and rec.infos[0].handshake_seen
    assert table.open_flows == 1
    table.finish()
    assert not rec.closed[1].evicted


def test_at_the_end_waiting_syns_close_in_number_order_with_the_open_flows() -> None:
    frames = Frames()
    convs = [Conversation(frames, client=("192.0.2.9", 41000 + i)) for i in range(4)]
    rec = Recorder()
    table = FlowTable(rec)
    table.add(_syn(convs[0], 10))
    for seg in convs[1].handshake():
        table.add(seg)
    table.add(_syn(convs[2], 30))
    for seg in convs[3].handshake():
        table.add(seg)
    table.finish()
    assert [i for kind, i, _ in rec.events if kind == "closed"] == [0, 1, 2, 3]
    assert table.open_flows == 0


def test_a_waiting_syn_costs_under_one_and_a_half_kilobytes() -> None:
    """The table may hold `MAX_HALF_OPEN` of them (100,000) when a capture is hostile."""
    syns = _flood(Frames(), 2_000)
    table = FlowTable(Recorder())
    tracemalloc.start()
    for syn in syns:
        table.add(syn)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert table.open_flows == 2_000
    assert held / 2_000 < 1_500
