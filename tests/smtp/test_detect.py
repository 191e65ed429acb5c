"""Sniffing: what SMTP looks like in a flow's first bytes, and which side is the server."""

from __future__ import annotations

import pytest

from analyzer.smtp import looks_like_smtp_client, looks_like_smtp_server, sender_is_server


@pytest.mark.parametrize(
    "first",
    [
        b"220 mx.example.org ESMTP Postfix\r\n",
        b"220-mail.example.net ESMTP Exim 4.96\r\n220 no spam\r\n",
        b"220 *****0**2*****************\r\n",
        b"554 5.7.1 no service for you\r\n",
        b"421 4.3.2 too busy, try later\r\n",
        b"220 ",
    ],
)
def test_smtp_greetings_are_recognised(first: bytes) -> None:
    assert looks_like_smtp_server(first)


@pytest.mark.parametrize(
    "first",
    [
        b"220 ProFTPD Server (Debian) [192.0.2.1]\r\n",
        b"220 (vsFTPd 3.0.5)\r\n",
        b"+OK POP3 ready\r\n",
        b"* OK IMAP4rev1 ready\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"250 ok\r\n",
        b"22",
        b"",
        b"\x16\x03\x01\x00\xa5",
    ],
)
def test_other_openings_are_not_smtp_greetings(first: bytes) -> None:
    assert not looks_like_smtp_server(first)


@pytest.mark.parametrize(
    "first",
    [
        b"EHLO client.example.com\r\n",
        b"helo x\r\n",
        b"LHLO lmtp.example\r\n",
        b"MAIL FROM:<a@example.com>\r\n",
        b"RCPT TO:<b@example.org>\r\n",
        b"STARTTLS\r\n",
    ],
)
def test_smtp_client_openings_are_recognised(first: bytes) -> None:
    assert looks_like_smtp_client(first)


@pytest.mark.parametrize(
    "first", [b"GET / HTTP/1.1\r\n", b"USER anonymous\r\n", b"a001 LOGIN x y\r\n", b"QUIT\r\n", b""]
)
def test_other_client_openings_are_not_smtp(first: bytes) -> None:
    assert not looks_like_smtp_client(first)


def test_content_decides_the_role_before_ports() -> None:
    assert sender_is_server(b"220 mx ESMTP\r\n", 40000, 25) is True
    assert sender_is_server(b"250 2.1.0 Ok\r\n", 40000, 12345) is True
    assert sender_is_server(b"EHLO c\r\n", 25, 40000) is False
    assert sender_is_server(b"RSET\r\n", 2525, 40000) is False


def test_ports_decide_when_the_content_does_not() -> None:
    body = b"dGhpcyBpcyBhIGJhc2U2NCBib2R5IGxpbmU=\r\n"
    assert sender_is_server(body, 25, 51000) is True
    assert sender_is_server(body, 51000, 587) is False
    assert sender_is_server(body, 51000, 465) is False
    assert sender_is_server(body, 25, 25) is None
    assert sender_is_server(body, 40000, 50000) is None
