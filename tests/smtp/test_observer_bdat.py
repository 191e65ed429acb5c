"""BDAT (RFC 3030): counted chunks, no dot-stuffing, no end mark; pipelined with commands."""

from __future__ import annotations

from analyzer.smtp.events import (
    BdatChunk,
    Command,
    DataEnd,
    DataStart,
    MessageHeader,
    Reply,
    SmtpAnomaly,
)

from .dialogue import C, Dialogue, S, run

OPENING = [
    (S, b"220 mx.example.org ESMTP Postfix\r\n"),
    (C, b"EHLO c.example.com\r\n"),
    (S, b"250-mx.example.org\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n"),
]
PART1 = b"From: a@example.com\r\nSubject: chunked\r\n\r\n.line with a leading dot\r\n"
PART2 = b"\r\n.\r\nnot an end mark in BDAT\r\n"


def test_bdat_chunks_and_last_end_the_message() -> None:
    d = run(
        [
            *OPENING,
            (
                C,
                b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"
                b"BDAT %d\r\n" % len(PART1) + PART1,
            ),
            (S, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 %d bytes\r\n" % len(PART1)),
            (C, b"BDAT %d LAST\r\n" % len(PART2) + PART2),
            (S, b"250 2.0.0 Ok: queued as 4Vf3Q\r\n"),
            (C, b"QUIT\r\n"),
            (S, b"221 Bye\r\n"),
        ]
    )
    chunks = d.of(BdatChunk)
    assert [(c.size, c.last) for c in chunks] == [(len(PART1), False), (len(PART2), True)]
    start = len(
        b"EHLO c.example.com\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nBDAT 66\r\n"
    )
    assert len(PART1) == 67 and chunks[0].offset == start
    (data_start,) = d.of(DataStart)
    assert data_start.offset == start
    (end,) = d.of(DataEnd)
    assert end.complete and end.size == len(PART1) + len(PART2)
    assert end.header_block == b"From: a@example.com\r\nSubject: chunked\r\n"
    assert [h.name for h in d.of(MessageHeader)] == [b"From", b"Subject"]
    assert [c.verb for c in d.of(Command)] == ["EHLO", "MAIL", "RCPT", "BDAT", "BDAT", "QUIT"]
    answered = [(r.command.verb, r.command.args, r.code) for r in d.of(Reply) if r.command]
    assert answered[-2:] == [("BDAT", b"%d LAST" % len(PART2), 250), ("QUIT", b"", 221)]
    assert d.anomalies() == []


def test_pipelined_bdat_chunks_and_commands_in_one_segment() -> None:
    d = run(
        [
            *OPENING,
            (
                C,
                b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 5\r\nHELLOBDAT 7 LAST\r\n, BOB\r\n"
                b"QUIT\r\n",
            ),
            (S, b"250 ok\r\n250 ok\r\n250 5 octets\r\n250 queued\r\n221 bye\r\n"),
        ]
    )
    assert [(c.size, c.last) for c in d.of(BdatChunk)] == [(5, False), (7, True)]
    assert d.of(DataEnd)[0].size == 12
    assert [r.command.verb for r in d.of(Reply) if r.command] == [
        "EHLO",
        "MAIL",
        "RCPT",
        "BDAT",
        "BDAT",
        "QUIT",
    ]


def test_a_chunk_split_over_many_segments_is_counted_exactly() -> None:
    payload = b"Subject: x\r\n\r\n" + b"y" * 5000
    d = Dialogue()
    d.play([*OPENING, (C, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT %d LAST\r\n" % len(payload))])
    for i in range(0, len(payload), 1000):
        d.client(payload[i : i + 1000])
    d.client(b"QUIT\r\n")
    assert d.of(DataEnd)[0].size == len(payload) and d.of(DataEnd)[0].long_lines == 1
    assert d.of(Command)[-1].verb == "QUIT"


def test_an_empty_last_chunk_ends_the_message() -> None:
    d = run([*OPENING, (C, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 3\r\nabcBDAT 0 LAST\r\n")])
    assert [(c.size, c.last) for c in d.of(BdatChunk)] == [(3, False), (0, True)]
    assert d.of(DataEnd)[0].complete and d.of(DataEnd)[0].size == 3


def test_a_bad_chunk_size_is_reported_and_lines_stay_commands() -> None:
    d = run([*OPENING, (C, b"BDAT lots\r\nNOOP\r\n"), (S, b"501 bad size\r\n250 ok\r\n")])
    assert [c.verb for c in d.of(Command)] == ["EHLO", "BDAT", "NOOP"]
    assert [a.kind for a in d.anomalies()] == [SmtpAnomaly.BDAT_BAD_SIZE]
    assert d.of(BdatChunk) == []


def test_a_message_cut_inside_a_chunk_ends_incomplete() -> None:
    d = Dialogue()
    d.play([*OPENING, (C, b"BDAT 100 LAST\r\nSubject: x\r\n\r\npartial")])
    d.close(C, reset=True)
    (end,) = d.of(DataEnd)
    assert not end.complete and end.size == len(b"Subject: x\r\n\r\npartial")
    assert d.of(BdatChunk) == []
    assert SmtpAnomaly.DATA_WITHOUT_END in [a.kind for a in d.anomalies()]


def test_a_reset_before_the_last_chunk_abandons_the_message() -> None:
    d = run([*OPENING, (C, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 3\r\nabcRSET\r\n")])
    (end,) = d.of(DataEnd)
    assert not end.complete and end.size == 3
    assert [c.verb for c in d.of(Command)][-1] == "RSET"
