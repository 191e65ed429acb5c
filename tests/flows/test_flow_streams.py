"""Each direction's bytes come out once, in order, whatever the network and the capture did."""

from __future__ import annotations

from analyzer.capture.segment import ACK
from analyzer.flows import FlowAnomaly, FlowTable, StreamData, reassembly
from analyzer.flows.reassembly import RUN_BYTES

from .wire import C2S, MASK, S2C, Conversation, Recorder


def run(segments: list, **kw: object) -> Recorder:  # type: ignore[type-arg]
    rec = Recorder()
    table = FlowTable(rec, **kw)  # type: ignore[arg-type]
    for seg in segments:
        table.add(seg)
    table.finish()
    return rec


def test_sequence_numbers_wrap_around_2_to_the_32_without_a_seam() -> None:
    conv = Conversation(client_isn=2**32 - 5, server_isn=2**32 - 1)
    handshake = conv.handshake()
    one, two, three = (conv.send(True, p) for p in (b"abcd", b"efgh", b"ijkl"))
    assert one.seq > two.seq  # the wrap falls between the first two segments
    rec = run([*handshake, one, three, two, conv.send(False, b"ok")])
    assert rec.stream(0, C2S) == b"abcdefghijkl"
    offsets = [d.offset for d in rec.of("data") if isinstance(d, StreamData) and d.direction is C2S]
    assert offsets == [0, 4, 8]
    assert rec.stream(0, S2C) == b"ok"
    assert rec.gaps() == []


def test_an_identical_retransmission_is_counted_but_not_delivered_again() -> None:
    conv = Conversation()
    first = conv.send(True, b"MAIL FROM:<a@b>\r\n")
    again = conv.segment(True, seq=first.seq, payload=first.payload)
    rec = run([*conv.handshake(), first, again, conv.send(True, b"RCPT TO:<c@d>\r\n")])
    assert rec.stream(0, C2S) == b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
    assert rec.anomalies() == []
    stats = rec.closed[0].client_to_server
    assert (stats.retransmissions, stats.retransmitted_bytes, stats.conflicts) == (1, 17, 0)


def test_a_retransmission_with_different_bytes_names_both_frames_and_both_versions() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    ehlo = conv.send(True, b"EHLO a\r\n")
    original = conv.send(True, b"STARTTLS\r\n")
    masked = conv.segment(True, seq=original.seq, payload=b"XXXXXXXX\r\n")
    rec = run([*handshake, ehlo, original, masked])
    (note,) = rec.anomalies(FlowAnomaly.RETRANSMISSION_MISMATCH)
    assert note.frames == (original.frame, masked.frame)
    assert note.direction is C2S
    assert "offset 8" in note.detail and "8 of 10" in note.detail
    assert "b'STARTTLS'" in note.detail and "b'XXXXXXXX'" in note.detail
    assert rec.stream(0, C2S) == b"EHLO a\r\nSTARTTLS\r\n"  # the first copy wins
    assert rec.closed[0].client_to_server.conflicts == 1


def test_a_partial_overlap_compares_only_the_overlapping_bytes_and_delivers_the_rest() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    a = conv.send(True, b"0123456789")
    b = conv.segment(True, seq=a.seq + 5, payload=b"5678Xabcde")  # '9' became 'X'
    rec = run([*handshake, a, b])
    assert rec.stream(0, C2S) == b"0123456789abcde"
    (note,) = rec.anomalies(FlowAnomaly.RETRANSMISSION_MISMATCH)
    assert "offset 9" in note.detail and "b'9'" in note.detail and "b'X'" in note.detail
    assert note.frames == (a.frame, b.frame)
    stats = rec.closed[0].client_to_server
    assert (stats.retransmissions, stats.retransmitted_bytes, stats.bytes) == (1, 5, 15)


def test_out_of_order_segments_wait_for_the_hole_and_come_out_in_order() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    one, two, three = (conv.send(False, p) for p in (b"220-a\r\n", b"220-b\r\n", b"220 c\r\n"))
    rec = run([*handshake, three, two, one])
    assert rec.stream(0, S2C) == b"220-a\r\n220-b\r\n220 c\r\n"
    frames = [d.frame for d in rec.of("data")]  # type: ignore[attr-defined]
    assert frames == [one.frame, two.frame, three.frame]
    assert rec.closed[0].server_to_client.out_of_order == 2
    assert rec.gaps() == []


def test_bytes_overlapping_a_buffered_segment_are_compared_with_it() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    one = conv.send(True, b"AAAA")
    two = conv.send(True, b"BBBB")
    two_changed = conv.segment(True, seq=two.seq, payload=b"BBBC")
    rec = run([*handshake, two, two_changed, one])
    (note,) = rec.anomalies(FlowAnomaly.RETRANSMISSION_MISMATCH)
    assert note.frames == (two.frame, two_changed.frame)
    assert rec.stream(0, C2S) == b"AAAABBBB"


def test_a_zero_window_probe_is_neither_a_conflict_nor_a_gap() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    head = conv.send(False, b"250-first\r\n")
    probe = conv.segment(False, payload=b"2")  # one byte beyond a closed window
    rest = conv.send(False, b"250 second\r\n")  # later sent properly from the same seq
    rec = run([*handshake, head, probe, conv.ack(True, ack=probe.seq), rest])
    assert rec.stream(0, S2C) == b"250-first\r\n250 second\r\n"
    assert rec.anomalies() == []
    assert rec.gaps() == []


def test_keep_alives_with_a_filler_byte_are_not_conflicts() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    data = conv.send(True, b"NOOP\r\n")
    keepalive = conv.segment(True, seq=conv.client.nxt - 1, payload=b"\x00")
    empty_keepalive = conv.segment(True, seq=conv.client.nxt - 1)
    rec = run([*handshake, data, keepalive, empty_keepalive, conv.send(True, b"QUIT\r\n")])
    assert rec.stream(0, C2S) == b"NOOP\r\nQUIT\r\n"
    assert rec.anomalies() == []
    stats = rec.closed[0].client_to_server
    assert (stats.retransmissions, stats.conflicts) == (0, 0)


def test_bytes_the_peer_acknowledged_but_the_capture_missed_become_a_gap_at_once() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    seen = conv.send(False, b"220 hello\r\n")
    missed = conv.send(False, b"250 lost reply\r\n")  # never captured
    ack = conv.ack(True)  # the client got it
    after = conv.send(False, b"250 next\r\n")
    rec = Recorder()
    table = FlowTable(rec)
    for seg in [*handshake, seen, ack]:
        table.add(seg)
    (gap,) = rec.gaps()
    assert (gap.direction, gap.offset, gap.length) == (S2C, 11, len(missed.payload))
    assert gap.frame == ack.frame and gap.ts == ack.ts
    table.add(after)
    table.finish()
    assert rec.stream(0, S2C) == b"220 hello\r\n250 next\r\n"
    stats = rec.closed[0].server_to_client
    assert (stats.gaps, stats.gap_bytes) == (1, 16)


def test_the_ack_rule_delivers_what_was_buffered_beyond_the_missing_bytes() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    conv.send(False, b"lost")  # never captured
    later = conv.send(False, b"kept")
    rec = run([*handshake, later, conv.ack(True)])
    gap = rec.gaps()[0]
    assert (gap.offset, gap.length, gap.frame) == (0, 4, later.frame)
    assert rec.kinds(0)[:3] == ["start", "gap", "data"]
    assert rec.stream(0, S2C) == b"kept"


def test_an_acknowledgement_wildly_ahead_is_ignored_as_garbage() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    data = conv.send(False, b"220 hi\r\n")
    garbage = conv.ack(True, ack=conv.server.nxt + (1 << 31) - 7)
    rec = run([*handshake, data, garbage, conv.send(False, b"more")])
    assert rec.gaps() == []
    assert rec.stream(0, S2C) == b"220 hi\r\nmore"


def test_at_the_end_remaining_holes_are_gaps_and_buffered_bytes_are_delivered() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    conv.send(True, b"missing!")
    tail = conv.send(True, b"tail")
    rec = Recorder()
    table = FlowTable(rec)
    for seg in [*handshake, tail]:
        table.add(seg)
    assert rec.gaps() == []  # it could still arrive
    table.finish()
    (gap,) = rec.gaps()
    assert (gap.offset, gap.length, gap.frame) == (0, 8, tail.frame)
    assert rec.stream(0, C2S) == b"tail"


def test_a_segment_cut_by_the_snaplen_delivers_what_was_captured_and_a_gap_for_the_rest() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    full = b"DATA line that was longer than the snaplen\r\n"
    cut = conv.segment(True, payload=full[:10], payload_len=len(full), flags=ACK)
    conv.client.nxt += len(full)
    nxt = conv.send(True, b".\r\n")
    rec = run([*handshake, cut, nxt])
    assert rec.stream(0, C2S) == full[:10] + b".\r\n"
    (gap,) = rec.gaps()
    assert (gap.offset, gap.length) == (10, len(full) - 10)
    (note,) = rec.anomalies(FlowAnomaly.SNAPLEN_CUT)
    assert note.frames == (cut.frame,)
    assert rec.kinds(0)[1:5] == ["data", "gap", "anomaly", "data"]


def test_a_cut_segment_that_arrives_early_leaves_its_gap_in_place() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    first = conv.send(True, b"12345")
    cut = conv.segment(True, payload=b"ab", payload_len=6, flags=ACK)
    conv.client.nxt += 6
    last = conv.send(True, b"Z")
    rec = run([*handshake, cut, last, first])
    assert rec.stream(0, C2S) == b"12345abZ"
    assert [(g.offset, g.length) for g in rec.gaps()] == [(7, 4)]


def test_too_much_data_behind_a_hole_turns_the_hole_into_a_gap() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    conv.send(True, b"x" * 100)  # lost
    early = [conv.send(True, bytes([65 + i]) * 100) for i in range(5)]
    rec = run([*handshake, *early], max_buffered_per_direction=250)
    (note,) = rec.anomalies(FlowAnomaly.OUT_OF_ORDER_LIMIT)
    assert note.direction is C2S and "offset 0" in note.detail
    (gap,) = rec.gaps()
    assert (gap.offset, gap.length) == (0, 100)
    assert rec.stream(0, C2S) == b"".join(s.payload for s in early)


def test_data_carried_by_the_syn_is_stream_offset_zero() -> None:
    conv = Conversation(client_isn=41)
    syn = conv.segment(True, seq=41, ack=0, flags=0x02, payload=b"early")
    conv.client.nxt = 41 + 1 + 5
    rec = run([syn, conv.send(True, b"-more")])
    assert rec.stream(0, C2S) == b"early-more"
    data = rec.of("data")[0]
    assert isinstance(data, object) and data.offset == 0  # type: ignore[attr-defined]


def test_stream_offsets_beyond_the_wrap_are_counted_past_4_gib() -> None:
    # Offsets are unbounded: a direction may carry more than 2**32 bytes.
    conv = Conversation(client_isn=0)
    handshake = conv.handshake()
    rec = Recorder()
    table = FlowTable(rec)
    for seg in handshake:
        table.add(seg)
    chunk = b"z" * 60_000
    for _ in range(3):
        table.add(conv.send(True, chunk))
    # The receiver acknowledges 4 GiB the capture never saw, a quarter of 2**32 at a time
    # (each step within the largest possible window): the stream goes on past 2**32.
    for _ in range(4):
        conv.client.nxt = (conv.client.nxt + (1 << 30) - 1) & MASK
        table.add(conv.ack(False))
    table.add(conv.send(True, b"end"))
    table.finish()
    last = rec.of("data")[-1]
    assert isinstance(last, StreamData) and last.data == b"end"
    assert last.offset == 180_000 + 4 * ((1 << 30) - 1)
    assert last.offset > 2**32
    assert sum(g.length for g in rec.gaps()) == 4 * ((1 << 30) - 1)


def _data(rec: Recorder) -> list[StreamData]:
    return [d for d in rec.of("data") if isinstance(d, StreamData)]


def test_consecutive_segments_of_one_direction_come_as_one_run_with_each_segments_frame() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    parts = [conv.send(True, p) for p in (b"DATA\r\n", b"Subject: x\r\n\r\n", b"body\r\n.\r\n")]
    rec = run([*handshake, *parts])
    (whole,) = _data(rec)
    assert whole.data == b"DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n"
    assert [(p.offset, p.data, p.frame, p.ts) for p in whole.pieces()] == [
        (0, parts[0].payload, parts[0].frame, parts[0].ts),
        (6, parts[1].payload, parts[1].frame, parts[1].ts),
        (20, parts[2].payload, parts[2].frame, parts[2].ts),
    ]
    assert whole.locate(len(b"DATA\r\nSubject")) == (parts[1].frame, parts[1].ts)


def test_a_run_is_handed_on_before_anything_the_other_direction_sends() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    segments = [
        conv.send(True, b"MAIL FROM:<a@b>\r\n"),
        conv.send(True, b"RCPT TO:<c@d>\r\n"),
        conv.send(False, b"250 ok\r\n"),
        conv.send(False, b"250 ok\r\n"),
        conv.send(True, b"QUIT\r\n"),
        conv.fin(False),
    ]
    rec = run([*handshake, *segments])
    delivered = [(e.direction, e.data) for e in _data(rec)]
    assert delivered == [
        (C2S, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"),
        (S2C, b"250 ok\r\n250 ok\r\n"),
        (C2S, b"QUIT\r\n"),
    ]
    kinds = rec.kinds(0)
    assert kinds.index("end") > max(i for i, k in enumerate(kinds) if k == "data")


def test_a_run_never_holds_more_than_its_limit() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    body = [conv.send(True, bytes([65 + i % 26]) * 1000) for i in range(200)]
    rec = run([*handshake, *body])
    runs = _data(rec)
    assert all(len(r.data) < RUN_BYTES + 1000 for r in runs)
    assert len(runs) == -(-200_000 // RUN_BYTES)
    assert rec.stream(0, C2S) == b"".join(s.payload for s in body)


def test_a_differing_retransmission_of_bytes_in_a_run_names_the_segment_that_carried_them() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    ehlo = conv.send(True, b"EHLO a\r\n")
    original = conv.send(True, b"STARTTLS\r\n")
    masked = conv.segment(True, seq=original.seq, payload=b"XXXXXXXX\r\n")
    rec = run([*handshake, ehlo, original, conv.send(True, b"QUIT\r\n"), masked])
    (note,) = rec.anomalies(FlowAnomaly.RETRANSMISSION_MISMATCH)
    assert note.frames == (original.frame, masked.frame)
    assert rec.stream(0, C2S) == b"EHLO a\r\nSTARTTLS\r\nQUIT\r\n"


def test_the_pieces_of_a_run_between_two_offsets_are_the_segments_holding_those_bytes() -> None:
    conv = Conversation()
    handshake = conv.handshake()
    parts = [conv.send(True, p) for p in (b"aaaa", b"bbbb", b"cccc", b"dddd")]
    (whole,) = _data(run([*handshake, *parts]))
    assert [p.data for p in whole.pieces(5, 9)] == [b"bbbb", b"cccc"]
    assert [p.frame for p in whole.pieces(8, 9)] == [parts[2].frame]
    assert [p.data for p in whole.pieces(15)] == [b"dddd"]
    assert b"".join(p.data for p in whole.pieces()) == whole.data


def test_gathering_runs_never_fills_the_lists_shared_between_runs() -> None:
    conv = Conversation()
    segments = [*conv.handshake(), *(conv.send(i % 3 != 0, b"x" * 500) for i in range(60))]
    run([*segments, *conv.close()])
    assert reassembly._NO_RUN == [] and reassembly._NO_FRAMES == [] and reassembly._NO_TIMES == []
