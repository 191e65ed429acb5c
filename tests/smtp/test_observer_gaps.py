"""Gaps, closes and the end of the capture are ordinary input: resynchronise and go on."""

from __future__ import annotations

import tracemalloc

from analyzer.smtp import SmtpObserver
from analyzer.smtp.events import (
    Command,
    DataEnd,
    DataStart,
    Gap,
    MessageHeader,
    Reply,
    SmtpAnomaly,
    StreamClosed,
)

from .dialogue import C, Dialogue, S, kinds

GREETING = b"220 mx.example.org ESMTP\r\n"
EHLO_REPLY = b"250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n"


def opened() -> Dialogue:
    d = Dialogue()
    d.play([(S, GREETING), (C, b"EHLO c\r\n"), (S, EHLO_REPLY)])
    return d


def answered(d: Dialogue) -> list[tuple[str | None, int]]:
    return [(r.command.verb if r.command else None, r.code) for r in d.of(Reply)]


def test_a_gap_is_an_event_with_its_place() -> None:
    d = opened()
    (gap,) = d.gap(C, 100)
    assert isinstance(gap, Gap) and (gap.direction, gap.offset, gap.length) == (C, 8, 100)


def test_a_command_lost_in_a_client_gap_leaves_its_reply_unmatched() -> None:
    d = opened()
    d.client(b"MAIL FROM:<a@b>\r\n")
    d.gap(C, len(b"RCPT TO:<c@d>\r\n"))
    d.client(b"DATA\r\n")
    d.server(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
    d.client(b"Subject: x\r\n\r\nhi\r\n.\r\n")
    d.server(b"250 queued\r\n")
    assert answered(d)[2:] == [("MAIL", 250), (None, 250), ("DATA", 354), ("DATA", 250)]
    assert [a.kind for a in d.anomalies()] == [
        SmtpAnomaly.COMMAND_AFTER_GAP,
        SmtpAnomaly.REPLY_AFTER_GAP,
    ]
    assert d.of(DataEnd)[0].complete


def test_after_a_client_gap_the_rest_of_a_cut_line_is_skipped() -> None:
    d = opened()
    d.client(b"RCPT TO:<c")
    d.gap(C, 5)
    d.client(b"xample.org>\r\nDATA\r\n")
    assert [c.verb for c in d.of(Command)] == ["EHLO", "DATA"]
    (resync,) = d.anomalies(SmtpAnomaly.COMMAND_AFTER_GAP)
    assert "skipped" in resync.detail and resync.offset == 8 + 10 + 5


def test_replies_lost_in_a_server_gap_do_not_shift_later_replies() -> None:
    d = opened()
    d.client(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
    d.server(b"250 2.1.0 Ok\r\n")
    d.gap(S, len(b"250 2.1.5 Ok\r\n"))
    d.server(b"354 go ahead\r\n")
    d.client(b"Subject: x\r\n\r\nhi\r\n.\r\n")
    d.server(b"250 queued\r\n")
    assert answered(d)[2:] == [("MAIL", 250), ("DATA", 354), ("DATA", 250)]
    assert d.of(DataEnd)[0].complete


def test_a_multi_line_reply_cut_by_a_gap_is_handed_on() -> None:
    d = Dialogue()
    d.play([(S, GREETING), (C, b"EHLO c\r\n"), (S, b"250-mx\r\n250-PIPELINING\r\n250-SI")])
    events = d.gap(S, 20)
    assert kinds(events) == ["Gap", "Reply"]
    assert d.of(Reply)[-1].lines == (b"mx", b"PIPELINING")


def test_a_gap_inside_a_message_body_does_not_end_it() -> None:
    d = opened()
    d.client(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
    d.server(b"250 ok\r\n250 ok\r\n354 go\r\n")
    d.client(b"Subject: x\r\n\r\nfirst part\r\n")
    d.gap(C, 1000)
    d.client(b"more body\r\n.\r\nQUIT\r\n")
    (end,) = d.of(DataEnd)
    assert end.complete
    assert end.size == len(b"Subject: x\r\n\r\nfirst part\r\n") + 1000 + len(b"more body\r\n")
    assert [c.verb for c in d.of(Command)][-1] == "QUIT"


def test_a_message_whose_end_was_lost_in_a_gap_ends_when_commands_follow() -> None:
    d = Dialogue()
    d.play(
        [
            (C, b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
            (C, b"Subject: x\r\n\r\nbody\r\n"),
        ]
    )
    d.gap(C, 500)
    d.client(b"QUIT\r\n")
    (end,) = d.of(DataEnd)
    assert not end.complete
    assert [c.verb for c in d.of(Command)] == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert d.of(Command)[-1].offset == end.offset
    assert SmtpAnomaly.DATA_WITHOUT_END in [a.kind for a in d.anomalies()]


def test_a_gap_in_the_header_section_hands_on_the_field_in_progress() -> None:
    d = opened()
    d.client(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
    d.server(b"250 ok\r\n250 ok\r\n354 go\r\n")
    d.client(b"Subject: x\r\nFrom: a@b\r\nTo: c")
    d.gap(C, 300)
    d.client(b"rest of body\r\n.\r\n")
    assert [h.name for h in d.of(MessageHeader)] == [b"Subject", b"From"]
    assert (
        d.of(DataEnd)[0].complete
        and d.of(DataEnd)[0].header_block == b"Subject: x\r\nFrom: a@b\r\n"
    )


def test_a_gap_before_any_message_byte_still_starts_the_message() -> None:
    d = opened()
    d.client(b"DATA\r\n")
    d.server(b"354 go\r\n")
    d.gap(C, 50)
    d.client(b"tail of body\r\n.\r\n")
    assert [e.offset for e in d.of(DataStart)] == [8 + 6]
    assert d.of(DataEnd)[0].complete and d.of(DataEnd)[0].size == 50 + len(b"tail of body\r\n")


def test_a_gap_inside_a_bdat_chunk_is_counted_in_the_chunk() -> None:
    d = opened()
    d.client(b"BDAT 100 LAST\r\n" + b"a" * 30)
    d.gap(C, 40)
    d.client(b"b" * 30 + b"QUIT\r\n")
    assert d.of(DataEnd)[0].complete and d.of(DataEnd)[0].size == 100
    assert [c.verb for c in d.of(Command)][-1] == "QUIT"


def test_a_gap_running_past_a_bdat_chunk_resynchronises_on_lines() -> None:
    d = opened()
    d.client(b"BDAT 10 LAST\r\n" + b"a" * 5)
    d.gap(C, 12)
    d.client(b"T\r\nNOOP\r\n")
    assert d.of(DataEnd)[0].complete
    assert [c.verb for c in d.of(Command)] == ["EHLO", "BDAT", "NOOP"]


def test_a_gap_after_tls_started_is_only_counted_around() -> None:
    d = opened()
    d.client(b"STARTTLS\r\n")
    d.server(b"220 ready\r\n")
    d.client(bytes.fromhex("160301000401020304"))
    d.gap(C, 1000)
    d.client(b"\x17\x03\x03\x00\x10" + b"\x00" * 16)
    assert d.observer.tls_bytes[C] == 9 + 21
    assert d.anomalies() == []


def test_an_offset_jump_without_a_gap_call_is_a_gap() -> None:
    d = opened()
    events = d.observer.feed(C, b"NOOP\r\n", offset=500, ts=1.0, frame=None)
    assert kinds(events)[:2] == ["Gap", "AnomalySeen:command_after_gap"]
    assert isinstance(events[0], Gap) and (events[0].offset, events[0].length) == (8, 492)
    assert [c.verb for c in d.of(Command) + [e for e in events if isinstance(e, Command)]] == [
        "EHLO",
        "NOOP",
    ]


def test_bytes_seen_before_are_not_parsed_twice() -> None:
    d = opened()
    d.observer.feed(C, b"NOOP\r\n", offset=8, ts=1.0, frame=None)
    again = d.observer.feed(C, b"NOOP\r\nQUIT\r\n", offset=8, ts=1.0, frame=None)
    assert [c.verb for c in again if isinstance(c, Command)] == ["QUIT"]


def test_a_close_flushes_a_partial_command() -> None:
    d = opened()
    d.client(b"QUIT")
    events = d.close(C)
    assert kinds(events) == ["StreamClosed", "Command"]
    assert isinstance(events[0], StreamClosed) and not events[0].reset
    assert (
        isinstance(events[1], Command) and events[1].verb == "QUIT" and events[1].terminator == b""
    )


def test_bytes_after_a_close_are_reported() -> None:
    d = opened()
    d.close(C)
    d.client(b"NOOP\r\n")
    assert [a.kind for a in d.anomalies()] == [SmtpAnomaly.DATA_AFTER_CLOSE]


def test_the_end_of_the_capture_is_flushed_once() -> None:
    d = opened()
    d.client(b"NOOP")
    assert kinds(d.eof()) == ["Command"]
    assert d.eof() == []


def test_a_hostile_ten_megabyte_command_line_keeps_memory_bounded() -> None:
    d = Dialogue(SmtpObserver(max_line=4096))
    d.play([(S, GREETING)])
    tracemalloc.start()
    try:
        for _ in range(10 * 1024 * 1024 // 65536):
            d.client(b"A" * 65536)
            assert d.observer.buffered(C) <= 4096
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000
    d.client(b"\r\nQUIT\r\n")
    hostile, quit_ = d.of(Command)
    assert len(hostile.raw) == 4096 and hostile.terminator == b"\r\n"
    assert quit_.verb == "QUIT" and quit_.offset == 10 * 1024 * 1024 + 2
    assert {a.kind for a in d.anomalies()} == {
        SmtpAnomaly.LINE_TRUNCATED,
        SmtpAnomaly.COMMAND_LINE_TOO_LONG,
        SmtpAnomaly.UNKNOWN_COMMAND,
    }


def test_a_hostile_endless_reply_keeps_memory_bounded() -> None:
    d = Dialogue(SmtpObserver(max_line=4096))
    d.play([(S, GREETING), (C, b"EHLO c\r\n")])
    for _ in range(2000):
        d.server(b"250-" + b"K" * 1000 + b"\r\n")
        assert d.observer.buffered(S) <= 4096
    d.server(b"250 end\r\n")
    ehlo = d.of(Reply)[-1]
    assert len(ehlo.raw) <= 4096
    assert SmtpAnomaly.LINE_TRUNCATED in [a.kind for a in d.anomalies()]


def test_bytes_like_input_is_read_like_bytes() -> None:
    d = opened()
    events = d.observer.feed(C, memoryview(b"NOOP\r\n"), offset=8, ts=1.0, frame=None)
    events += d.observer.feed(C, bytearray(b"QUIT\r\n"), offset=14, ts=1.0, frame=None)
    assert [c.verb for c in events if isinstance(c, Command)] == ["NOOP", "QUIT"]
