"""STARTTLS: accepted (then only bytes are counted), rejected, masked, and TLS that is not TLS."""

from __future__ import annotations

from analyzer.smtp.events import (
    Command,
    Reply,
    SmtpAnomaly,
    TlsClientHello,
    TlsStarted,
)

from .dialogue import C, S, run

EHLO_WITH_STARTTLS = b"250-mx.example.org\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
EHLO_MASKED = b"250-mx.example.org\r\n250-PIPELINING\r\n250-XXXXXXXA\r\n250 8BITMIME\r\n"

CLIENT_HELLO = bytes.fromhex("160301") + (200).to_bytes(2, "big") + b"\x01" + b"\xaa" * 199
SERVER_FLIGHT = (
    bytes.fromhex("160303")
    + (80).to_bytes(2, "big")
    + b"\x02"
    + b"\xbb" * 79
    + bytes.fromhex("140303")
    + (1).to_bytes(2, "big")
    + b"\x01"
    + bytes.fromhex("170303")
    + (40).to_bytes(2, "big")
    + b"\xcc" * 40
)
APPDATA = bytes.fromhex("170303") + (60).to_bytes(2, "big") + b"\xdd" * 60


def opening(ehlo_reply: bytes = EHLO_WITH_STARTTLS) -> list[tuple[object, bytes]]:
    return [
        (S, b"220 mx.example.org ESMTP Postfix\r\n"),
        (C, b"EHLO c.example.com\r\n"),
        (S, ehlo_reply),
    ]


def test_starttls_accepted_switches_both_directions_to_counted_tls() -> None:
    d = run(
        [
            *opening(),
            (C, b"STARTTLS\r\n"),
            (S, b"220 2.0.0 Ready to start TLS\r\n"),
            (C, CLIENT_HELLO),
            (S, SERVER_FLIGHT),
            (C, APPDATA),
            (S, APPDATA),
        ]
    )
    (started,) = d.of(TlsStarted)
    assert started.offset_client == len(b"EHLO c.example.com\r\nSTARTTLS\r\n")
    assert started.offset_server == len(
        b"220 mx.example.org ESMTP Postfix\r\n"
        + EHLO_WITH_STARTTLS
        + b"220 2.0.0 Ready to start TLS\r\n"
    )
    (hello,) = d.of(TlsClientHello)
    assert hello.version == 0x0301
    assert d.observer.in_tls
    assert d.observer.tls_bytes == {
        C: len(CLIENT_HELLO) + len(APPDATA),
        S: len(SERVER_FLIGHT) + len(APPDATA),
    }
    starttls_reply = d.of(Reply)[-1]
    assert starttls_reply.command is not None and starttls_reply.command.verb == "STARTTLS"
    assert [c.verb for c in d.of(Command)] == ["EHLO", "STARTTLS"]
    assert d.anomalies() == []


def test_tls_bytes_in_the_same_segment_as_the_220_are_tls() -> None:
    d = run(
        [
            *opening(),
            (C, b"STARTTLS\r\n"),
            (S, b"220 Ready\r\n" + SERVER_FLIGHT[:10]),
            (S, SERVER_FLIGHT[10:]),
        ]
    )
    assert d.observer.tls_bytes[S] == len(SERVER_FLIGHT)
    assert len(d.of(Reply)) == 3


def test_a_client_hello_split_over_segments_is_still_recognised() -> None:
    steps = [*opening(), (C, b"STARTTLS\r\n"), (S, b"220 Ready\r\n")]
    steps += [(C, CLIENT_HELLO[i : i + 1]) for i in range(len(CLIENT_HELLO))]
    d = run(steps)
    assert [h.version for h in d.of(TlsClientHello)] == [0x0301]
    assert d.observer.tls_bytes[C] == len(CLIENT_HELLO)


def test_starttls_masked_by_the_firewall_gets_a_500_and_the_session_stays_cleartext() -> None:
    d = run(
        [
            *opening(EHLO_MASKED),
            (C, b"XXXXXXXX\r\n"),
            (S, b"500 #5.5.1 command not recognized\r\n"),
            (C, b"MAIL FROM:<a@example.com>\r\n"),
            (S, b"250 2.1.0 Ok\r\n"),
        ]
    )
    masked = d.of(Command)[1]
    assert masked.verb == "XXXXXXXX" and not masked.known
    reply = d.of(Reply)[2]
    assert reply.code == 500 and reply.command == masked
    mail = d.of(Reply)[3].command
    assert mail is not None and mail.verb == "MAIL"
    assert d.of(TlsStarted) == [] and not d.observer.in_tls
    assert [a.kind for a in d.anomalies()] == [SmtpAnomaly.MASKED_COMMAND]


def test_starttls_refused_with_454_continues_in_cleartext() -> None:
    d = run(
        [
            *opening(),
            (C, b"STARTTLS\r\n"),
            (S, b"454 4.7.0 TLS not available due to local problem\r\n"),
            (C, b"QUIT\r\n"),
            (S, b"221 2.0.0 Bye\r\n"),
        ]
    )
    assert not d.observer.in_tls
    assert [(r.command.verb, r.code) for r in d.of(Reply)[2:] if r.command] == [
        ("STARTTLS", 454),
        ("QUIT", 221),
    ]


def test_a_220_to_starttls_followed_by_cleartext_is_reported_and_counted_as_tls() -> None:
    d = run(
        [
            *opening(),
            (C, b"STARTTLS\r\n"),
            (S, b"220 Ready\r\n"),
            (C, b"EHLO c.example.com\r\n"),
            (C, b"MAIL FROM:<a@b>\r\n"),
        ]
    )
    kinds = [a.kind for a in d.anomalies()]
    assert kinds == [SmtpAnomaly.TLS_WITHOUT_CLIENT_HELLO, SmtpAnomaly.CLEARTEXT_AFTER_TLS]
    assert d.observer.tls_bytes[C] == len(b"EHLO c.example.com\r\nMAIL FROM:<a@b>\r\n")
    assert [c.verb for c in d.of(Command)] == ["EHLO", "STARTTLS"]


def test_cleartext_after_a_real_handshake_is_reported() -> None:
    d = run(
        [
            *opening(),
            (C, b"STARTTLS\r\n"),
            (S, b"220 Ready\r\n"),
            (C, CLIENT_HELLO),
            (S, SERVER_FLIGHT),
            (C, APPDATA + b"RSET\r\n"),
        ]
    )
    assert [h.version for h in d.of(TlsClientHello)] == [0x0301]
    (cleartext,) = d.anomalies()
    assert cleartext.kind is SmtpAnomaly.CLEARTEXT_AFTER_TLS and cleartext.direction == C
    assert cleartext.offset == len(b"EHLO c.example.com\r\nSTARTTLS\r\n") + len(CLIENT_HELLO) + len(
        APPDATA
    )


def test_random_bytes_after_tls_are_not_called_cleartext() -> None:
    d = run(
        [
            *opening(),
            (C, b"STARTTLS\r\n"),
            (S, b"220 Ready\r\n"),
            (C, CLIENT_HELLO),
            (C, b"\x00\x01\x02\x03\x04\x05" * 100),
        ]
    )
    assert d.anomalies() == []


def test_commands_pipelined_after_starttls_do_not_steal_later_replies() -> None:
    d = run(
        [
            *opening(),
            (C, b"STARTTLS\r\nRSET\r\n"),
            (S, b"220 Ready\r\n"),
            (C, CLIENT_HELLO),
            (S, SERVER_FLIGHT),
        ]
    )
    assert d.of(TlsStarted)
    assert [c.verb for c in d.of(Command)] == ["EHLO", "STARTTLS", "RSET"]
    assert d.observer.tls_bytes[S] == len(SERVER_FLIGHT)
