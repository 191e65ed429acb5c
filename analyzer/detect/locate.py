"""Find the command, reply or header that holds a stream offset, and turn places into evidence.

Small lookups over a finished session; no detection logic.
"""

from __future__ import annotations

import bisect

from analyzer._common import Direction, FrameRef
from analyzer.session.model import HeaderField, Line, MailTransaction, SmtpSession

from .base import Evidence


def _encoded_length(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def line_at(session: SmtpSession, direction: Direction, offset: int) -> Line | None:
    """The command (client→server) or reply (server→client) whose bytes include `offset`."""
    lines = [line for line in session.lines if line.direction is direction]
    starts = [line.offset for line in lines]
    i = bisect.bisect_right(starts, offset) - 1
    if i < 0:
        return None
    line = lines[i]
    if direction is Direction.SERVER_TO_CLIENT:
        end = lines[i + 1].offset if i + 1 < len(lines) else line.offset + _reply_length(line)
    else:
        end = line.offset + _encoded_length(line.text) + 2
    return line if offset < end else None


def _reply_length(line: Line) -> int:
    return sum(_encoded_length(part) + 2 for part in line.text.split("\n"))


def answered_verb(session: SmtpSession, reply: Line) -> str | None:
    if reply.answers is None or reply.answers >= len(session.lines):
        return None
    return session.lines[reply.answers].verb


def header_at(session: SmtpSession, offset: int) -> tuple[MailTransaction, HeaderField] | None:
    """The message header field (client→server) containing `offset`."""
    for txn in session.transactions:
        headers = txn.headers
        for i, header in enumerate(headers):
            end = headers[i + 1].offset if i + 1 < len(headers) else header.offset + 1_000_000
            if header.offset <= offset < end:
                return txn, header
    return None


def transaction_at(session: SmtpSession, offset: int) -> MailTransaction | None:
    """The transaction whose message contains client→server offset `offset`."""
    found = None
    for txn in session.transactions:
        if txn.data_offset is not None and txn.data_offset <= offset:
            found = txn
    return found


def evidence(
    session: SmtpSession,
    frame: FrameRef | None,
    ts: float | None,
    direction: Direction | None,
    excerpt: str,
    note: str = "",
) -> Evidence:
    return Evidence(
        capture=session.capture_id,
        frame=frame,
        ts=ts,
        direction=direction,
        excerpt=excerpt,
        note=note,
    )


def line_evidence(session: SmtpSession, line: Line, note: str = "") -> Evidence:
    return evidence(session, line.frame, line.ts, line.direction, line.text, note)


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")
