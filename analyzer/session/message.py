"""Decode one message's header fields for display, with the stdlib `email` package.

The SMTP observer already split the header section into fields (with their stream offsets); this
module turns them into text and picks the fields a mail engineer asks about first. Encoded words
(RFC 2047) are decoded with `email.header`; anything it cannot make sense of is kept as sent,
never raised. Running the whole header block through `email.parser` again would cost a
millisecond per message for nothing the fields do not already say.
"""

from __future__ import annotations

import email.header
import re
from collections.abc import Iterable
from dataclasses import dataclass

from analyzer.smtp.events import MessageHeader

from .model import HeaderField

FOLD = re.compile(r"\r?\n(?=[ \t])")
"""RFC 5322 §2.2.3: unfolding removes each CRLF that is followed by white space."""

ENCODED_WORD = "=?"
"""RFC 2047 §2: an encoded word starts with `=?charset?`."""


@dataclass(frozen=True, slots=True)
class MessageSummary:
    subject: str | None
    header_from: str | None
    header_to: str | None
    message_id: str | None
    date: str | None


def decode_text(raw: bytes) -> str:
    """Wire bytes → text without losing a byte (undecodable bytes survive as surrogates)."""
    return raw.decode("utf-8", "surrogateescape")


def _display(value: str | None) -> str | None:
    """Decode RFC 2047 encoded words; fall back to the value as sent."""
    if value is None or ENCODED_WORD not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:  # malformed encoded words are common on the wire
        return value


def summarize(headers: Iterable[HeaderField]) -> MessageSummary:
    """Subject, From, To, Message-ID and Date (the first of each) of one message."""
    first: dict[str, str] = {}
    for header in headers:
        first.setdefault(header.name.lower(), header.value)
    return MessageSummary(
        subject=_display(first.get("subject")),
        header_from=_display(first.get("from")),
        header_to=_display(first.get("to")),
        message_id=first.get("message-id"),
        date=first.get("date"),
    )


def header_field(event: MessageHeader) -> HeaderField:
    """A header event from the observer as a decoded field with its position on the wire."""
    raw = event.raw
    _, _, value = raw.partition(b":")
    return HeaderField(
        name=decode_text(event.name),
        value=FOLD.sub("", decode_text(value)).strip(),
        offset=event.offset,
        longest_line=event.longest_line,
        frame=event.frame,
        last_frame=event.last_frame,
        ts=event.ts,
        complete=raw.endswith(b"\n"),
    )
