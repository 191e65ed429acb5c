"""SMTP dialogues that carry AUTH credentials, and every place the analysis could leak them.

Each dialogue is a transcript (`tests.detect.transcripts`) of one connection; `SECRETS` are the
strings no output may hold: the password, the base64 the client sent, and for LOGIN the base64
of the user name and of the password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import pickle
from pathlib import Path

from analyzer import frames
from analyzer.result import Analysis
from tests.detect.transcripts import BANNER, EHLO, MESSAGE, Item

USER = b"alice"
PASSWORD = b"S3cr3t-Pa55word!"
AUTHZID = b"admin"


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


PLAIN_TOKEN = b64(b"\0" + USER + b"\0" + PASSWORD)
PLAIN_AUTHZ_TOKEN = b64(AUTHZID + b"\0" + USER + b"\0" + PASSWORD)
LOGIN_USER = b64(USER)
LOGIN_PASSWORD = b64(PASSWORD)
CRAM_CHALLENGE = b64(b"<1896.697170952@mx.example.org>")
CRAM_DIGEST = hmac.new(PASSWORD, base64.b64decode(CRAM_CHALLENGE), hashlib.md5).hexdigest()
CRAM_RESPONSE = b64(USER + b" " + CRAM_DIGEST.encode())

SECRETS: tuple[bytes, ...] = (
    PASSWORD,
    b64(PASSWORD),
    PLAIN_TOKEN,
    PLAIN_AUTHZ_TOKEN,
    LOGIN_USER,
    LOGIN_PASSWORD,
    CRAM_RESPONSE,
    CRAM_DIGEST.encode(),
)

EHLO_REPLY = (
    b"250-mx.example.org\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250 8BITMIME\r\n"
)
OK = b"235 2.7.0 Authentication successful\r\n"
UNRECOGNIZED = b"500 5.5.2 Error: command not recognized\r\n"


def dialogue(auth: list[Item]) -> list[Item]:
    return [("s", BANNER), ("c", EHLO), ("s", EHLO_REPLY), *auth, *MESSAGE]


def plain_initial(verb: bytes = b"AUTH", reply: bytes = OK) -> list[Item]:
    return [("c", verb + b" PLAIN " + PLAIN_TOKEN + b"\r\n"), ("s", reply)]


def plain_after_challenge(verb: bytes = b"AUTH") -> list[Item]:
    return [
        ("c", verb + b" PLAIN\r\n"),
        ("s", b"334 \r\n"),
        ("c", PLAIN_AUTHZ_TOKEN + b"\r\n"),
        ("s", OK),
    ]


def login(verb: bytes = b"AUTH") -> list[Item]:
    return [
        ("c", verb + b" LOGIN\r\n"),
        ("s", b"334 VXNlcm5hbWU6\r\n"),
        ("c", LOGIN_USER + b"\r\n"),
        ("s", b"334 UGFzc3dvcmQ6\r\n"),
        ("c", LOGIN_PASSWORD + b"\r\n"),
        ("s", OK),
    ]


def login_initial(verb: bytes = b"AUTH") -> list[Item]:
    """LOGIN with the user name as initial response (RFC 4954 §4 allows one for any mechanism)."""
    return [
        ("c", verb + b" LOGIN " + LOGIN_USER + b"\r\n"),
        ("s", b"334 UGFzc3dvcmQ6\r\n"),
        ("c", LOGIN_PASSWORD + b"\r\n"),
        ("s", OK),
    ]


def cram_md5(verb: bytes = b"AUTH") -> list[Item]:
    return [
        ("c", verb + b" CRAM-MD5\r\n"),
        ("s", b"334 " + CRAM_CHALLENGE + b"\r\n"),
        ("c", CRAM_RESPONSE + b"\r\n"),
        ("s", OK),
    ]


def leaks(blob: bytes | str) -> list[bytes]:
    """The secrets found in `blob` (backslash escapes, as Markdown writes them, removed)."""
    data = blob.encode("utf-8", "surrogateescape") if isinstance(blob, str) else blob
    data = data.replace(b"\\", b"")
    return [s for s in SECRETS if s in data]


def frame_text(analysis: Analysis) -> str:
    """Every cell of every DataFrame `analyzer.frames` builds from the analysis."""
    parts: list[str] = []
    for build in (
        frames.sessions,
        frames.transactions,
        frames.commands,
        frames.findings,
        frames.evidence,
        frames.streams,
        frames.pairs,
    ):
        table = build(analysis)
        parts.append(table.to_csv())
        parts.extend(repr(v) for v in table.to_numpy().ravel())
    return "\n".join(parts)


def analysis_leaks(analysis: Analysis) -> list[bytes]:
    """Secrets held anywhere in the analysis: its repr, its pickle (the kept raw streams
    included), the DataFrames."""
    found = leaks(repr(analysis)) + leaks(pickle.dumps(analysis)) + leaks(frame_text(analysis))
    return sorted(set(found))


def report_leaks(folder: Path) -> list[bytes]:
    found: list[bytes] = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            found += leaks(path.read_bytes())
    return sorted(set(found))
