"""Server reply lines: parsing `NNN[ -]text`, assembling multi-line replies, EHLO keywords and
enhanced status codes.

`ReplyAssembler` turns lines into whole replies and says what was odd about them; which command a
reply answers is decided by the observer. No I/O, no state beyond the reply being assembled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, NamedTuple

from analyzer._common import FrameRef

from .events import Reply, SmtpAnomaly
from .limits import REPLY_CODE_LEN
from .lines import Line

MULTILINE_MARK: Final = 0x2D
"""`-` after the code: more lines follow (RFC 5321 §4.2.1)."""
LAST_LINE_MARK: Final = 0x20
"""SP after the code: the last line of the reply (RFC 5321 §4.2.1)."""

_ENHANCED: Final = re.compile(rb"#?([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
"""`class.subject.detail` at the start of reply text (RFC 3463 §2, RFC 2034 §4); Cisco's
inspection writes it after a `#` (`500 #5.5.1 command not recognized`)."""


class ReplyLine(NamedTuple):
    """One parsed reply line."""

    code: int | None
    """The three-digit code, None when the line is not `NNN[ -]…`."""
    more: bool
    """`NNN-`: another line of the same reply follows."""
    text: bytes
    """What follows `NNN-`/`NNN `; the whole line when it is malformed."""


def parse_reply_line(content: bytes) -> ReplyLine:
    """Split a reply line (terminator removed) into code, continuation mark and text."""
    head = content[:REPLY_CODE_LEN]
    if len(head) == REPLY_CODE_LEN and head.isdigit() and head.isascii():
        if len(content) == REPLY_CODE_LEN:
            return ReplyLine(int(head), False, b"")
        mark = content[REPLY_CODE_LEN]
        if mark in (MULTILINE_MARK, LAST_LINE_MARK):
            return ReplyLine(int(head), mark == MULTILINE_MARK, content[REPLY_CODE_LEN + 1 :])
    return ReplyLine(None, False, content)


@dataclass(slots=True, init=False)
class AssembledReply:
    """A reply's lines put together, before it is tied to a command (not changed once made).

    One is made per reply: its constructor is written out, as `Line`'s."""

    code: int
    lines: tuple[bytes, ...]
    raw: bytes
    offset: int
    frame: FrameRef | None
    last_frame: FrameRef | None
    ts: float
    end_ts: float
    dropped_lines: int
    """Lines not kept because the reply outgrew the observer's limit."""

    def __init__(
        self,
        code: int,
        lines: tuple[bytes, ...],
        raw: bytes,
        offset: int,
        frame: FrameRef | None,
        last_frame: FrameRef | None,
        ts: float,
        end_ts: float,
        dropped_lines: int,
    ) -> None:
        self.code = code
        self.lines = lines
        self.raw = raw
        self.offset = offset
        self.frame = frame
        self.last_frame = last_frame
        self.ts = ts
        self.end_ts = end_ts
        self.dropped_lines = dropped_lines


class _Partial:
    """A multi-line reply being assembled."""

    __slots__ = (
        "code",
        "dropped",
        "end_ts",
        "frame",
        "head",
        "last_frame",
        "lines",
        "offset",
        "raw",
        "ts",
    )

    def __init__(
        self,
        code: int,
        offset: int,
        frame: FrameRef | None,
        ts: float,
        last_frame: FrameRef | None,
        end_ts: float,
        head: bytes = b"",
    ) -> None:
        self.code = code
        self.offset = offset
        self.frame = frame
        self.ts = ts
        self.last_frame = last_frame
        self.end_ts = end_ts
        self.head = head
        """The code as its first line spelled it (`250`), b'' for a malformed line."""
        self.lines: list[bytes] = []
        self.raw = bytearray()
        self.dropped = 0

    def add(self, text: bytes, line: Line, max_bytes: int) -> None:
        self.last_frame = line.last_frame
        self.end_ts = line.end_ts
        if len(self.raw) + len(line.content) + len(line.terminator) > max_bytes and self.lines:
            self.dropped += 1
            return
        self.lines.append(text)
        self.raw += line.content
        self.raw += line.terminator

    def freeze(self) -> AssembledReply:
        return AssembledReply(
            self.code,
            tuple(self.lines),
            bytes(self.raw),
            self.offset,
            self.frame,
            self.last_frame,
            self.ts,
            self.end_ts,
            self.dropped,
        )


Oddity = tuple[SmtpAnomaly, str]


class ReplyAssembler:
    """Collects reply lines until the last line of each reply."""

    __slots__ = ("_max_bytes", "_partial")

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._partial: _Partial | None = None

    @property
    def in_reply(self) -> bool:
        """A multi-line reply has started and its last line has not come yet."""
        return self._partial is not None

    def add(self, line: Line) -> tuple[AssembledReply | None, Oddity | None]:
        """Take one line; returns the reply it completes (if any) and what was odd about it."""
        content = line.content
        partial = self._partial
        if partial is None:
            # A one-line reply, the common case: no assembly needed. The test is
            # `parse_reply_line`'s, spelled out (`bytes.isdigit` is true for ASCII digits only).
            head = content[:REPLY_CODE_LEN]
            if (
                head.isdigit()
                and len(head) == REPLY_CODE_LEN
                and (len(content) == REPLY_CODE_LEN or content[REPLY_CODE_LEN] == LAST_LINE_MARK)
            ):
                return (
                    AssembledReply(
                        int(head),
                        (content[REPLY_CODE_LEN + 1 :],),
                        content + line.terminator,
                        line.offset,
                        line.frame,
                        line.last_frame,
                        line.ts,
                        line.end_ts,
                        0,
                    ),
                    None,
                )
        elif (
            content[:REPLY_CODE_LEN] == partial.head
            and len(content) > REPLY_CODE_LEN
            and content[REPLY_CODE_LEN] == MULTILINE_MARK
        ):
            # A line inside a multi-line reply, with the reply's code: `parse_reply_line` would
            # find just that.
            partial.add(content[REPLY_CODE_LEN + 1 :], line, self._max_bytes)
            return None, None
        parsed = parse_reply_line(content)
        oddity: Oddity | None = None
        if partial is None:
            if parsed.code is None:
                oddity = (SmtpAnomaly.MALFORMED_REPLY, "a server line without a reply code")
                partial = _Partial(0, line.offset, line.frame, line.ts, line.frame, line.ts)
                partial.add(parsed.text, line, self._max_bytes)
                return partial.freeze(), oddity
            partial = _Partial(
                parsed.code,
                line.offset,
                line.frame,
                line.ts,
                line.frame,
                line.ts,
                content[:REPLY_CODE_LEN],
            )
        elif parsed.code is None:
            oddity = (
                SmtpAnomaly.MALFORMED_REPLY,
                f"a line without a code inside a {partial.code} reply",
            )
            partial.add(parsed.text, line, self._max_bytes)
            self._partial = partial
            return None, oddity
        elif parsed.code != partial.code:
            oddity = (
                SmtpAnomaly.MULTILINE_CODE_MISMATCH,
                f"line with code {parsed.code} inside a {partial.code} reply",
            )
        partial.add(parsed.text, line, self._max_bytes)
        if parsed.more:
            self._partial = partial
            return None, oddity
        self._partial = None
        return partial.freeze(), oddity

    def flush(self) -> AssembledReply | None:
        """The unfinished multi-line reply, if any (the stream ended or broke)."""
        partial, self._partial = self._partial, None
        return partial.freeze() if partial is not None else None


@dataclass(frozen=True, slots=True)
class EhloKeyword:
    """One extension a server advertised in its EHLO reply (RFC 5321 §4.1.1.1)."""

    name: str
    """Upper-cased keyword ('PIPELINING', 'STARTTLS', 'XXXXXXXA', …)."""
    params: tuple[str, ...]
    raw: bytes
    """The line's text as sent, after `250-`/`250 `."""


class _Extensions(NamedTuple):
    """What one EHLO reply advertises, parsed once."""

    keywords: tuple[EhloKeyword, ...]
    names: frozenset[str]
    """The keywords' names, for `advertises`."""


EHLO_CACHE_ENTRIES: Final = 128
"""EHLO replies whose keywords are remembered. A server says the same thing to every client,
so a capture holds few distinct replies; the cache is emptied when it fills up."""
EHLO_CACHE_MAX_BYTES: Final = 4096
"""Longer replies are parsed every time rather than remembered."""

_extensions_seen: dict[tuple[bytes, ...], _Extensions] = {}
"""Parsed keywords by the reply's lines after the first (the first names the server and often
the client, so it differs between sessions; it holds no keyword). Values are immutable."""


def _parse_extensions(lines: tuple[bytes, ...]) -> _Extensions:
    keywords: list[EhloKeyword] = []
    for text in lines:
        words = text.split()
        if not words:
            continue
        name, eq, first = words[0].partition(b"=")
        params = ([first] if eq and first else []) + words[1:]
        keywords.append(
            EhloKeyword(
                name.decode("utf-8", "surrogateescape").upper(),
                tuple([p.decode("utf-8", "surrogateescape") for p in params]),
                text,
            )
        )
    return _Extensions(tuple(keywords), frozenset([kw.name for kw in keywords]))


def _extensions(reply: Reply) -> _Extensions:
    """The reply's keywords, from the cache when the same lines were parsed before."""
    lines = reply.lines[1:]
    known = _extensions_seen.get(lines)
    if known is None:
        known = _parse_extensions(lines)
        if len(reply.raw) <= EHLO_CACHE_MAX_BYTES:
            if len(_extensions_seen) >= EHLO_CACHE_ENTRIES:
                _extensions_seen.clear()
            _extensions_seen[lines] = known
    return known


def parse_ehlo_keywords(reply: Reply) -> tuple[EhloKeyword, ...]:
    """The keywords of an EHLO reply; the first line (the server's name) is not one.

    The legacy form `AUTH=LOGIN PLAIN` gives the keyword AUTH with params ('LOGIN', 'PLAIN').
    Replies with the same keyword lines share one parsed (immutable) result.
    """
    return _extensions(reply).keywords


def advertises(reply: Reply, keyword: str) -> bool:
    """The EHLO reply lists `keyword` (upper case)."""
    return keyword in _extensions(reply).names


@dataclass(frozen=True, slots=True, order=True)
class EnhancedStatus:
    """An enhanced mail system status code (RFC 3463)."""

    klass: int
    """2 success, 4 persistent transient failure, 5 permanent failure."""
    subject: int
    detail: int

    def __str__(self) -> str:
        return f"{self.klass}.{self.subject}.{self.detail}"


def parse_enhanced_status(text: bytes) -> EnhancedStatus | None:
    """The enhanced status code at the start of a reply line's text, if any."""
    match = _ENHANCED.match(text)
    if match is None:
        return None
    return EnhancedStatus(int(match[1]), int(match[2]), int(match[3]))


def enhanced_status(reply: Reply) -> EnhancedStatus | None:
    """The enhanced status code of a reply's first line, if any."""
    return parse_enhanced_status(reply.lines[0]) if reply.lines else None
