"""Command lines: verbs, masked verbs, AUTH redaction, MAIL/RCPT paths and ESMTP parameters."""

from __future__ import annotations

import pytest

from analyzer.smtp import parse_path
from analyzer.smtp.commands import (
    VERBS,
    is_masked_verb,
    looks_like_sasl_response,
    parse_bdat,
    redact_auth,
    split_command,
)


def test_the_verb_is_upper_cased_and_the_args_follow_the_first_space() -> None:
    assert split_command(b"mail FROM:<a@b> SIZE=10") == ("MAIL", b"FROM:<a@b> SIZE=10")
    assert split_command(b"QUIT") == ("QUIT", b"")
    assert split_command(b"") == ("", b"")


def test_a_huge_first_word_gives_a_bounded_verb() -> None:
    verb, _ = split_command(b"A" * 10_000)
    assert len(verb) == 64


@pytest.mark.parametrize(
    "verb",
    [
        "HELO",
        "EHLO",
        "MAIL",
        "RCPT",
        "DATA",
        "BDAT",
        "RSET",
        "VRFY",
        "EXPN",
        "HELP",
        "NOOP",
        "QUIT",
        "STARTTLS",
        "AUTH",
        "ETRN",
        "TURN",
        "ATRN",
        "XCLIENT",
        "XFORWARD",
        "SAML",
        "SEND",
        "SOML",
    ],
)
def test_the_verb_table_knows_rfc_and_common_extension_verbs(verb: str) -> None:
    assert verb in VERBS
    assert VERBS[verb].reference


@pytest.mark.parametrize("verb", ["XXXX", "XXXXXXXX", "XXX", "XXXXXXXXXXXXXXXXXXXXXXXX"])
def test_a_verb_made_only_of_x_is_masked(verb: str) -> None:
    assert is_masked_verb(verb)


@pytest.mark.parametrize("verb", ["XX", "XCLIENT", "XFORWARD", "STARTTLS", "", "XXXA"])
def test_other_verbs_are_not_masked(verb: str) -> None:
    assert not is_masked_verb(verb)


def test_auth_keeps_only_the_mechanism() -> None:
    assert redact_auth(b"AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=") == (b"AUTH PLAIN", b"PLAIN")
    assert redact_auth(b"AUTH LOGIN") == (b"AUTH LOGIN", b"LOGIN")
    assert redact_auth(b"auth  cram-md5 \t secret") == (b"auth  cram-md5", b"cram-md5")
    assert redact_auth(b"AUTH") == (b"AUTH", b"")


def test_sasl_responses_are_base64_or_a_star() -> None:
    assert looks_like_sasl_response(b"dXNlcm5hbWU=")
    assert looks_like_sasl_response(b"*")
    assert looks_like_sasl_response(b"")
    assert not looks_like_sasl_response(b"MAIL FROM:<a@b>")
    assert not looks_like_sasl_response(b"dXNl cm5h")


def test_mail_from_with_parameters() -> None:
    assert parse_path(b"FROM:<a@b> SIZE=10 BODY=8BITMIME") == (
        b"a@b",
        {"SIZE": "10", "BODY": "8BITMIME"},
    )


def test_rcpt_to_with_a_keyword_parameter_and_lower_case_names() -> None:
    assert parse_path(b"TO:<bob@example.org> notify=SUCCESS,FAILURE SMTPUTF8") == (
        b"bob@example.org",
        {"NOTIFY": "SUCCESS,FAILURE", "SMTPUTF8": None},
    )


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (b"FROM: <a@b>", b"a@b"),
        (b"from:a@b", b"a@b"),
        (b"FROM:<>", b""),
        (b"<a@b> SIZE=1", b"a@b"),
        (b"a@b", b"a@b"),
        (b" <a@b>", b"a@b"),
        (b'FROM:<"odd>name"@example.com>', b'"odd>name"@example.com'),
        (b"TO:<@relay.example:bob@example.org>", b"@relay.example:bob@example.org"),
        (b"FROM:<a@b SIZE=10", b"a@b"),
        (b"", b""),
    ],
)
def test_paths_are_read_tolerantly(args: bytes, path: bytes) -> None:
    assert parse_path(args)[0] == path


def test_bdat_sizes() -> None:
    assert parse_bdat(b"1024") == (1024, False)
    assert parse_bdat(b"0 LAST") == (0, True)
    assert parse_bdat(b"12 last") == (12, True)
    assert parse_bdat(b"") is None
    assert parse_bdat(b"-1") is None
    assert parse_bdat(b"ten") is None
    assert parse_bdat(b"10 LAST more") is None
    assert parse_bdat(b"10 FIRST") is None
    assert parse_bdat(b"9" * 40) is None
