"""Who is client and who is server, and when a flow is announced."""

from __future__ import annotations

from analyzer.flows import FlowAnomaly, FlowInfo, FlowTable
from analyzer.flows.events import Endpoint

from .wire import C2S, S2C, Conversation, Frames, Recorder


def run(segments: list, **kw: object) -> Recorder:  # type: ignore[type-arg]
    rec = Recorder()
    table = FlowTable(rec, **kw)  # type: ignore[arg-type]
    for seg in segments:
        table.add(seg)
    table.finish()
    return rec


def test_the_syn_sender_is_the_client_even_on_a_server_port() -> None:
    # The client happens to use source port 25 and connects to port 40000.
    conv = Conversation(client=("192.0.2.1", 25), server=("192.0.2.2", 40000))
    rec = run([*conv.handshake(), conv.send(True, b"hello"), conv.send(False, b"hi")])
    info = rec.infos[0]
    assert info.client == Endpoint("192.0.2.1", 25)
    assert info.server == Endpoint("192.0.2.2", 40000)
    assert info.handshake_seen
    assert rec.stream(0, C2S) == b"hello"
    assert rec.stream(0, S2C) == b"hi"
    assert rec.anomalies(FlowAnomaly.MIDSTREAM_START) == []


def test_flow_info_carries_both_sides_of_the_handshake() -> None:
    conv = Conversation(client_isn=7, server_isn=4242)
    rec = run(conv.handshake())
    info = rec.infos[0]
    assert info.syn_frame is not None and info.syn_frame.frame_no == 1
    assert (info.client_isn, info.server_isn) == (7, 4242)
    assert info.mss == (1460, 1380)
    assert (info.client_tsval, info.server_tsval) == (111, 222)
    assert info.start_ts == 1000.001


def test_only_a_syn_ack_captured_still_gives_certain_roles() -> None:
    conv = Conversation(client_isn=500)
    _syn, synack, ack = conv.handshake()
    rec = run([synack, ack, conv.send(True, b"EHLO a\r\n")])
    info = rec.infos[0]
    assert info.client.port == 40000
    assert not info.handshake_seen
    assert info.client_isn == 500  # implied by the SYN-ACK's acknowledgement
    assert rec.stream(0, C2S) == b"EHLO a\r\n"
    assert rec.anomalies(FlowAnomaly.MIDSTREAM_START) == []


def test_midstream_roles_come_from_the_role_hint_on_the_first_payload() -> None:
    # Odd ports on purpose: the port rule would pick 5000 as the server.
    conv = Conversation(client=("192.0.2.1", 5000), server=("192.0.2.2", 60000))
    asked: list[tuple[bytes, int, int]] = []

    def hint(first: bytes, sport: int, dport: int) -> bool | None:
        asked.append((first, sport, dport))
        return first.startswith(b"220 ")

    segments = [conv.send(False, b"220 mx ESMTP\r\n"), conv.send(True, b"EHLO a\r\n")]
    rec = run(segments, role_hint=hint)
    info = rec.infos[0]
    assert asked == [(b"220 mx ESMTP\r\n", 60000, 5000)]
    assert info.server == Endpoint("192.0.2.2", 60000)
    assert not info.handshake_seen
    assert rec.stream(0, S2C) == b"220 mx ESMTP\r\n"
    assert rec.stream(0, C2S) == b"EHLO a\r\n"
    (note,) = rec.anomalies(FlowAnomaly.MIDSTREAM_START)
    assert "first payload" in note.detail and "192.0.2.2:60000" in note.detail


def test_midstream_roles_fall_back_on_the_mail_port_when_the_hint_has_no_idea() -> None:
    conv = Conversation(client=("192.0.2.1", 1024), server=("192.0.2.2", 587))
    rec = run([conv.send(True, b"\x16\x03\x01"), conv.send(False, b"?")], role_hint=lambda *a: None)
    assert rec.infos[0].server.port == 587
    assert rec.stream(0, C2S) == b"\x16\x03\x01"
    (note,) = rec.anomalies(FlowAnomaly.MIDSTREAM_START)
    assert "port" in note.detail


def test_midstream_without_mail_ports_takes_the_lower_port_as_the_server() -> None:
    conv = Conversation(client=("192.0.2.1", 50123), server=("192.0.2.2", 8025))
    rec = run([conv.send(False, b"data from the server side")])
    assert rec.infos[0].server == Endpoint("192.0.2.2", 8025)
    assert rec.stream(0, S2C) == b"data from the server side"


def test_packets_before_the_roles_are_known_are_counted_and_nothing_is_lost() -> None:
    conv = Conversation()
    segments = [
        conv.ack(True),
        conv.ack(False),
        conv.send(False, b"250 OK\r\n"),
        conv.send(True, b"QUIT\r\n"),
        conv.send(False, b"221 bye\r\n"),
    ]
    rec = run(segments)
    stats = rec.closed[0]
    assert stats.client_to_server.packets == 2
    assert stats.server_to_client.packets == 3
    assert stats.client_to_server.first_frame is not None
    assert stats.client_to_server.first_frame.frame_no == 1
    assert rec.stream(0, S2C) == b"250 OK\r\n221 bye\r\n"
    assert rec.stream(0, C2S) == b"QUIT\r\n"


def test_a_flow_of_bare_acks_is_reported_at_its_close_with_port_roles() -> None:
    conv = Conversation(client=("192.0.2.1", 44444), server=("192.0.2.2", 25))
    rec = run([conv.ack(False), conv.ack(True), conv.ack(False)])
    assert rec.kinds(0) == ["start", "anomaly", "closed"]
    assert rec.infos[0].server.port == 25
    assert rec.closed[0].server_to_client.packets == 2


def test_the_start_waits_for_the_syn_ack_so_both_isns_are_known() -> None:
    conv = Conversation()
    syn, synack, _ack = conv.handshake()
    rec = Recorder()
    table = FlowTable(rec)
    table.add(syn)
    assert rec.events == []  # roles known, but the server side not seen yet
    table.add(synack)
    assert [k for k, _, _ in rec.events] == ["start"]
    assert isinstance(rec.infos[0], FlowInfo) and rec.infos[0].server_isn == 900_000


def test_indexes_follow_first_appearance_not_the_order_of_starts() -> None:
    frames = Frames()
    first = Conversation(frames, client=("192.0.2.1", 40001))
    second = Conversation(frames, client=("192.0.2.1", 40002))
    a_syn, a_synack, a_ack = first.handshake()
    b_syn, b_synack, b_ack = second.handshake()
    # Flow 0 appears first but its SYN-ACK comes after flow 1's whole handshake.
    rec = run([a_syn, b_syn, b_synack, b_ack, a_synack, a_ack])
    assert [i for k, i, _ in rec.events if k == "start"] == [1, 0]
    assert rec.infos[0].client.port == 40001
    assert rec.infos[1].client.port == 40002


def test_half_open_connection_is_reported_at_the_end_of_the_capture() -> None:
    conv = Conversation()
    syn = conv.handshake()[0]
    rec = run([syn])
    assert rec.kinds(0) == ["start", "closed"]
    assert rec.infos[0].handshake_seen
    assert rec.infos[0].server_isn is None


def test_a_syn_ack_captured_before_its_syn_still_makes_one_flow_with_a_handshake() -> None:
    conv = Conversation()
    syn, synack, ack = conv.handshake()
    rec = run([synack, syn, ack, conv.send(True, b"x")])
    assert list(rec.infos) == [0]
    assert rec.infos[0].handshake_seen
    assert rec.infos[0].client.port == 40000
    assert rec.anomalies() == []
    assert rec.stream(0, C2S) == b"x"
