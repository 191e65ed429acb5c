"""DATA: the message's header fields, its end mark however it is cut, its size and line counts."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzer._common import FrameRef
from analyzer.smtp import SmtpObserver
from analyzer.smtp.events import (
    AnomalySeen,
    Command,
    DataEnd,
    DataStart,
    Event,
    MessageHeader,
    Reply,
    SmtpAnomaly,
    StreamClosed,
)
from analyzer.smtp.message import TEXT_CONTENT_MAX, _may_hold_long_lines

from .dialogue import C, Dialogue, S, kinds, run

OPENING = [
    (S, b"220 mx.example.org ESMTP Postfix\r\n"),
    (C, b"EHLO client.example.com\r\n"),
    (S, b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"),
    (C, b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"),
    (S, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"),
]
DATA_START = len(b"EHLO client.example.com\r\n") + len(
    b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
)

DKIM = (
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;\r\n"
    b" s=sel2024; t=1715680000; h=from:to:subject:date:message-id;\r\n"
    b" bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
    b" b=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgbG9va3MgbGlrZSBvbmU=\r\n"
)
HEADERS = (
    DKIM
    + b"From: Alice <alice@example.com>\r\n"
    + b"To: Bob <bob@example.org>\r\n"
    + b"Subject: a folded\r\n\tsubject line\r\n"
    + b"Message-ID: <20240514100000.1@example.com>\r\n"
)
BODY = b"Hello Bob,\r\n..leading dot doubled\r\n.\tdot and tab\r\n\r\nBye.\r\n"
MESSAGE = HEADERS + b"\r\n" + BODY
WIRE = MESSAGE + b".\r\n"


def unstuffed(message: bytes) -> bytes:
    return b"\r\n".join(
        line[1:] if line.startswith(b".") else line for line in message.split(b"\r\n")
    )


def test_header_fields_come_whole_with_their_continuation_lines() -> None:
    d = run([*OPENING, (C, WIRE), (S, b"250 2.0.0 Ok: queued as 4Vf3Q\r\n")])
    headers = d.of(MessageHeader)
    assert [h.name for h in headers] == [
        b"DKIM-Signature",
        b"From",
        b"To",
        b"Subject",
        b"Message-ID",
    ]
    assert headers[0].raw == DKIM
    assert headers[3].raw == b"Subject: a folded\r\n\tsubject line\r\n"
    assert headers[0].offset == DATA_START
    assert headers[1].offset == DATA_START + len(DKIM)
    assert headers[0].longest_line == len(
        b" b=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgbG9va3MgbGlrZSBvbmU="
    )


def test_the_message_end_gives_its_unstuffed_size_and_header_block() -> None:
    d = run([*OPENING, (C, WIRE), (S, b"250 2.0.0 Ok: queued as 4Vf3Q\r\n")])
    (start,) = d.of(DataStart)
    (end,) = d.of(DataEnd)
    assert start.offset == DATA_START
    assert end.complete
    assert end.size == len(unstuffed(MESSAGE)) == len(MESSAGE) - 2
    assert end.header_block == HEADERS
    assert end.offset == DATA_START + len(WIRE)
    assert (end.bare_lf_lines, end.long_lines) == (0, 0)
    queued = d.of(Reply)[-1]
    assert queued.command is not None and queued.command.verb == "DATA"
    assert d.anomalies() == []


def test_a_header_is_handed_on_as_soon_as_the_next_field_starts() -> None:
    d = Dialogue()
    d.play(OPENING)
    assert not [e for e in d.client(DKIM) if isinstance(e, MessageHeader)]
    (dkim,) = [e for e in d.client(b"F") if isinstance(e, MessageHeader)]
    assert dkim.name == b"DKIM-Signature"


def test_a_header_spanning_segments_cites_its_first_and_last_frame() -> None:
    d = Dialogue()
    d.play([*OPENING, (C, DKIM[:50]), (C, DKIM[50:120]), (C, DKIM[120:] + b"From: a\r\n")])
    (dkim,) = d.of(MessageHeader)
    assert dkim.frame == FrameRef("test", 6) and dkim.last_frame == FrameRef("test", 8)
    assert dkim.ts == pytest.approx(1000.006)


@pytest.mark.parametrize("reset_side", [C, S])
def test_a_reset_right_after_a_dkim_signature_still_hands_on_the_header(reset_side: object) -> None:
    d = Dialogue()
    d.play([*OPENING, (C, b"Received: from client.example.com\r\n" + DKIM)])
    assert [h.name for h in d.of(MessageHeader)] == [b"Received"]
    events = d.close(reset_side, reset=True)
    assert kinds(events) == [
        "StreamClosed",
        "MessageHeader",
        "DataEnd",
        "AnomalySeen:data_without_end",
    ]
    closed, dkim, end, _ = events
    assert isinstance(closed, StreamClosed) and closed.reset
    assert isinstance(dkim, MessageHeader) and dkim.name == b"DKIM-Signature" and dkim.raw == DKIM
    assert isinstance(end, DataEnd) and not end.complete
    assert end.size == len(b"Received: from client.example.com\r\n" + DKIM)


def test_a_header_line_cut_by_a_reset_is_handed_on_as_far_as_it_went() -> None:
    d = Dialogue()
    d.play([*OPENING, (C, DKIM + b"From: Alice <ali")])
    d.close(C, reset=True)
    assert [(h.name, h.raw) for h in d.of(MessageHeader)] == [
        (b"DKIM-Signature", DKIM),
        (b"From", b"From: Alice <ali"),
    ]
    (end,) = d.of(DataEnd)
    assert not end.complete and end.header_block == DKIM + b"From: Alice <ali"


def test_a_server_fin_does_not_end_the_message() -> None:
    d = Dialogue()
    d.play([*OPENING, (C, HEADERS)])
    d.close(S)
    assert d.of(DataEnd) == []
    d.client(b"\r\nbody\r\n.\r\n")
    assert d.of(DataEnd)[0].complete


def test_the_end_of_the_capture_ends_the_message_incomplete() -> None:
    d = run([*OPENING, (C, HEADERS + b"\r\nsome body")])
    (end,) = d.of(DataEnd)
    assert not end.complete and end.size == len(HEADERS) + 2 + len(b"some body")
    assert [a.kind for a in d.anomalies()] == [SmtpAnomaly.DATA_WITHOUT_END]


def test_a_1200_octet_header_line_is_too_long_for_rfc_5322() -> None:
    long_b = b" b=" + b"A" * 1197 + b"\r\n"
    d = run([*OPENING, (C, DKIM[:-2] + b"\r\n" + long_b + b"From: a\r\n\r\nhi\r\n.\r\n")])
    dkim = d.of(MessageHeader)[0]
    assert dkim.longest_line == 1200
    (too_long,) = d.anomalies(SmtpAnomaly.HEADER_LINE_TOO_LONG)
    assert too_long.offset == DATA_START + len(DKIM)
    assert "1200" in too_long.detail and "DKIM-Signature" in too_long.detail
    assert d.of(DataEnd)[0].long_lines == 1
    assert d.anomalies(SmtpAnomaly.TEXT_LINE_TOO_LONG) == []


def test_a_998_octet_header_line_is_within_the_limit() -> None:
    d = run([*OPENING, (C, b"X-Pad: " + b"p" * 991 + b"\r\n\r\n.\r\n")])
    assert d.of(MessageHeader)[0].longest_line == 998
    assert d.anomalies() == []


def wire_events(chunks: list[bytes]) -> list[Event]:
    """Feed the opening, then the message in the given segments, all with one frame, then QUIT."""
    observer = SmtpObserver()
    frame = FrameRef("t", 1)
    offsets = {C: 0, S: 0}
    events: list[Event] = []

    def feed(direction: object, data: bytes) -> None:
        events.extend(
            observer.feed(direction, data, offset=offsets[direction], ts=1.0, frame=frame)
        )
        offsets[direction] += len(data)

    for direction, data in OPENING:
        feed(direction, data)
    for chunk in chunks:
        feed(C, chunk)
    feed(S, b"250 2.0.0 Ok\r\n221 Bye\r\n")
    events.extend(observer.feed_eof(ts=2.0))
    return events


def test_the_end_mark_is_found_however_the_last_octets_are_cut() -> None:
    stream = WIRE + b"QUIT\r\n"
    whole = wire_events([stream])
    assert kinds(whole)[-4:] == ["DataEnd", "Command", "Reply", "Reply"]
    tail = 11  # "Bye.\r\n" ends the body: covers every cut of "\r\n.\r\n" and around it
    head = len(stream) - len(b"QUIT\r\n") - tail
    cut_region = stream[head : head + tail]
    for cuts in itertools.product((False, True), repeat=tail - 1):
        pieces = [stream[:head]]
        current = cut_region[:1]
        for i, cut in enumerate(cuts, start=1):
            if cut:
                pieces.append(current)
                current = b""
            current += cut_region[i : i + 1]
        pieces += [current, b"QUIT\r\n"]
        assert wire_events(pieces) == whole, pieces


def test_the_end_mark_is_found_with_any_single_cut_and_in_single_octets() -> None:
    stream = WIRE + b"QUIT\r\n"
    whole = wire_events([stream])
    for cut in range(1, len(stream)):
        assert wire_events([stream[:cut], stream[cut:]]) == whole, cut
    assert wire_events([stream[i : i + 1] for i in range(len(stream))]) == whole
    assert wire_events([WIRE[:-1], b"\n", b"QUIT\r\n"]) == whole


def test_an_empty_message_ends_at_once() -> None:
    d = run([*OPENING, (C, b".\r\n"), (S, b"250 2.0.0 Ok\r\n")])
    (end,) = d.of(DataEnd)
    assert end.complete and end.size == 0 and end.header_block == b""
    assert d.of(DataStart)[0].offset == DATA_START
    assert d.of(Reply)[-1].command is not None and d.of(Reply)[-1].command.verb == "DATA"


def test_a_message_of_headers_only_ends_at_the_mark() -> None:
    d = run([*OPENING, (C, b"Subject: x\r\n.\r\nQUIT\r\n")])
    assert [h.name for h in d.of(MessageHeader)] == [b"Subject"]
    (end,) = d.of(DataEnd)
    assert end.complete and end.size == len(b"Subject: x\r\n")
    assert [c.verb for c in d.of(Command)][-1] == "QUIT"


def test_a_line_that_is_not_a_field_ends_the_header_section() -> None:
    d = run([*OPENING, (C, b"Subject: x\r\nthis is body text\r\nNot: a header\r\n.\r\n")])
    assert [h.name for h in d.of(MessageHeader)] == [b"Subject"]
    assert d.of(DataEnd)[0].header_block == b"Subject: x\r\n"


def test_body_lines_over_1000_octets_are_counted_and_reported_once() -> None:
    ok_line = b"a" * 998 + b"\r\n"
    long_line = b"b" * 999 + b"\r\n"
    body = b"Subject: x\r\n\r\n" + ok_line + long_line + ok_line + long_line + b"." + ok_line
    d = run([*OPENING, (C, body + b".\r\n")])
    (end,) = d.of(DataEnd)
    assert end.long_lines == 2
    (anomaly,) = d.anomalies(SmtpAnomaly.TEXT_LINE_TOO_LONG)
    assert anomaly.offset == DATA_START + len(b"Subject: x\r\n\r\n") + len(ok_line)
    assert end.size == len(body) - 1


def test_a_huge_body_line_is_one_long_line() -> None:
    d = Dialogue()
    d.play([*OPENING, (C, b"Subject: x\r\n\r\n")])
    for _ in range(100):
        d.client(b"z" * 1460)
        assert d.observer.buffered(C) < 100
    d.client(b"\r\n.\r\n")
    (end,) = d.of(DataEnd)
    assert end.long_lines == 1 and end.size == len(b"Subject: x\r\n\r\n") + 146_000 + 2


def test_bare_lf_lines_in_the_message_are_counted() -> None:
    body = b"Subject: x\n\nline one\nline two\r\nline three\r\n.\r\n"
    d = run([*OPENING, (C, body)])
    (end,) = d.of(DataEnd)
    assert end.complete and end.bare_lf_lines == 3
    assert len(d.anomalies(SmtpAnomaly.BARE_LF)) == 1


def test_a_lone_lf_before_the_dot_is_not_the_end_of_data() -> None:
    d = Dialogue()
    d.play([*OPENING, (C, b"Subject: x\r\n\r\nbody\n.\nmore\r\n")])
    assert d.of(DataEnd) == []
    d.client(b".\r\n")
    assert d.of(DataEnd)[0].complete


def test_a_server_reply_inside_the_message_ends_it_and_answers_data() -> None:
    d = run(
        [
            *OPENING,
            (C, b"Subject: x\r\n\r\nbody\n.\n"),
            (S, b"250 2.0.0 Ok: queued\r\n"),
            (C, b"QUIT\r\n"),
            (S, b"221 Bye\r\n"),
        ]
    )
    (end,) = d.of(DataEnd)
    assert not end.complete
    queued, bye = d.of(Reply)[-2:]
    assert queued.command is not None and queued.command.verb == "DATA"
    assert bye.command is not None and bye.command.verb == "QUIT"
    assert SmtpAnomaly.DATA_WITHOUT_END in [a.kind for a in d.anomalies()]


def test_a_rejected_data_command_leaves_the_client_in_command_mode() -> None:
    d = run(
        [
            (S, b"220 mx\r\n"),
            (C, b"HELO c\r\n"),
            (S, b"250 mx\r\n"),
            (C, b"MAIL FROM:<a@b>\r\n"),
            (S, b"250 ok\r\n"),
            (C, b"RCPT TO:<c@d>\r\n"),
            (S, b"550 no such user\r\n"),
            (C, b"DATA\r\n"),
            (S, b"554 5.5.1 Error: no valid recipients\r\n"),
            (C, b"QUIT\r\n"),
            (S, b"221 Bye\r\n"),
        ]
    )
    assert d.of(DataStart) == [] and d.of(DataEnd) == []
    assert [c.verb for c in d.of(Command)] == ["HELO", "MAIL", "RCPT", "DATA", "QUIT"]


def test_in_a_capture_without_server_bytes_data_starts_right_after_the_command() -> None:
    d = run(
        [
            (C, b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
            (C, b"Subject: one-sided\r\n\r\nQUIT is a word here\r\n.\r\nQUIT\r\n"),
        ]
    )
    assert [c.verb for c in d.of(Command)] == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert [h.name for h in d.of(MessageHeader)] == [b"Subject"]
    assert d.of(DataEnd)[0].complete


def test_a_354_arriving_after_data_started_in_a_one_sided_guess_answers_data() -> None:
    d = run(
        [
            (C, b"DATA\r\n"),
            (S, b"354 go ahead\r\n"),
            (C, b"Subject: x\r\n\r\nhi\r\n.\r\n"),
            (S, b"250 ok\r\n"),
        ]
    )
    assert d.of(DataEnd)[0].complete
    assert [r.command.verb for r in d.of(Reply) if r.command] == ["DATA", "DATA"]


def test_bytes_the_client_sent_before_the_354_arrived_begin_the_message() -> None:
    d = run(
        [
            *OPENING[:3],
            (C, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubj"),
            (S, b"250 ok\r\n250 ok\r\n354 go\r\n"),
            (C, b"ect: early\r\n\r\n.\r\n"),
        ]
    )
    assert [h.raw for h in d.of(MessageHeader)] == [b"Subject: early\r\n"]


def test_a_header_section_longer_than_the_cap_is_cut_and_the_rest_read_as_body() -> None:
    fields = b"".join(b"X-Field-%04d: value\r\n" % i for i in range(200))
    d = run([*OPENING, (C, fields + b"\r\nbody\r\n.\r\n")], max_header_block=1000)
    (end,) = d.of(DataEnd)
    assert len(end.header_block) == 1000 and end.complete
    assert len(d.of(MessageHeader)) < 200
    assert end.size == len(fields) + len(b"\r\nbody\r\n")
    assert SmtpAnomaly.LINE_TRUNCATED in [a.kind for a in d.anomalies()]


def test_a_ten_megabyte_message_keeps_memory_bounded() -> None:
    d = Dialogue()
    d.play([*OPENING, (C, HEADERS + b"\r\n")])
    line = b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n"
    chunk = line * 19
    for _ in range(10_000_000 // len(chunk)):
        d.client(chunk)
    assert d.observer.buffered(C) < len(HEADERS) + 100
    d.client(b".\r\n")
    (end,) = d.of(DataEnd)
    assert end.complete and end.size == len(HEADERS) + 2 + len(chunk) * (10_000_000 // len(chunk))
    assert not any(isinstance(e, AnomalySeen) for e in d.events)


@given(st.lists(st.integers(0, 2100), min_size=1, max_size=12))
def test_the_long_line_precheck_misses_no_line_over_the_limit(lengths: list[int]) -> None:
    data = b"\n" + b"".join(b"x" * n + b"\n" for n in lengths)
    wide = any(n > TEXT_CONTENT_MAX for n in lengths)
    assert _may_hold_long_lines(data, 0, len(data) - 1) == wide
