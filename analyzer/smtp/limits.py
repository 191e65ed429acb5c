"""Wire limits of SMTP and of the message format, each declared once with the section it comes from.

Only constants live here. The observer compares what it sees against them and reports an
anomaly when a limit is broken; it never refuses input because of them. The observer's own
memory bounds (how much of a line or a header section it keeps) are here too, kept apart from
the protocol limits.
"""

from __future__ import annotations

from typing import Final

CRLF: Final = b"\r\n"
"""Line terminator of commands, replies and mail data (RFC 5321 §2.3.8)."""

END_OF_DATA: Final = b"\r\n.\r\n"
"""End of mail data: a line holding only a period (RFC 5321 §4.1.1.4). Its first CRLF ends the
message's last line and belongs to the message."""

COMMAND_LINE_MAX: Final = 512
"""Longest command line, verb and CRLF included (RFC 5321 §4.5.3.1.4)."""

AUTH_LINE_MAX: Final = 12288
"""Longest AUTH command or SASL response line, CRLF included (RFC 4954 §4)."""

REPLY_LINE_MAX: Final = 512
"""Longest reply line, code and CRLF included (RFC 5321 §4.5.3.1.5)."""

TEXT_LINE_MAX: Final = 1000
"""Longest line of mail data, CRLF included, not counting a leading dot doubled for
transparency (RFC 5321 §4.5.3.1.6). A line is too long when its content exceeds
`TEXT_LINE_MAX - len(CRLF)` = 998 octets."""

HEADER_LINE_MAX: Final = 998
"""Longest header line, CRLF excluded (RFC 5322 §2.1.1)."""

REPLY_CODE_LEN: Final = 3
"""A reply code is three digits (RFC 5321 §4.2)."""

TLS_RECORD_MAX: Final = 2**14 + 2048
"""Largest TLSCiphertext fragment (RFC 5246 §6.2.3; TLS 1.3 allows at most 2^14 + 256,
RFC 8446 §5.2). A record header announcing more means the bytes are not TLS."""

TLS_RECORD_HEADER_LEN: Final = 5
"""Content type (1), legacy version (2), length (2): RFC 8446 §5.1."""

# The observer's own bounds (not protocol limits).

DEFAULT_MAX_LINE: Final = 65536
"""Bytes of one line the observer keeps; the rest of a longer line is counted and skipped (the
session's `dropped.line_bytes` for commands and replies, `dropped.reply_lines` for the lines of a
reply longer than this)."""

DEFAULT_MAX_HEADER_BLOCK: Final = 256 * 1024
"""Bytes of a message's header section the observer keeps and parses into fields."""

MAX_PENDING_COMMANDS: Final = 1000
"""Commands kept waiting for replies. RFC 2920 sets no bound; a one-sided capture never sees a
reply, so the oldest waiting command is forgotten beyond this many (counted: the session's
`dropped.pending_commands`)."""

ANOMALY_REPORT_LIMIT: Final = 100
"""Anomalies of one kind reported per direction and session; further ones are only counted (the
session's `dropped.anomaly_reports`, by kind)."""

GAP_PROBE_MAX: Final = 64
"""Bytes looked at after a gap inside a message to tell whether the message ended in the gap."""
