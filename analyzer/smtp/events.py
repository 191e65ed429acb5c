"""Events the sans-IO SMTP observer emits: small immutable values, one docstring per field.

Wire content stays `bytes` here; the `session` layer decodes it. Every event carries the
stream offset and the frame of its first byte so that findings can cite a packet.

The events made once per command, reply, header field, message or connection have quick
constructors (`new_command`, `new_reply`, `new_message_header`, …, see `analyzer._quick`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from analyzer._common import Direction, FrameRef
from analyzer._quick import quick_constructor


class SmtpAnomaly(enum.StrEnum):
    """Odd things on the SMTP wire; observations, never exceptions."""

    BARE_LF = "bare_lf"
    """A line ended in LF without CR (RFC 5321 §2.3.8 requires CRLF)."""
    BARE_CR = "bare_cr"
    """A CR not followed by LF inside a line."""
    NUL_BYTE = "nul_byte"
    COMMAND_LINE_TOO_LONG = "command_line_too_long"
    """Command line over 512 octets (RFC 5321 §4.5.3.1.4)."""
    REPLY_LINE_TOO_LONG = "reply_line_too_long"
    """Reply line over 512 octets (RFC 5321 §4.5.3.1.5)."""
    TEXT_LINE_TOO_LONG = "text_line_too_long"
    """Message line over 1000 octets with CRLF (RFC 5321 §4.5.3.1.6)."""
    HEADER_LINE_TOO_LONG = "header_line_too_long"
    """Header line over 998 octets without CRLF (RFC 5322 §2.1.1)."""
    LINE_TRUNCATED = "line_truncated"
    """A line longer than the observer buffers; the rest of it was skipped."""
    UNKNOWN_COMMAND = "unknown_command"
    MASKED_COMMAND = "masked_command"
    """A command verb made only of 'X' characters: a middlebox overwrote it (`XXXXXXXX`)."""
    MALFORMED_REPLY = "malformed_reply"
    """A server line that is not `NNN[ -]text`."""
    MULTILINE_CODE_MISMATCH = "multiline_code_mismatch"
    REPLY_WITHOUT_COMMAND = "reply_without_command"
    """A reply arrived with no command waiting for one (and it is not the greeting)."""
    REPLIES_OUT_OF_STEP = "replies_out_of_step"
    """A reply that only one later command can take (354 → DATA, 221 → QUIT) arrived while
    earlier commands waited: their replies were merged or missing; matching resumed there."""
    REPLY_AFTER_GAP = "reply_after_gap"
    """A reply whose command may have been lost in a capture gap."""
    COMMAND_AFTER_GAP = "command_after_gap"
    """Client bytes resumed after a gap: the observer resynchronised on the next line."""
    COMMAND_BEFORE_GREETING = "command_before_greeting"
    DATA_WITHOUT_END = "data_without_end"
    """The message ended (close, reset, gap or EOF) before `<CRLF>.<CRLF>`."""
    BDAT_BAD_SIZE = "bdat_bad_size"
    PIPELINING_NOT_ADVERTISED = "pipelining_not_advertised"
    """The client sent a command before the reply to the previous one without PIPELINING."""
    TLS_WITHOUT_CLIENT_HELLO = "tls_without_client_hello"
    """After `220` to STARTTLS the client's next bytes were not a TLS ClientHello."""
    CLEARTEXT_AFTER_TLS = "cleartext_after_tls"
    """After TLS started, bytes that look like SMTP lines were seen (a plaintext-injection sign)."""
    TLS_FROM_FIRST_BYTE = "tls_from_first_byte"
    """The flow is TLS from its first byte: implicit TLS (RFC 8314), or a capture that started
    after STARTTLS. Its bytes are counted as TLS, never read as SMTP lines."""
    DATA_AFTER_CLOSE = "data_after_close"


@dataclass(frozen=True, slots=True)
class Command:
    """One client command line."""

    verb: str
    """Upper-cased first word, as ASCII text ('EHLO', 'MAIL', 'XXXXXXXX', …)."""
    args: bytes
    """Everything after the verb and its separating space; AUTH credentials are removed."""
    raw: bytes
    """The line without its terminator; for AUTH, only `AUTH <mechanism>` is kept."""
    terminator: bytes
    """b'\\r\\n', b'\\n', or b'' when the stream ended inside the line."""
    offset: int
    frame: FrameRef | None
    ts: float
    known: bool
    """The verb is one this observer understands (RFC 5321 and common extensions)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete (possibly multi-line) server reply."""

    code: int
    """Three-digit reply code; 0 for a malformed line kept as a reply."""
    lines: tuple[bytes, ...]
    """Text of each line after `NNN-`/`NNN ` and without the terminator."""
    raw: bytes
    """All lines exactly as sent, terminators included (capped at the observer's limit)."""
    command: Command | None
    """The command this reply answers (pipelining-aware), None for the greeting or unmatched."""
    is_greeting: bool
    offset: int
    frame: FrameRef | None
    """Frame of the first byte of the reply."""
    last_frame: FrameRef | None
    ts: float
    end_ts: float


@dataclass(frozen=True, slots=True)
class DataStart:
    """The client began a message body (after `354`, or after `DATA` in a one-sided capture)."""

    offset: int
    frame: FrameRef | None
    ts: float


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """One header field of the message being sent, complete with its folded continuation lines."""

    name: bytes
    """Field name as sent ('DKIM-Signature')."""
    raw: bytes
    """The field's lines, dot-unstuffed, terminators included (capped)."""
    offset: int
    """Stream offset (client→server) of the field's first byte."""
    longest_line: int
    """Length of its longest physical line without CRLF: > 998 breaks RFC 5322 §2.1.1."""
    frame: FrameRef | None
    last_frame: FrameRef | None
    """Frame holding the field's last byte."""
    ts: float


@dataclass(frozen=True, slots=True)
class DataEnd:
    """A message body ended, with the end-of-data mark or without it."""

    complete: bool
    """True when `<CRLF>.<CRLF>` (or BDAT LAST) ended it; False on close, reset, gap or EOF."""
    size: int
    """Message size in octets after dot-unstuffing (DATA) or sum of chunk sizes (BDAT)."""
    header_block: bytes
    """The message's header section, unstuffed, up to the blank line (capped)."""
    offset: int
    """Stream offset just after the message (after the terminator when complete)."""
    frame: FrameRef | None
    ts: float
    bare_lf_lines: int = 0
    long_lines: int = 0
    """Body lines over 1000 octets."""


@dataclass(frozen=True, slots=True)
class BdatChunk:
    """One BDAT chunk (RFC 3030) whose bytes were consumed."""

    size: int
    last: bool
    offset: int
    frame: FrameRef | None
    ts: float


@dataclass(frozen=True, slots=True)
class TlsStarted:
    """The server accepted STARTTLS with 220: from here both directions are TLS."""

    offset_client: int
    """Client→server stream offset where TLS begins."""
    offset_server: int
    frame: FrameRef | None
    ts: float


@dataclass(frozen=True, slots=True)
class TlsClientHello:
    """The client's first bytes after STARTTLS look like a TLS handshake record."""

    version: int
    """Record-layer version (0x0301 …)."""
    frame: FrameRef | None
    ts: float


@dataclass(frozen=True, slots=True)
class Gap:
    """Bytes of one direction were never captured; the observer resynchronised after them."""

    direction: Direction
    offset: int
    length: int
    frame: FrameRef | None
    ts: float


@dataclass(frozen=True, slots=True)
class StreamClosed:
    """One direction ended with FIN or RST."""

    direction: Direction
    reset: bool
    offset: int
    frame: FrameRef | None
    ts: float


@dataclass(frozen=True, slots=True)
class AnomalySeen:
    """An anomaly at a point of the stream."""

    kind: SmtpAnomaly
    direction: Direction
    detail: str
    offset: int
    frame: FrameRef | None
    ts: float


Event = (
    Command
    | Reply
    | DataStart
    | MessageHeader
    | DataEnd
    | BdatChunk
    | TlsStarted
    | TlsClientHello
    | Gap
    | StreamClosed
    | AnomalySeen
)


new_command = quick_constructor(Command)
"""`Command(...)`, made faster: one is made per command line."""
new_reply = quick_constructor(Reply)
"""`Reply(...)`, made faster: one is made per reply."""
new_message_header = quick_constructor(MessageHeader)
"""`MessageHeader(...)`, made faster: one is made per header field of every message."""
new_data_start = quick_constructor(DataStart)
"""`DataStart(...)`, made faster: one is made per message."""
new_data_end = quick_constructor(DataEnd)
"""`DataEnd(...)`, made faster: one is made per message."""
new_bdat_chunk = quick_constructor(BdatChunk)
"""`BdatChunk(...)`, made faster: one is made per BDAT command."""
new_stream_closed = quick_constructor(StreamClosed)
"""`StreamClosed(...)`, made faster: one is made per direction of every connection."""
