"""The mail the lab clients send: RFC 5322 messages with a real DKIM signature (dkimpy).

What it does: builds a message from a `MessageSpec` — CRLF line ends, a body several TCP
segments long, optionally an unfolded header line of an exact length, optionally a DKIM-Signature
unfolded into one line longer than 998 octets (by signing many headers) — and verifies DKIM
signatures of delivered copies against the lab key.
What it does not do: send anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import format_datetime

from . import addresses as A
from .pki import DkimKey

CRLF = b"\r\n"
# RFC 5322 §2.1.1: at most 998 characters per line, CRLF excluded.
MAX_LINE = 998
# RFC 5322 §2.2.3: a folded header continues on lines starting with white space.
FOLD = re.compile(rb"\r\n([ \t])")
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id")
TRACE_HEADER = "X-Lab-Trace-{:02d}"
LONG_HEADER_NAME = "X-Long-Header"
BODY_LINE = "The quick brown fox jumps over the lazy dog while the firewall reads along {:04d}."


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """One message a client sends."""

    local_id: str
    """Left part of the Message-ID (the right part is the client domain)."""
    subject: str
    sender: str = f"alice@{A.CLIENT_DOMAIN}"
    recipient: str = f"bob@{A.LAB_DOMAIN}"
    dkim: bool = True
    """Sign with the lab DKIM key (the signature header comes first)."""
    long_header_octets: int | None = None
    """Add one unfolded X-Long-Header line of exactly this many octets (CRLF excluded)."""
    dkim_line_over: int | None = None
    """Unfold the DKIM-Signature into one line longer than this (signing extra headers)."""
    body_lines: int = 60

    @property
    def message_id(self) -> str:
        return f"{self.local_id}@{A.CLIENT_DOMAIN}"


def _long_header(octets: int) -> bytes:
    prefix = f"{LONG_HEADER_NAME}: ".encode()
    words = b" ".join(f"token{i:04d}".encode() for i in range(octets // 10 + 1))
    line = (prefix + words)[:octets]
    return line.rstrip() + b"x" * (octets - len(line.rstrip()))


def build_message(spec: MessageSpec, key: DkimKey, date: str | None = None) -> bytes:
    import datetime

    import dkim

    when = date or format_datetime(datetime.datetime.now(datetime.UTC))
    headers = [
        f"From: Alice <{spec.sender}>",
        f"To: Bob <{spec.recipient}>",
        f"Subject: {spec.subject}",
        f"Date: {when}",
        f"Message-ID: <{spec.message_id}>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ]
    signed = list(SIGNED_HEADERS)
    if spec.dkim_line_over is not None:
        for i in range(1, 41):
            headers.append(f"{TRACE_HEADER.format(i)}: hop {i}")
            signed.append(TRACE_HEADER.format(i).lower().encode())
    lines = [h.encode() for h in headers]
    if spec.long_header_octets is not None:
        lines.append(_long_header(spec.long_header_octets))
    body = CRLF.join(BODY_LINE.format(i).encode() for i in range(spec.body_lines)) + CRLF
    message = CRLF.join(lines) + CRLF + CRLF + body
    if not spec.dkim:
        return message
    signature = dkim.sign(
        message,
        key.selector.encode(),
        key.domain.encode(),
        key.private_pem,
        canonicalize=(b"relaxed", b"simple"),
        include_headers=signed,
        linesep=CRLF,
    )
    if spec.dkim_line_over is not None:
        # Relaxed header canonicalization (RFC 6376 §3.4.2) unfolds, so the signature holds.
        signature = FOLD.sub(rb"\1", signature.rstrip(CRLF)) + CRLF
        length = len(signature) - len(CRLF)
        if length <= spec.dkim_line_over:
            raise ValueError(f"DKIM-Signature line is only {length} octets")
    return bytes(signature) + message


def dkim_verifies(message: bytes, key: DkimKey) -> bool:
    """True when the message's DKIM signature verifies with the lab key."""
    import dkim

    return bool(dkim.verify(message, dnsfunc=key.dnsfunc))


def header_line_lengths(message: bytes) -> list[int]:
    """Length of every physical line of the header section, CRLF excluded."""
    head = message.split(CRLF + CRLF, 1)[0]
    return [len(line) for line in head.split(CRLF)]
