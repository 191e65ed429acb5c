"""Reply lines, multi-line replies, EHLO keywords and enhanced status codes."""

from __future__ import annotations

from analyzer._common import FrameRef
from analyzer.smtp import EnhancedStatus, enhanced_status, parse_ehlo_keywords
from analyzer.smtp.events import Reply, SmtpAnomaly
from analyzer.smtp.lines import Line
from analyzer.smtp.replies import ReplyAssembler, parse_enhanced_status, parse_reply_line

FRAME = FrameRef("t", 1)


def line(content: bytes, offset: int = 0) -> Line:
    return Line(content, b"\r\n", offset, len(content), FRAME, FRAME, 1.0, 1.0)


def reply(*lines: bytes, code: int = 250) -> Reply:
    raw = b"".join(b"%d-%s\r\n" % (code, text) for text in lines)
    return Reply(code, lines, raw, None, False, 0, None, None, 0.0, 0.0)


def test_reply_lines_are_split_into_code_mark_and_text() -> None:
    assert parse_reply_line(b"250-PIPELINING") == (250, True, b"PIPELINING")
    assert parse_reply_line(b"250 OK") == (250, False, b"OK")
    assert parse_reply_line(b"250") == (250, False, b"")
    assert parse_reply_line(b"220 *****0**2****") == (220, False, b"*****0**2****")


def test_lines_without_a_code_are_malformed() -> None:
    for bad in (b"hello", b"25 OK", b"2500 OK", b"250_OK", b"", b"\xb2\xb5\xb0 x"):
        parsed = parse_reply_line(bad)
        assert parsed.code is None and parsed.text == bad


def test_a_multi_line_reply_is_assembled_until_its_last_line() -> None:
    assembler = ReplyAssembler(10_000)
    assert assembler.add(line(b"250-mx.example.org")) == (None, None)
    assert assembler.in_reply
    assert assembler.add(line(b"250-PIPELINING", 20)) == (None, None)
    done, oddity = assembler.add(line(b"250 8BITMIME", 36))
    assert oddity is None and done is not None
    assert done.code == 250
    assert done.lines == (b"mx.example.org", b"PIPELINING", b"8BITMIME")
    assert done.raw == b"250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
    assert done.offset == 0
    assert not assembler.in_reply


def test_a_code_change_inside_a_multi_line_reply_is_an_anomaly_and_the_line_is_kept() -> None:
    assembler = ReplyAssembler(10_000)
    assembler.add(line(b"250-first"))
    done, oddity = assembler.add(line(b"251 second"))
    assert oddity is not None and oddity[0] is SmtpAnomaly.MULTILINE_CODE_MISMATCH
    assert done is not None and done.code == 250 and done.lines == (b"first", b"second")


def test_a_malformed_line_alone_is_a_code_0_reply() -> None:
    done, oddity = ReplyAssembler(10_000).add(line(b"*********"))
    assert oddity is not None and oddity[0] is SmtpAnomaly.MALFORMED_REPLY
    assert done is not None and done.code == 0 and done.lines == (b"*********",)


def test_a_malformed_line_inside_a_multi_line_reply_is_attached() -> None:
    assembler = ReplyAssembler(10_000)
    assembler.add(line(b"250-first"))
    done, oddity = assembler.add(line(b"garbage"))
    assert done is None and oddity is not None and oddity[0] is SmtpAnomaly.MALFORMED_REPLY
    done, _ = assembler.add(line(b"250 last"))
    assert done is not None and done.lines == (b"first", b"garbage", b"last")


def test_a_reply_outgrowing_the_cap_keeps_its_first_lines_and_counts_the_rest() -> None:
    assembler = ReplyAssembler(100)
    for _ in range(50):
        assembler.add(line(b"250-" + b"K" * 20))
    done, _ = assembler.add(line(b"250 end"))
    assert done is not None
    assert len(done.raw) <= 100
    assert len(done.lines) + done.dropped_lines == 51


def test_flush_hands_over_an_unfinished_reply() -> None:
    assembler = ReplyAssembler(10_000)
    assembler.add(line(b"250-mx"))
    done = assembler.flush()
    assert done is not None and done.lines == (b"mx",)
    assert assembler.flush() is None


POSTFIX_EHLO = (
    b"mx.example.org",
    b"PIPELINING",
    b"SIZE 10240000",
    b"VRFY",
    b"ETRN",
    b"STARTTLS",
    b"AUTH PLAIN LOGIN",
    b"AUTH=PLAIN LOGIN",
    b"ENHANCEDSTATUSCODES",
    b"8BITMIME",
    b"DSN",
    b"SMTPUTF8",
    b"CHUNKING",
)


def test_postfix_ehlo_keywords() -> None:
    keywords = parse_ehlo_keywords(reply(*POSTFIX_EHLO))
    assert [k.name for k in keywords] == [
        "PIPELINING",
        "SIZE",
        "VRFY",
        "ETRN",
        "STARTTLS",
        "AUTH",
        "AUTH",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "DSN",
        "SMTPUTF8",
        "CHUNKING",
    ]
    assert keywords[1].params == ("10240000",)
    assert keywords[5].params == ("PLAIN", "LOGIN")
    assert keywords[6].params == ("PLAIN", "LOGIN") and keywords[6].raw == b"AUTH=PLAIN LOGIN"


def test_exim_ehlo_keywords_are_upper_cased() -> None:
    keywords = parse_ehlo_keywords(
        reply(
            b"mail.example.net Hello client [192.0.2.7]",
            b"SIZE 52428800",
            b"8BITMIME",
            b"pipelining",
            b"PRDR",
            b"HELP",
        )
    )
    assert [k.name for k in keywords] == ["SIZE", "8BITMIME", "PIPELINING", "PRDR", "HELP"]


def test_a_masked_keyword_is_a_keyword_of_its_own() -> None:
    keywords = parse_ehlo_keywords(
        reply(b"mx.example.org", b"PIPELINING", b"XXXXXXXA", b"XXXB", b"8BITMIME")
    )
    assert [k.name for k in keywords] == ["PIPELINING", "XXXXXXXA", "XXXB", "8BITMIME"]
    assert keywords[1].raw == b"XXXXXXXA" and keywords[1].params == ()


def test_the_greeting_line_of_the_ehlo_reply_is_not_a_keyword() -> None:
    assert parse_ehlo_keywords(reply(b"STARTTLS")) == ()


def test_enhanced_status_codes() -> None:
    assert parse_enhanced_status(b"2.1.0 Ok") == EnhancedStatus(2, 1, 0)
    assert str(parse_enhanced_status(b"#5.5.1 command not recognized")) == "5.5.1"
    assert parse_enhanced_status(b"5.7.1") == EnhancedStatus(5, 7, 1)
    assert parse_enhanced_status(b"Ok") is None
    assert parse_enhanced_status(b"3.1.0 no such class") is None
    assert parse_enhanced_status(b"5.5.1.2 too many parts") is None
    assert enhanced_status(reply(b"4.7.0 TLS not available", code=454)) == EnhancedStatus(4, 7, 0)
