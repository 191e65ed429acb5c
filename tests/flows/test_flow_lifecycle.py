"""Flows come and go: port reuse, idle and full-table eviction, ignored flows, bounded memory."""

from __future__ import annotations

import tracemalloc

from analyzer.capture.segment import ACK, RST, SYN
from analyzer.flows import FlowAnomaly, FlowInfo, FlowTable, StreamData

from .wire import C2S, S2C, Conversation, Frames, Recorder


def test_a_new_syn_on_an_open_connection_is_port_reuse_and_starts_a_new_flow() -> None:
    frames = Frames()
    old = Conversation(frames, client_isn=1_000)
    new = Conversation(frames, client_isn=77_000_000)
    rec = Recorder()
    table = FlowTable(rec)
    for seg in [*old.handshake(), old.send(True, b"old")]:
        table.add(seg)
    reuse_syn, *rest = new.handshake()
    table.add(reuse_syn)
    (note,) = rec.anomalies(FlowAnomaly.PORT_REUSE)
    assert note.frames == (reuse_syn.frame,) and "flow 0" in note.detail
    assert 0 in rec.closed and not rec.closed[0].evicted
    for seg in [*rest, new.send(True, b"new")]:
        table.add(seg)
    table.finish()
    assert rec.infos[1].client_isn == 77_000_000
    assert rec.stream(0, C2S) == b"old"
    assert rec.stream(1, C2S) == b"new"


def test_a_retransmitted_syn_with_the_same_isn_stays_in_the_same_flow() -> None:
    conv = Conversation()
    syn, synack, ack = conv.handshake()
    again = conv.segment(True, seq=syn.seq, ack=0, flags=SYN)
    rec = Recorder()
    table = FlowTable(rec)
    for seg in [syn, again, synack, ack]:
        table.add(seg)
    table.finish()
    assert list(rec.infos) == [0]
    assert rec.anomalies() == []
    assert rec.closed[0].client_to_server.packets == 3


def test_a_syn_after_an_orderly_close_is_a_new_flow_without_an_anomaly() -> None:
    frames = Frames()
    first = Conversation(frames, client_isn=10)
    second = Conversation(frames, client_isn=99_999)
    rec = Recorder()
    table = FlowTable(rec)
    for seg in [*first.handshake(), *first.close(), *second.handshake(), *second.close()]:
        table.add(seg)
    table.finish()
    assert list(rec.closed) == [0, 1]
    assert rec.anomalies() == []


def test_an_idle_flow_is_closed_as_evicted_and_its_tuple_later_starts_a_new_flow() -> None:
    frames = Frames(ts=0.0)
    idle = Conversation(frames, client=("192.0.2.1", 40001))
    busy = Conversation(frames, client=("192.0.2.1", 40002))
    rec = Recorder()
    table = FlowTable(rec, idle_timeout=60.0)
    for seg in [*idle.handshake(), idle.send(True, b"EHLO a\r\n"), *busy.handshake()]:
        table.add(seg)
    for t in range(1, 100):
        table.add(busy.send(True, b".", ts=float(t)))
    (note,) = rec.anomalies(FlowAnomaly.FLOW_EVICTED)
    assert "idle" in note.detail
    assert rec.closed[0].evicted
    assert table.open_flows == 1
    table.add(idle.send(True, b"MAIL FROM:<>\r\n", ts=100.0))
    table.finish()
    assert rec.infos[2].client.port == 40001  # a new conversation, seen midstream
    assert rec.stream(2, C2S) == b"MAIL FROM:<>\r\n"


def test_a_full_table_evicts_the_least_recently_active_flow() -> None:
    frames = Frames(step=2.0)  # activity order is kept to the second of capture time
    convs = [Conversation(frames, client=("192.0.2.1", 41000 + i)) for i in range(4)]
    rec = Recorder()
    table = FlowTable(rec, max_flows=3)
    for conv in convs[:3]:
        for seg in conv.handshake():
            table.add(seg)
    table.add(convs[0].send(True, b"still here"))  # flow 1 is now the least recently active
    for seg in convs[3].handshake():
        table.add(seg)
    assert table.open_flows == 3
    (note,) = rec.anomalies(FlowAnomaly.FLOW_EVICTED)
    assert "full" in note.detail
    assert list(rec.closed) == [1] and rec.closed[1].evicted
    table.finish()
    assert sorted(rec.closed) == [0, 1, 2, 3]
    assert not rec.closed[0].evicted


def test_a_syn_flood_stays_within_max_half_open_and_bounded_memory() -> None:
    frames = Frames()
    rec = _Counting()
    table = FlowTable(rec, max_half_open=100)
    tracemalloc.start()
    for i in range(5_000):
        conv = Conversation(frames, client=(f"10.0.{i >> 8 & 255}.{i & 255}", 1024 + i))
        table.add(conv.segment(True, seq=i * 7919, ack=0, flags=SYN))
        assert table.open_flows <= 100
        if i == 500:
            baseline = tracemalloc.get_traced_memory()[0]
    grown = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    assert grown < 300_000  # what 100 SYNs need, not what 5,000 would
    assert rec.closed == 5_000 - 100
    assert rec.evicted == rec.closed
    table.finish()
    assert rec.closed == 5_000 and table.open_flows == 0


class _Counting:
    """A sink that keeps counts only, as a long-running consumer would."""

    def __init__(self) -> None:
        self.closed = 0
        self.evicted = 0

    def on_flow_start(self, flow: FlowInfo) -> None: ...
    def on_data(self, flow: FlowInfo, data: StreamData) -> None: ...
    def on_gap(self, flow: FlowInfo, gap: object) -> None: ...
    def on_end(self, flow: FlowInfo, end: object) -> None: ...

    def on_anomaly(self, flow: FlowInfo, anomaly: object) -> None: ...

    def on_flow_closed(self, flow: FlowInfo, stats: object) -> None:
        self.closed += 1
        self.evicted += bool(getattr(stats, "evicted", False))


def test_closed_connections_are_forgotten_after_the_linger() -> None:
    frames = Frames(ts=0.0, step=0.5)
    rec = _Counting()
    table = FlowTable(rec)
    for i in range(2_000):
        conv = Conversation(frames, client=("192.0.2.1", 20000 + i))
        for seg in [*conv.handshake(), conv.send(True, b"x"), *conv.close()]:
            table.add(seg)
    assert table.open_flows == 0
    assert len(table._halves) < 2 * 2 * 130  # only the last minute's tombstones remain


def test_an_ignored_flow_delivers_no_more_payload_but_is_counted_and_closed() -> None:
    conv = Conversation()
    rec = Recorder()
    table = FlowTable(rec)
    for seg in [*conv.handshake(), conv.send(False, b"SSH-2.0-x\r\n")]:
        table.add(seg)
    table.ignore(rec.infos[0])
    conv.send(True, b"lost")
    early = conv.send(True, b"early bytes are not buffered")
    table.add(early)
    assert table._halves[(early.src, early.sport, early.dst, early.dport)].pending_bytes == 0
    for seg in [conv.send(False, b"more"), *conv.close()]:
        table.add(seg)
    table.finish()
    assert rec.stream(0, S2C) == b"SSH-2.0-x\r\n"
    assert rec.stream(0, C2S) == b""
    assert len(rec.ends(0)) == 2
    stats = rec.closed[0]
    assert stats.client_to_server.payload_packets == 1
    assert stats.server_to_client.payload_packets == 2
    assert stats.client_to_server.bytes == len(b"lost" + early.payload)


def test_ignore_called_from_inside_on_data_stops_delivery_at_once() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    parts = [conv.send(True, bytes([65 + i]) * 3) for i in range(4)]

    class Sniffer(Recorder):
        table: FlowTable

        def on_data(self, flow: FlowInfo, data: StreamData) -> None:
            super().on_data(flow, data)
            self.table.ignore(flow)

    rec = Sniffer()
    rec.table = table = FlowTable(rec)
    # Reordered so that the first byte releases everything buffered behind it in one go.
    for seg in [*handshake, parts[3], parts[2], parts[1], parts[0]]:
        table.add(seg)
    table.finish()
    assert rec.stream(0, C2S) == b"AAA"
    assert 0 in rec.closed


def test_ignore_from_on_flow_start_means_no_payload_at_all() -> None:
    conv = Conversation()

    class Refuser(Recorder):
        table: FlowTable

        def on_flow_start(self, flow: FlowInfo) -> None:
            super().on_flow_start(flow)
            self.table.ignore(flow)

    rec = Refuser()
    rec.table = table = FlowTable(rec)
    for seg in [*conv.handshake(), conv.send(True, b"GET / HTTP/1.1\r\n"), *conv.close()]:
        table.add(seg)
    assert rec.kinds(0) == ["start", "end", "end", "closed"]


def test_a_syn_after_a_reset_is_a_new_flow_even_with_the_same_isn() -> None:
    conv = Conversation()
    syn = conv.handshake()[0]
    refused = conv.segment(False, seq=0, ack=syn.seq + 1, flags=RST | ACK)
    again = conv.segment(True, seq=syn.seq, ack=0, flags=SYN)
    rec = Recorder()
    table = FlowTable(rec)
    for seg in [syn, refused, again]:
        table.add(seg)
    table.finish()
    assert list(rec.closed) == [0, 1]
    assert rec.anomalies() == []
