"""Message subjects, encoded words included, read as Arkime's test expectations state them.

Arkime's `.test` files list, per session, the decoded `email.subject`; smtpfw must decode the
same text (RFC 2047 encoded words in ISO-8859-1, GB2312, UTF-8, Windows-1252, B and Q forms,
with the spacing the sender meant).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer import read_sessions
from tests.realworld_path import REALWORLD

ARKIME = REALWORLD / "arkime" / "tests" / "pcap"


def _cases() -> list[tuple[str, Path, list[str]]]:
    cases = []
    for test in sorted(ARKIME.glob("*.test")) if ARKIME.is_dir() else []:
        subjects = [
            subject
            for session in json.loads(test.read_text()).get("sessions3", [])
            for subject in session.get("body", {}).get("email", {}).get("subject", [])
        ]
        if subjects:
            cases.append((test.stem, test.with_suffix(".pcap"), subjects))
    return cases


CASES = _cases()

# capture → (why smtpfw's subject differs from Arkime's, the subjects smtpfw gives instead).
KNOWN_DIFFERENCES: dict[str, tuple[str, list[str]]] = {
    "smtp-decrypted": (
        "The capture holds decrypted plaintext spliced in after `220` to STARTTLS. On the wire "
        "those bytes are TLS, and smtpfw treats them so (it reports cleartext_after_tls): the "
        "messages inside are not parsed.",
        [],
    ),
    "smtp-moloch-bof": (
        "Arkime keeps the space after `Subject:`; smtpfw strips the white space around a field "
        "body, as mail clients display it.",
        ["MIME test"],
    ),
    "smtp-subject-multi-nospace": (
        "RFC 2047 §6.2: white space between adjacent encoded words is not displayed; Arkime keeps "
        "it. Python's `email.header` also puts a space between `…:` and an encoded word that "
        "touches it.",
        ["xxxxxxxxxxxxx:  xxxxêxx xxéxxxxxxxxx xxx xxx xxxxxxxxxxx xx xxxxxxxxxxxxxxx - xxxx"],
    ),
    "smtp-subject-windows": (
        "The subject carries a raw 8-bit byte (0x92) instead of an encoded word. Arkime guesses "
        "Windows-1252; smtpfw does not guess a charset and keeps the byte as captured (shown as "
        "\\x92).",
        ["Awesome windows: See What\udc92s Next in charset decoding!"],
    ),
}


@pytest.mark.skipif(not CASES, reason="Arkime expectations not available")
@pytest.mark.parametrize(("name", "pcap", "subjects"), CASES, ids=[c[0] for c in CASES])
def test_subjects_are_decoded_as_arkime_expects(name: str, pcap: Path, subjects: list[str]) -> None:
    ours = [t.subject for s in read_sessions(pcap) for t in s.transactions if t.subject is not None]
    if name in KNOWN_DIFFERENCES:
        assert not set(subjects) <= set(ours), "agrees with Arkime now: drop the exception"
        assert ours == KNOWN_DIFFERENCES[name][1]
        return
    for subject in subjects:
        assert subject in ours, f"{name}: Arkime says {subject!r}, smtpfw has {ours!r}"
