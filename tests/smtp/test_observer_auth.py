"""AUTH: the command keeps only its mechanism, and SASL responses leave no trace in any event."""

from __future__ import annotations

import base64

from analyzer.smtp.events import Command, Event, Reply, SmtpAnomaly

from .dialogue import C, Dialogue, S, run

USER = b"jdoe-login-7731"
PASSWORD = b"s3cr3t-Pa55w0rd"
PLAIN = base64.b64encode(b"\0" + USER + b"\0" + PASSWORD)
USER_B64 = base64.b64encode(USER)
PASSWORD_B64 = base64.b64encode(PASSWORD)
SECRETS = (PLAIN, USER_B64, PASSWORD_B64, PASSWORD, USER)

OPENING = [
    (S, b"220 mx.example.org ESMTP\r\n"),
    (C, b"EHLO c.example.com\r\n"),
    (S, b"250-mx.example.org\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n"),
    (S, b"250 8BITMIME\r\n"),
]


def assert_no_secret(events: list[Event]) -> None:
    text = repr(events)
    for secret in SECRETS:
        assert repr(secret)[2:-1] not in text
        assert secret.decode() not in text


def test_auth_plain_with_an_initial_response_keeps_only_the_mechanism() -> None:
    d = run(
        [
            *OPENING,
            (C, b"AUTH PLAIN " + PLAIN + b"\r\n"),
            (S, b"235 2.7.0 Authentication successful\r\n"),
            (C, b"MAIL FROM:<alice@example.com>\r\n"),
            (S, b"250 2.1.0 Ok\r\n"),
        ]
    )
    auth = d.of(Command)[1]
    assert (auth.verb, auth.args, auth.raw) == ("AUTH", b"PLAIN", b"AUTH PLAIN")
    assert d.of(Reply)[2].command == auth and d.of(Reply)[2].code == 235
    assert d.of(Reply)[3].command is not None and d.of(Reply)[3].command.verb == "MAIL"
    assert_no_secret(d.events)
    assert d.anomalies() == []


def test_auth_login_responses_are_consumed_silently() -> None:
    d = run(
        [
            *OPENING,
            (C, b"AUTH LOGIN\r\n"),
            (S, b"334 VXNlcm5hbWU6\r\n"),
            (C, USER_B64 + b"\r\n"),
            (S, b"334 UGFzc3dvcmQ6\r\n"),
            (C, PASSWORD_B64 + b"\r\n"),
            (S, b"235 2.7.0 Authentication successful\r\n"),
            (C, b"QUIT\r\n"),
            (S, b"221 Bye\r\n"),
        ]
    )
    assert [c.verb for c in d.of(Command)] == ["EHLO", "AUTH", "QUIT"]
    auth = d.of(Command)[1]
    assert [(r.code, r.command == auth) for r in d.of(Reply)[2:5]] == [
        (334, True),
        (334, True),
        (235, True),
    ]
    assert d.of(Reply)[5].command is not None and d.of(Reply)[5].command.verb == "QUIT"
    assert_no_secret(d.events)
    assert d.anomalies() == []


def test_a_failed_auth_ends_the_exchange_and_commands_follow() -> None:
    d = run(
        [
            *OPENING,
            (C, b"AUTH LOGIN " + USER_B64 + b"\r\n"),
            (S, b"334 UGFzc3dvcmQ6\r\n"),
            (C, PASSWORD_B64 + b"\r\n"),
            (S, b"535 5.7.8 Error: authentication failed\r\n"),
            (C, b"RSET\r\n"),
            (S, b"250 2.0.0 Ok\r\n"),
        ]
    )
    assert [c.verb for c in d.of(Command)] == ["EHLO", "AUTH", "RSET"]
    assert d.of(Command)[1].raw == b"AUTH LOGIN"
    assert_no_secret(d.events)


def test_a_cancelled_exchange_consumes_the_star() -> None:
    d = run(
        [
            *OPENING,
            (C, b"AUTH CRAM-MD5\r\n"),
            (S, b"334 PDEyMzQ1QGV4YW1wbGUub3JnPg==\r\n"),
            (C, b"*\r\n"),
            (S, b"501 5.7.0 Authentication aborted\r\n"),
        ]
    )
    assert [c.verb for c in d.of(Command)] == ["EHLO", "AUTH"]
    assert d.of(Reply)[-1].code == 501 and d.of(Reply)[-1].command == d.of(Command)[1]


def test_a_response_line_that_looks_like_a_command_is_still_a_response_after_334() -> None:
    d = run(
        [
            *OPENING,
            (C, b"AUTH LOGIN\r\n"),
            (S, b"334 VXNlcm5hbWU6\r\n"),
            (C, b"MAIL FROM:<secret-user>\r\n"),
            (S, b"535 5.7.8 failed\r\n"),
        ]
    )
    assert [c.verb for c in d.of(Command)] == ["EHLO", "AUTH"]
    assert b"secret-user" not in repr(d.events).encode()


def test_a_one_sided_client_capture_still_hides_the_responses() -> None:
    d = run(
        [
            (C, b"EHLO c.example.com\r\n"),
            (C, b"AUTH LOGIN\r\n"),
            (C, USER_B64 + b"\r\n"),
            (C, PASSWORD_B64 + b"\r\n"),
            (C, b"MAIL FROM:<alice@example.com>\r\n"),
            (C, b"RCPT TO:<bob@example.org>\r\n"),
            (C, b"QUIT\r\n"),
        ]
    )
    assert [c.verb for c in d.of(Command)] == ["EHLO", "AUTH", "MAIL", "RCPT", "QUIT"]
    assert_no_secret(d.events)


def test_odd_response_lines_are_reported_without_their_content() -> None:
    d = run(
        [
            *OPENING,
            (C, b"AUTH LOGIN\r\n"),
            (S, b"334 VXNlcm5hbWU6\r\n"),
            (C, USER_B64 + b"\x00\n"),
            (S, b"334 UGFzc3dvcmQ6\r\n"),
            (C, PASSWORD_B64 + b"x" * 20000 + b"\r\n"),
        ],
        max_line=1000,
    )
    kinds = {a.kind for a in d.anomalies()}
    assert {SmtpAnomaly.NUL_BYTE, SmtpAnomaly.BARE_LF, SmtpAnomaly.LINE_TRUNCATED} <= kinds
    assert_no_secret(d.events)


def test_a_response_cut_by_the_end_of_the_capture_is_not_turned_into_a_command() -> None:
    d = Dialogue()
    d.play([*OPENING, (C, b"AUTH LOGIN\r\n"), (S, b"334 VXNlcm5hbWU6\r\n"), (C, USER_B64[:10])])
    d.eof()
    assert [c.verb for c in d.of(Command)] == ["EHLO", "AUTH"]
    assert_no_secret(d.events)


def test_a_response_cut_by_a_close_is_not_turned_into_a_command() -> None:
    d = Dialogue()
    d.play([*OPENING, (C, b"AUTH LOGIN\r\n"), (S, b"334 VXNlcm5hbWU6\r\n"), (C, USER_B64[:10])])
    d.close(C, reset=True)
    assert [c.verb for c in d.of(Command)] == ["EHLO", "AUTH"]
    assert_no_secret(d.events)


def test_responses_after_an_auth_lost_in_a_gap_are_still_hidden() -> None:
    d = Dialogue()
    d.play(OPENING)
    d.gap(C, len(b"AUTH LOGIN\r\n"))
    d.server(b"334 VXNlcm5hbWU6\r\n")
    d.client(USER_B64 + b"\r\n")
    d.server(b"334 UGFzc3dvcmQ6\r\n")
    d.client(PASSWORD_B64 + b"\r\n")
    d.server(b"235 2.7.0 Authentication successful\r\n")
    d.client(b"MAIL FROM:<alice@example.com>\r\n")
    assert [c.verb for c in d.of(Command)] == ["EHLO", "MAIL"]
    assert_no_secret(d.events)
