"""Content sniffing: do a flow's first bytes look like SMTP, and which side is the server?

Used to find SMTP on any port, to give roles to flows whose handshake was not captured, and
to recognise a mail-port flow that is TLS from its first byte (implicit TLS, RFC 8314, or a
capture that started after STARTTLS). Pure functions over a few bytes; nothing is parsed beyond
the first line or the first TLS record header.
"""

from __future__ import annotations

import re
from typing import Final

from .commands import VERBS
from .limits import TLS_RECORD_HEADER_LEN, TLS_RECORD_MAX
from .tls import CONTENT_TYPES, VERSION_MAJOR, VERSION_MINOR_MAX

SMTP_PORTS: Final = frozenset({25, 465, 587, 2525})
"""Server ports of mail submission and relay: 25 (RFC 5321), 465 (implicit TLS, RFC 8314),
587 (RFC 6409), 2525 (a common alternative)."""

IMPLICIT_TLS_PORTS: Final = frozenset({465})
"""Message submission over implicit TLS (RFC 8314 §3.3, §7.3): TLS from the first byte."""

MAIL_PORTS: Final = frozenset({25, 587, 2525})
"""Cleartext mail ports: 25 (relay, RFC 5321), 587 (submission, RFC 6409), 2525 (common spare).
Flows on these ports are SMTP even when their first bytes do not say so (a capture that starts
in the middle of a message). 465 is implicit TLS (RFC 8314) and is never parsed as lines."""

SNIFF_BYTES: Final = 64
"""Bytes of each direction looked at before deciding that a flow on another port is not SMTP."""

_GREETING: Final = re.compile(rb"(?:220|421|554)[ -]")
"""What a server says first (RFC 5321 §3.1, §4.3.2): 220 ready, 554 no service, 421 busy."""
_NOT_SMTP_GREETING: Final = re.compile(rb"[^\n]*FTP", re.IGNORECASE)
"""FTP servers greet with 220 too; their banners say so."""
_CLIENT_OPENING: Final = re.compile(
    rb"(?:(?:EHLO|HELO|LHLO)[ \r\n]|MAIL FROM:|RCPT TO:|STARTTLS\r?\n|XCLIENT |XFORWARD )",
    re.IGNORECASE,
)
"""Lines that only an SMTP client sends first (a greeting reply or a transaction command)."""
_REPLY_LINE: Final = re.compile(rb"[2-5][0-9][0-9](?:[ -][\x20-\x7e]*)?\r?\n")
_COMMAND_WORD: Final = re.compile(rb"([A-Za-z]{4,8})(?:[ \r\n])")


HEARTBEAT: Final = 24
TLS_OPENING_TYPES: Final = CONTENT_TYPES - {HEARTBEAT}
"""Record content types a TLS stream can be caught at (RFC 8446 §5.1, RFC 5246 §6.2.1):
change_cipher_spec, alert, handshake, application_data (a heartbeat, RFC 6520, never opens
a capture's view of a stream on its own, and accepting it would widen the test for nothing)."""


def looks_like_tls_record(first_bytes: bytes) -> bool:
    """The bytes open with a TLS record header: content type 20-23, version 3.0-3.4 and a
    length of at most 2^14 + 2048 (RFC 5246 §6.2.3's largest ciphertext). No SMTP line can open
    so: its first byte would be a control character (0x14-0x17)."""
    if len(first_bytes) < TLS_RECORD_HEADER_LEN:
        return False
    if first_bytes[0] not in TLS_OPENING_TYPES or first_bytes[1] != VERSION_MAJOR:
        return False
    if first_bytes[2] > VERSION_MINOR_MAX:
        return False
    length = (first_bytes[3] << 8) | first_bytes[4]
    return 0 < length <= TLS_RECORD_MAX


def looks_like_smtp_server(first_bytes: bytes) -> bool:
    """The bytes open like an SMTP greeting: `220 `, `220-`, `554 ` or `421 `."""
    if _GREETING.match(first_bytes) is None:
        return False
    return _NOT_SMTP_GREETING.match(first_bytes) is None


def looks_like_smtp_client(first_bytes: bytes) -> bool:
    """The bytes open like an SMTP client: EHLO/HELO/LHLO, MAIL FROM:, RCPT TO:, STARTTLS, …"""
    return _CLIENT_OPENING.match(first_bytes) is not None


def sender_is_server(first_bytes: bytes, sport: int, dport: int) -> bool | None:
    """Role hint for a flow whose handshake was not captured: True when the sender of
    `first_bytes` (from port `sport` to `dport`) is the SMTP server, False when it is the
    client, None when neither the content nor the ports tell."""
    if looks_like_smtp_server(first_bytes) or _REPLY_LINE.match(first_bytes):
        return True
    if looks_like_smtp_client(first_bytes):
        return False
    word = _COMMAND_WORD.match(first_bytes)
    if word is not None and word[1].decode("ascii").upper() in VERBS:
        return False
    from_server_port = sport in SMTP_PORTS
    to_server_port = dport in SMTP_PORTS
    if from_server_port != to_server_port:
        return from_server_port
    return None


def sniff_decision(seen: bytes, looks_like_smtp: bool) -> bool | None:
    """The sniff rule for a flow off the mail ports, given the first bytes `seen` of one
    direction (at most `SNIFF_BYTES` of each segment gathered) and whether they look like SMTP:
    True when they do; False once `SNIFF_BYTES` octets or a line end came without it; None
    while undecided. Both engines decide with it."""
    if looks_like_smtp:
        return True
    if len(seen) >= SNIFF_BYTES or b"\n" in seen:
        return False
    return None
