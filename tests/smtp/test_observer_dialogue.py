"""Whole dialogues: the greeting, commands, replies tied to the commands they answer."""

from __future__ import annotations

from analyzer.smtp.events import Command, DataEnd, Reply, SmtpAnomaly

from .dialogue import C, S, run

POSTFIX_GREETING = b"220 mx.example.org ESMTP Postfix (Debian/GNU)\r\n"
POSTFIX_EHLO = (
    b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n"
    b"250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250 SMTPUTF8\r\n"
)
EXIM_GREETING = (
    b"220-mail.example.net ESMTP Exim 4.96 Tue, 14 May 2024 10:00:00 +0000\r\n"
    b"220 We do not authorize the use of this system to transport unsolicited mail\r\n"
)
EXIM_EHLO = (
    b"250-mail.example.net Hello client.example.com [192.0.2.7]\r\n250-SIZE 52428800\r\n"
    b"250-8BITMIME\r\n250-ETRN\r\n250-HELP\r\n250 CHUNKING\r\n"
)


def postfix_session() -> list[tuple[object, bytes]]:
    return [
        (S, POSTFIX_GREETING),
        (C, b"EHLO client.example.com\r\n"),
        (S, POSTFIX_EHLO),
        (
            C,
            b"MAIL FROM:<alice@example.com> SIZE=310\r\nRCPT TO:<bob@example.org>\r\n"
            b"RCPT TO:<carol@example.org>\r\nDATA\r\n",
        ),
        (
            S,
            b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <carol@example.org>: Recipient address "
            b"rejected: User unknown\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
        ),
        (C, b"From: alice@example.com\r\nSubject: hello\r\n\r\nHi Bob.\r\n.\r\n"),
        (S, b"250 2.0.0 Ok: queued as 4Vf3QT1FzVz9sWc\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 2.0.0 Bye\r\n"),
    ]


def test_the_first_reply_is_the_greeting_and_answers_no_command() -> None:
    d = run(postfix_session())
    greeting = d.of(Reply)[0]
    assert greeting.is_greeting and greeting.command is None
    assert greeting.code == 220 and greeting.lines == (
        b"mx.example.org ESMTP Postfix (Debian/GNU)",
    )
    assert not any(r.is_greeting for r in d.of(Reply)[1:])


def test_pipelined_commands_each_get_their_own_reply() -> None:
    d = run(postfix_session())
    answered = [(r.command.verb if r.command else None, r.code) for r in d.of(Reply)]
    assert answered == [
        (None, 220),
        ("EHLO", 250),
        ("MAIL", 250),
        ("RCPT", 250),
        ("RCPT", 550),
        ("DATA", 354),
        ("DATA", 250),
        ("QUIT", 221),
    ]
    rcpts = [r for r in d.of(Reply) if r.command and r.command.verb == "RCPT"]
    assert rcpts[1].command is not None and rcpts[1].command.args == b"TO:<carol@example.org>"
    assert d.anomalies() == []


def test_commands_keep_their_offsets_frames_and_terminators() -> None:
    d = run(postfix_session())
    commands = d.of(Command)
    assert [c.verb for c in commands] == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]
    assert [c.offset for c in commands[:3]] == [0, 25, 65]
    assert commands[1].frame is not None and commands[1].frame.frame_no == 4
    assert all(c.terminator == b"\r\n" and c.known for c in commands)


def test_the_reply_to_the_end_of_data_answers_the_data_command() -> None:
    d = run(postfix_session())
    end = d.of(DataEnd)[0]
    queued = d.of(Reply)[6]
    assert end.complete and queued.code == 250
    assert queued.command is not None and queued.command.verb == "DATA"
    assert queued.offset > 0 and queued.frame is not None and queued.frame.frame_no == 7


def test_an_exim_multi_line_greeting_and_ehlo_reply() -> None:
    d = run(
        [
            (S, EXIM_GREETING),
            (C, b"EHLO client.example.com\r\n"),
            (S, EXIM_EHLO),
            (C, b"QUIT\r\n"),
            (S, b"221 mail.example.net closing connection\r\n"),
        ]
    )
    greeting, ehlo, bye = d.of(Reply)
    assert greeting.is_greeting and len(greeting.lines) == 2
    assert greeting.raw == EXIM_GREETING
    assert ehlo.command is not None and ehlo.command.verb == "EHLO" and len(ehlo.lines) == 6
    assert bye.code == 221
    assert d.anomalies() == []


def test_a_masked_banner_is_still_the_greeting() -> None:
    d = run(
        [
            (S, b"220 *************0***2*****************\r\n"),
            (C, b"HELO a\r\n"),
            (S, b"250 mx\r\n"),
        ]
    )
    assert d.of(Reply)[0].is_greeting and d.of(Reply)[0].code == 220


def test_a_banner_masked_entirely_is_a_malformed_greeting() -> None:
    d = run([(S, b"****************************\r\n"), (C, b"HELO a\r\n"), (S, b"250 mx\r\n")])
    greeting, helo = d.of(Reply)
    assert greeting.is_greeting and greeting.code == 0
    assert helo.command is not None and helo.command.verb == "HELO"
    assert [a.kind for a in d.anomalies()] == [SmtpAnomaly.MALFORMED_REPLY]


def test_a_reply_nobody_asked_for_is_an_anomaly() -> None:
    d = run([(S, b"220 mx\r\n"), (C, b"NOOP\r\n"), (S, b"250 ok\r\n250 ok again\r\n")])
    extra = d.of(Reply)[2]
    assert extra.command is None and not extra.is_greeting
    assert [a.kind for a in d.anomalies()] == [SmtpAnomaly.REPLY_WITHOUT_COMMAND]


def test_a_command_before_the_greeting_is_an_anomaly_and_still_gets_its_reply() -> None:
    d = run([(C, b"EHLO eager\r\n"), (S, b"220 mx\r\n250 mx greets eager\r\n")])
    greeting, ehlo = d.of(Reply)
    assert greeting.is_greeting and ehlo.command is not None and ehlo.command.verb == "EHLO"
    assert [a.kind for a in d.anomalies()] == [SmtpAnomaly.COMMAND_BEFORE_GREETING]


def test_pipelining_without_the_extension_is_reported_once() -> None:
    d = run(
        [
            (S, b"220 mx ESMTP\r\n"),
            (C, b"EHLO c\r\n"),
            (S, b"250-mx\r\n250 8BITMIME\r\n"),
            (C, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\n"),
            (S, b"250 ok\r\n250 ok\r\n250 ok\r\n"),
        ]
    )
    (anomaly,) = d.anomalies()
    assert anomaly.kind is SmtpAnomaly.PIPELINING_NOT_ADVERTISED
    assert anomaly.offset == len(b"EHLO c\r\nMAIL FROM:<a@b>\r\n")
    assert [r.command.verb for r in d.of(Reply)[2:] if r.command] == ["MAIL", "RCPT", "RCPT"]


def test_pipelining_after_helo_is_not_advertised_either() -> None:
    d = run([(S, b"220 mx\r\n"), (C, b"HELO c\r\n"), (S, b"250 mx\r\n"), (C, b"NOOP\r\nNOOP\r\n")])
    assert [a.kind for a in d.anomalies()] == [SmtpAnomaly.PIPELINING_NOT_ADVERTISED]


def test_waiting_for_each_reply_is_not_pipelining() -> None:
    d = run(
        [
            (S, b"220 mx\r\n"),
            (C, b"HELO c\r\n"),
            (S, b"250 mx\r\n"),
            (C, b"NOOP\r\n"),
            (S, b"250 ok\r\n"),
            (C, b"QUIT\r\n"),
            (S, b"221 bye\r\n"),
        ]
    )
    assert d.anomalies() == []


def test_a_masked_command_is_unknown_and_its_reply_is_tied_to_it() -> None:
    d = run(
        [
            (S, b"220 mx\r\n"),
            (C, b"EHLO c\r\n"),
            (S, b"250-mx\r\n250-PIPELINING\r\n250 XXXXXXXA\r\n"),
            (C, b"XXXXXXXX\r\n"),
            (S, b"500 #5.5.1 command not recognized\r\n"),
        ]
    )
    masked = d.of(Command)[1]
    assert masked.verb == "XXXXXXXX" and not masked.known
    rejected = d.of(Reply)[-1]
    assert rejected.code == 500 and rejected.command == masked
    assert [a.kind for a in d.anomalies()] == [SmtpAnomaly.MASKED_COMMAND]


def test_an_unknown_verb_is_reported_as_unknown() -> None:
    d = run(
        [
            (S, b"220 mx\r\n"),
            (C, b"FOO bar\r\n"),
            (S, b"502 5.5.2 Error: command not recognized\r\n"),
        ]
    )
    assert not d.of(Command)[0].known
    assert [a.kind for a in d.anomalies()] == [SmtpAnomaly.UNKNOWN_COMMAND]


def test_a_command_line_over_512_octets_is_reported() -> None:
    long_rcpt = b"RCPT TO:<" + b"a" * 500 + b"@example.org>\r\n"
    d = run([(S, b"220 mx\r\n"), (C, long_rcpt), (S, b"501 too long\r\n")])
    (anomaly,) = d.anomalies()
    assert anomaly.kind is SmtpAnomaly.COMMAND_LINE_TOO_LONG
    assert str(len(long_rcpt)) in anomaly.detail
    at_limit = b"RCPT TO:<" + b"a" * 496 + b"@b.c>\r\n"
    assert len(at_limit) == 512
    assert run([(S, b"220 mx\r\n"), (C, at_limit)]).anomalies() == []


def test_bare_lf_lines_are_accepted_and_reported_once_per_direction() -> None:
    d = run(
        [(S, b"220 mx\n"), (C, b"HELO c\n"), (S, b"250 mx\n"), (C, b"NOOP\n"), (S, b"250 ok\n")]
    )
    assert [c.terminator for c in d.of(Command)] == [b"\n", b"\n"]
    assert [r.code for r in d.of(Reply)] == [220, 250, 250]
    assert sorted(a.direction for a in d.anomalies(SmtpAnomaly.BARE_LF)) == sorted([C, S])
    assert d.observer.anomaly_counts[SmtpAnomaly.BARE_LF] == 5


def test_nul_and_lone_cr_in_lines_are_reported() -> None:
    d = run([(S, b"220 mx\r\n"), (C, b"HELO a\x00b\r\n"), (S, b"250 m\rx\r\n")])
    assert {(a.kind, a.direction) for a in d.anomalies()} == {
        (SmtpAnomaly.NUL_BYTE, C),
        (SmtpAnomaly.BARE_CR, S),
    }


def test_a_reply_line_over_512_octets_is_reported() -> None:
    d = run([(S, b"220 " + b"x" * 600 + b"\r\n")])
    assert [a.kind for a in d.anomalies()] == [SmtpAnomaly.REPLY_LINE_TOO_LONG]


def test_a_code_mismatch_inside_a_multi_line_reply_is_reported() -> None:
    d = run([(S, b"220 mx\r\n"), (C, b"EHLO c\r\n"), (S, b"250-mx\r\n251 odd\r\n")])
    assert d.of(Reply)[1].code == 250 and d.of(Reply)[1].lines == (b"mx", b"odd")
    assert [a.kind for a in d.anomalies()] == [SmtpAnomaly.MULTILINE_CODE_MISMATCH]


def test_the_end_of_the_capture_flushes_a_partial_command_and_reply() -> None:
    d = run(
        [(S, b"220 mx\r\n"), (C, b"HELO c\r\n"), (S, b"250-mx\r\n250-PIPELINING\r\n"), (C, b"QUI")]
    )
    quit_ = d.of(Command)[-1]
    assert quit_.verb == "QUI" and quit_.terminator == b""
    ehlo = d.of(Reply)[-1]
    assert ehlo.lines == (b"mx", b"PIPELINING") and ehlo.command is not None
    assert d.observer.feed_eof(ts=3000.0) == []


def test_a_one_sided_server_capture_does_not_flag_every_reply() -> None:
    d = run([(S, b"220 mx\r\n"), (S, b"250-mx\r\n250 PIPELINING\r\n"), (S, b"221 bye\r\n")])
    assert [r.code for r in d.of(Reply)] == [220, 250, 221]
    assert d.anomalies() == []


def test_anomalies_of_one_kind_stop_being_reported_but_are_still_counted() -> None:
    steps = [(S, b"220 mx\r\n")] + [(C, b"BOGUS%d\r\n" % i) for i in range(300)]
    d = run(steps)
    assert len(d.anomalies(SmtpAnomaly.UNKNOWN_COMMAND)) == 100
    assert d.observer.anomaly_counts[SmtpAnomaly.UNKNOWN_COMMAND] == 300


def test_a_421_the_server_sends_on_its_own_is_not_an_anomaly() -> None:
    d = run(
        [
            (S, b"220 mx\r\n"),
            (C, b"HELO c\r\n"),
            (S, b"250 mx\r\n"),
            (S, b"421 4.4.2 mx Error: timeout exceeded\r\n"),
        ]
    )
    assert d.of(Reply)[-1].code == 421 and d.of(Reply)[-1].command is None
    assert d.anomalies() == []


def test_a_354_resynchronises_replies_that_a_broken_server_merged() -> None:
    # The greeting has no line end and EHLO's "250-" reply never gets its last line, so the
    # next "250 ok" closes it: every later reply would answer the command before its own.
    d = run(
        [
            (S, b"220 mx ESMTP AAAA"),
            (C, b"EHLO c\r\n"),
            (S, b"250-mx.example\r\n"),
            (C, b"MAIL FROM:<a@x>\r\n"),
            (S, b"250 ok\r\n"),
            (C, b"RCPT TO:<b@y>\r\n"),
            (S, b"250 ok\r\n"),
            (C, b"DATA\r\n"),
            (S, b"354 go ahead\r\n"),
            (C, b"Subject: hi\r\n\r\nbody\r\n.\r\n"),
            (S, b"250 queued\r\n"),
            (C, b"QUIT\r\n"),
            (S, b"221 bye\r\n"),
        ]
    )
    assert d.anomalies(SmtpAnomaly.REPLIES_OUT_OF_STEP)
    ends = d.of(DataEnd)
    assert len(ends) == 1 and ends[0].complete
    quit_reply = [e for e in d.of(Reply) if e.code == 221]
    assert quit_reply and quit_reply[0].command is not None
    assert quit_reply[0].command.verb == "QUIT"
