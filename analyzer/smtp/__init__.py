"""SMTP as seen on the wire: a sans-IO observer that turns both directions' bytes into events.

`SmtpObserver` (in `observer`) is the entry point; the event types are in `events`. Functions other
layers use: `parse_ehlo_keywords` and `parse_path` to read commands and replies, and the sniffing
functions of `detect` to find SMTP on any port. Nothing here does I/O.
"""

from __future__ import annotations

from .commands import VERBS, parse_path
from .detect import looks_like_smtp_client, looks_like_smtp_server, sender_is_server
from .observer import SmtpObserver
from .replies import (
    EhloKeyword,
    EnhancedStatus,
    enhanced_status,
    parse_ehlo_keywords,
    parse_enhanced_status,
)

__all__ = [
    "VERBS",
    "EhloKeyword",
    "EnhancedStatus",
    "SmtpObserver",
    "enhanced_status",
    "looks_like_smtp_client",
    "looks_like_smtp_server",
    "parse_ehlo_keywords",
    "parse_enhanced_status",
    "parse_path",
    "sender_is_server",
]
