"""Events the sans-IO SMTP observer emits: small immutable values, one docstring per field.

Wire content stays `bytes` here; the `session` layer decodes it. Every event carries the
stream offset and the frame of its first byte so that findings can cite a packet.

The events made once per command, reply and header field have fast constructors
(`new_command`, `new_reply`, `new_message_header`) that build the same immutable values without
the frozen dataclass's per-field `object.__setattr__` (see `same_slot_layout`).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from analyzer._common import Direction, FrameRef


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


# ---- building the frequent events quickly ----
# A frozen dataclass's generated __init__ sets each field with `object.__setattr__`, about
# 0.15 µs a field. Each `_...Layout` class below has the same slots as its event but an ordinary
# `__setattr__`: a `new_...` function fills one with plain slot stores and then assigns the
# event's class to it (Python allows `__class__` assignment between classes of the same slot
# layout). The result is an ordinary event, equal to and hashing like one made by its
# constructor, in a fifth of the time.


def same_slot_layout(event: type, layout: type) -> bool:
    """`layout` has exactly the slots of the frozen slotted dataclass `event`, one per field.
    (The `new_...` functions fall back to the plain constructors if an event ever changes.)"""
    names = [f.name for f in dataclasses.fields(event)]
    slots: tuple[str, ...] = getattr(event, "__slots__", ())
    wanted: tuple[str, ...] = getattr(layout, "__slots__", ())
    return sorted(names) == sorted(slots) == sorted(wanted)


class _CommandLayout:
    """`Command`'s slots without the frozen `__setattr__`."""

    __slots__ = ("args", "frame", "known", "offset", "raw", "terminator", "ts", "verb")
    verb: str
    args: bytes
    raw: bytes
    terminator: bytes
    offset: int
    frame: FrameRef | None
    ts: float
    known: bool


def _new_command(
    verb: str,
    args: bytes,
    raw: bytes,
    terminator: bytes,
    offset: int,
    frame: FrameRef | None,
    ts: float,
    known: bool,
) -> Command:
    item = _CommandLayout()
    item.verb = verb
    item.args = args
    item.raw = raw
    item.terminator = terminator
    item.offset = offset
    item.frame = frame
    item.ts = ts
    item.known = known
    item.__class__ = Command  # type: ignore[assignment]
    made: Command = item  # type: ignore[assignment]
    return made


class _ReplyLayout:
    """`Reply`'s slots without the frozen `__setattr__`."""

    __slots__ = (
        "code",
        "command",
        "end_ts",
        "frame",
        "is_greeting",
        "last_frame",
        "lines",
        "offset",
        "raw",
        "ts",
    )
    code: int
    lines: tuple[bytes, ...]
    raw: bytes
    command: Command | None
    is_greeting: bool
    offset: int
    frame: FrameRef | None
    last_frame: FrameRef | None
    ts: float
    end_ts: float


def _new_reply(
    code: int,
    lines: tuple[bytes, ...],
    raw: bytes,
    command: Command | None,
    is_greeting: bool,
    offset: int,
    frame: FrameRef | None,
    last_frame: FrameRef | None,
    ts: float,
    end_ts: float,
) -> Reply:
    item = _ReplyLayout()
    item.code = code
    item.lines = lines
    item.raw = raw
    item.command = command
    item.is_greeting = is_greeting
    item.offset = offset
    item.frame = frame
    item.last_frame = last_frame
    item.ts = ts
    item.end_ts = end_ts
    item.__class__ = Reply  # type: ignore[assignment]
    made: Reply = item  # type: ignore[assignment]
    return made


class _MessageHeaderLayout:
    """`MessageHeader`'s slots without the frozen `__setattr__`."""

    __slots__ = ("frame", "last_frame", "longest_line", "name", "offset", "raw", "ts")
    name: bytes
    raw: bytes
    offset: int
    longest_line: int
    frame: FrameRef | None
    last_frame: FrameRef | None
    ts: float


def _new_message_header(
    name: bytes,
    raw: bytes,
    offset: int,
    longest_line: int,
    frame: FrameRef | None,
    last_frame: FrameRef | None,
    ts: float,
) -> MessageHeader:
    item = _MessageHeaderLayout()
    item.name = name
    item.raw = raw
    item.offset = offset
    item.longest_line = longest_line
    item.frame = frame
    item.last_frame = last_frame
    item.ts = ts
    item.__class__ = MessageHeader  # type: ignore[assignment]
    made: MessageHeader = item  # type: ignore[assignment]
    return made


new_command = _new_command if same_slot_layout(Command, _CommandLayout) else Command
"""`Command(verb, args, raw, terminator, offset, frame, ts, known)`, built faster
(positional arguments only)."""
new_reply = _new_reply if same_slot_layout(Reply, _ReplyLayout) else Reply
"""`Reply(code, lines, raw, command, is_greeting, offset, frame, last_frame, ts, end_ts)`, built
faster (positional arguments only)."""
new_message_header = (
    _new_message_header if same_slot_layout(MessageHeader, _MessageHeaderLayout) else MessageHeader
)
"""`MessageHeader(name, raw, offset, longest_line, frame, last_frame, ts)`, built faster
(positional arguments only)."""
