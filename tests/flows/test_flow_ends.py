"""FIN and RST: when they are reported, who sent them, and what comes after them."""

from __future__ import annotations

from analyzer.capture.segment import ACK, FIN, RST
from analyzer.flows import EndKind, FlowAnomaly, FlowTable, PacketOrigin

from .wire import C2S, S2C, Conversation, Recorder


def run(segments: list, **kw: object) -> tuple[Recorder, FlowTable]:  # type: ignore[type-arg]
    rec = Recorder()
    table = FlowTable(rec, **kw)  # type: ignore[arg-type]
    for seg in segments:
        table.add(seg)
    return rec, table


def test_an_orderly_close_reports_both_fins_and_closes_the_flow() -> None:
    conv = Conversation()
    segments = [*conv.handshake(), conv.send(True, b"QUIT\r\n"), conv.send(False, b"221 bye\r\n")]
    c_fin, s_fin, last_ack = conv.close()
    rec, table = run([*segments, c_fin, s_fin])
    assert table.open_flows == 0
    assert rec.kinds(0)[-3:] == ["end", "end", "closed"]
    first, second = rec.ends(0)
    assert (first.direction, first.kind, first.offset) == (C2S, EndKind.FIN, 6)
    assert first.frame == c_fin.frame
    assert (second.direction, second.offset) == (S2C, 9)
    stats = rec.closed[0]
    assert stats.client_to_server.end == first and stats.server_to_client.end == second
    assert stats.end_ts == s_fin.ts and not stats.evicted
    table.add(last_ack)  # absorbed by the closed connection: no new flow
    table.finish()
    assert list(rec.infos) == [0]


def test_a_fin_waits_for_the_bytes_before_it() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    data = conv.send(True, b"QUIT\r\n")
    fin = conv.fin(True)
    rec, table = run([*handshake, fin])
    assert rec.ends() == []
    table.add(data)
    assert rec.kinds(0)[-2:] == ["data", "end"]
    assert rec.ends()[0].offset == 6


def test_a_fin_with_payload_delivers_the_payload_first() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    seg = conv.segment(True, flags=FIN | ACK, payload=b"QUIT\r\n")
    rec, _ = run([*handshake, seg])
    assert rec.kinds(0)[-2:] == ["data", "end"]
    assert rec.ends()[0].offset == 6


def test_a_fin_behind_a_hole_is_released_at_the_end_after_a_gap() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    conv.send(False, b"lost")
    fin = conv.fin(False)
    rec, table = run([*handshake, fin])
    table.finish()
    assert rec.kinds(0)[-3:] == ["gap", "end", "closed"]
    assert rec.gaps()[0].frame == fin.frame


def test_a_reset_from_the_firewall_shows_a_different_origin_from_the_servers_usual_one() -> None:
    conv = Conversation()
    server = conv.server
    segments = [
        *conv.handshake(),
        conv.send(False, b"220 mx\r\n"),
        conv.send(True, b"EHLO a\r\n"),
        conv.send(False, b"250-mx\r\n", ttl=58),  # one odd TTL does not change the usual one
        conv.send(False, b"250 OK\r\n"),
        conv.send(True, b"DATA\r\n"),
    ]
    last_server_id = server.ip_id
    forged = conv.rst(False, ttl=250, ip_id=0, mac=b"\x00\x1b\x54\xaa\xbb\xcc")
    rec, table = run([*segments, forged])
    (end,) = rec.ends(0)
    assert (end.kind, end.direction, end.frame) == (EndKind.RST, S2C, forged.frame)
    assert end.origin == PacketOrigin(250, 0, b"\x00\x1b\x54\xaa\xbb\xcc")
    assert end.usual_origin == PacketOrigin(57, last_server_id, server.mac)
    assert end.offset == len(b"220 mx\r\n250-mx\r\n250 OK\r\n")
    assert table.open_flows == 0
    assert rec.closed[0].server_to_client.end == end


def test_a_resets_own_ttl_and_ip_id_never_become_the_usual_origin() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    data = conv.send(True, b"x")
    first_rst = conv.rst(True, ttl=1, ip_id=7)
    rec, table = run([*handshake, data])
    usual_before = PacketOrigin(64, conv.client.ip_id, conv.client.mac)
    table.add(first_rst)
    (end,) = rec.ends()
    assert end.usual_origin == usual_before


def test_a_reset_delivers_what_was_buffered_before_it_is_reported() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    conv.send(True, b"lost")
    kept = conv.send(True, b"kept")
    rst = conv.rst(False)
    rec, _ = run([*handshake, kept, rst])
    assert rec.kinds(0)[1:] == ["gap", "data", "end", "closed"]


def test_payload_after_a_reset_is_an_anomaly_while_the_connection_is_remembered() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    rst = conv.rst(True)
    late = conv.send(False, b"250 too late\r\n")
    rec, table = run([*handshake, rst, late])
    (note,) = rec.anomalies(FlowAnomaly.DATA_AFTER_RST)
    assert note.frames == (rst.frame, late.frame)
    assert note.direction is S2C
    assert table.open_flows == 0
    assert rec.of("data") == []


def test_payload_beyond_the_fin_is_an_anomaly_and_is_not_delivered() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    reply = conv.send(False, b"hi")
    fin = conv.fin(True)
    extra = conv.segment(True, payload=b"more", flags=ACK)
    rec, table = run([*handshake, reply, fin, extra])
    (note,) = rec.anomalies(FlowAnomaly.DATA_AFTER_FIN)
    assert note.frames == (fin.frame, extra.frame)
    assert "after the FIN at offset 0" in note.detail
    assert rec.stream(0, C2S) == b""
    assert table.open_flows == 1


def test_payload_beyond_the_fin_after_the_close_is_reported_too() -> None:
    conv = Conversation()
    segments = [*conv.handshake(), conv.send(True, b"QUIT\r\n")]
    c_fin, s_fin, _ = conv.close()
    resent = conv.segment(True, seq=segments[-1].seq, payload=b"QUIT\r\n")
    extra = conv.segment(True, seq=c_fin.seq + 1, payload=b"junk")
    rec, table = run([*segments, c_fin, s_fin, resent, extra])
    assert table.open_flows == 0
    (note,) = rec.anomalies(FlowAnomaly.DATA_AFTER_FIN)  # the retransmission is not one
    assert note.frames == (c_fin.frame, extra.frame)


def test_a_retransmitted_fin_counts_once() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    fin = conv.fin(True)
    again = conv.segment(True, seq=fin.seq, flags=FIN | ACK)
    rec, table = run([*handshake, fin, again])
    table.finish()
    assert len(rec.ends()) == 1


def test_a_reset_without_data_from_its_sender_is_offset_zero() -> None:
    conv = Conversation()
    syn = conv.handshake()[0]
    refused = conv.segment(False, seq=0, ack=syn.seq + 1, flags=RST | ACK)
    rec, table = run([syn, refused])
    (end,) = rec.ends()
    assert (end.kind, end.direction, end.offset) == (EndKind.RST, S2C, 0)
    assert end.usual_origin is None  # nothing else ever came from the server
    assert table.open_flows == 0


def test_an_acknowledged_fin_the_capture_missed_is_not_a_gap() -> None:
    conv = Conversation()
    segments = [*conv.handshake(), conv.send(False, b"221 bye\r\n")]
    conv.fin(False)  # never captured
    rec, table = run([*segments, conv.ack(True)])
    table.finish()
    assert rec.gaps() == []
    assert rec.stream(0, S2C) == b"221 bye\r\n"


def test_one_missing_byte_becomes_a_gap_once_bytes_beyond_it_arrive() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    conv.send(True, b"x")  # never captured: one typed character
    ack = conv.ack(False)
    more = conv.send(True, b"yz")
    rec, table = run([*handshake, ack])
    assert rec.gaps() == []  # could have been a FIN
    table.add(more)
    (gap,) = rec.gaps()
    assert (gap.offset, gap.length, gap.frame) == (0, 1, more.frame)
    assert rec.stream(0, C2S) == b"yz"
