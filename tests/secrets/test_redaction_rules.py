"""Which client lines count as AUTH for redaction, and what survives: the mechanism only when
it is one (RFC 4422 §3.1), every other command as it was (the masked-command detectors read
them)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from analyzer import analyze
from analyzer.pipeline import run_capture
from analyzer.smtp.commands import (
    INVALID_MECHANISM,
    SASL_MECHANISM,
    auth_parts,
    is_masked_auth,
    redact_auth,
    split_command,
)
from analyzer.smtp.limits import DEFAULT_MAX_LINE
from analyzer.smtp.secrets import blank_secrets
from tests.detect.transcripts import Item

from .dialogues import OK, PLAIN_TOKEN, UNRECOGNIZED, analysis_leaks, dialogue
from .test_no_secret_leaves import write


@pytest.mark.parametrize(
    "name", [b"PLAIN", b"cram-md5", b"SCRAM-SHA-256", b"GS2_KRB5", b"X" * 20, b"9"]
)
def test_mechanism_names_of_the_grammar(name: bytes) -> None:
    assert SASL_MECHANISM.fullmatch(name) is not None


@pytest.mark.parametrize(
    "name", [b"X" * 21, b"PLAIN=", b"AGFsaWNlAFMzY3Iz+dC1Q", b"a/b", b"\xc3\xa9", b"PL.AIN"]
)
def test_mechanism_names_outside_the_grammar(name: bytes) -> None:
    assert SASL_MECHANISM.fullmatch(name) is None


def test_auth_keeps_the_mechanism_and_drops_the_response() -> None:
    line = b"AUTH PLAIN  " + PLAIN_TOKEN
    assert auth_parts(line) == (b"AUTH PLAIN", b"PLAIN", line.index(PLAIN_TOKEN))
    assert redact_auth(b"AUTH LOGIN") == (b"AUTH LOGIN", b"LOGIN")
    assert auth_parts(b"AUTH") == (b"AUTH", b"", 4)


def test_a_credential_in_place_of_the_mechanism_is_not_kept() -> None:
    """A client that forgot the mechanism sends the token where the name belongs."""
    line = b"AUTH " + PLAIN_TOKEN
    assert auth_parts(line) == (b"AUTH " + INVALID_MECHANISM, INVALID_MECHANISM, 5)


@pytest.mark.parametrize(
    "line",
    [
        b"XXXX PLAIN " + PLAIN_TOKEN,
        b"**** PLAIN " + PLAIN_TOKEN,
        b"XXXX EXTERNAL =",
        b"ZZZZ x Yg==",
    ],
)
def test_masked_auth(line: bytes) -> None:
    assert is_masked_auth(*split_command(line))


@pytest.mark.parametrize(
    "line",
    [
        b"XXXX",  # a verb typed one character per segment, masked
        b"XXXXXXXX",  # a masked STARTTLS
        b"XXXX PLAIN",  # nothing to hide on this line; a 334 still guards the next
        b"XXXX PLAIN " + PLAIN_TOKEN + b" more",
        b"XXXX " + b"P" * 21 + b" Yg==",
        b"XXXX PLAIN a.b",
        b"MAIL FROM:<a@b> SIZE=1",  # a known verb is never taken for a masked one
        b"HELO x Yg==",
    ],
)
def test_not_masked_auth(line: bytes) -> None:
    assert not is_masked_auth(*split_command(line))


def test_blank_secrets_keeps_length_and_clips() -> None:
    data = bytearray(b"AUTH PLAIN abcd\r\nQUIT\r\n")
    blank_secrets(data, 100, [(111, 115), (95, 101), (122, 200)])
    assert data == bytearray(b"*UTH PLAIN ****\r\nQUIT\r*")


def _client_lines(items: list[Item], tmp_path: Path) -> list[tuple[str | None, str]]:
    (session,) = analyze(write(tmp_path / "one.pcap", items)).sessions
    return [(line.verb, line.text) for line in session.lines if line.verb is not None]


def test_invalid_mechanism_is_not_stored(tmp_path: Path) -> None:
    for token in (PLAIN_TOKEN, b"A" * 21):
        analysis = analyze(
            write(tmp_path / "one.pcap", dialogue([("c", b"AUTH " + token + b"\r\n"), ("s", OK)]))
        )
        (session,) = analysis.sessions
        assert session.auth_mechanism == "<INVALID>"
        assert ("AUTH", "AUTH <invalid>") in [(ln.verb, ln.text) for ln in session.lines]
        assert analysis_leaks(analysis) == []


def test_valid_mechanism_is_stored(tmp_path: Path) -> None:
    (session,) = analyze(
        write(tmp_path / "one.pcap", dialogue([("c", b"AUTH cram-md5\r\n"), ("s", OK)]))
    ).sessions
    assert session.auth_mechanism == "CRAM-MD5"


def test_unknown_commands_after_a_refused_masked_auth_stay_commands(tmp_path: Path) -> None:
    """The look-alikes: after the server refused `XXXX PLAIN <token>`, a bare `XXXX` and a
    masked STARTTLS are commands again, shown as sent, and the message still follows."""
    items = dialogue(
        [
            ("c", b"XXXX PLAIN " + PLAIN_TOKEN + b"\r\n"),
            ("s", UNRECOGNIZED),
            ("c", b"XXXX\r\n"),
            ("s", UNRECOGNIZED),
            ("c", b"XXXXXXXX\r\n"),
            ("s", UNRECOGNIZED),
            ("c", b"XYZZY PLAIN\r\n"),
            ("s", UNRECOGNIZED),
        ]
    )
    lines = _client_lines(items, tmp_path)
    assert lines[1:5] == [
        ("XXXX", "XXXX PLAIN"),
        ("XXXX", "XXXX"),
        ("XXXXXXXX", "XXXXXXXX"),
        ("XYZZY", "XYZZY PLAIN"),
    ]
    assert ("MAIL", "MAIL FROM:<a@example.net>") in lines


def test_one_sided_masked_auth_without_replies(tmp_path: Path) -> None:
    """A capture that holds only the client's bytes: the line after a masked AUTH that looks
    like a SASL response is consumed as one, as after AUTH."""
    items: list[Item] = [
        ("c", b"EHLO client.example.net\r\n"),
        ("c", b"XXXX LOGIN YWxpY2U=\r\n"),
        ("c", b"UzNjcjN0LVBhNTV3b3JkIQ==\r\n"),
        ("c", b"QUIT\r\n"),
    ]
    analysis = analyze(write(tmp_path / "one.pcap", items))
    (session,) = analysis.sessions
    assert [(ln.verb, ln.text) for ln in session.lines if ln.verb] == [
        ("EHLO", "EHLO client.example.net"),
        ("XXXX", "XXXX LOGIN"),
        ("QUIT", "QUIT"),
    ]
    assert analysis_leaks(analysis) == []


def test_a_response_longer_than_a_kept_line_is_blanked_whole(tmp_path: Path) -> None:
    """A SASL response beyond the longest line the reader keeps (a large GSSAPI token): the
    kept stream has every one of its octets blanked, not only the part the reader kept."""
    token = base64.b64encode(bytes(range(256)) * 200)  # 68 268 octets
    assert len(token) > DEFAULT_MAX_LINE
    half = len(token) // 2
    items = dialogue(
        [
            ("c", b"AUTH GSSAPI\r\n"),
            ("s", b"334 \r\n"),
            ("c", token[:half]),
            ("c", token[half:] + b"\r\n"),
            ("s", OK),
        ]
    )
    path = write(tmp_path / "one.pcap", items)
    (session,) = run_capture([path], "single", keep_streams=True).sessions
    assert session.streams is not None
    sent = bytes(session.streams.client_to_server.data)
    assert b"AUTH GSSAPI\r\n" + b"*" * len(token) + b"\r\nMAIL FROM:" in sent
