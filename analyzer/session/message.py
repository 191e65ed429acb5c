"""Read the header section of one message with the stdlib `email` package.

Only the header block is parsed (a full MIME parse costs milliseconds per message and tells a
firewall analysis nothing). Encoded words (RFC 2047) are decoded for display; anything the
`email` package cannot make sense of is kept as raw text, never raised.
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy
from dataclasses import dataclass

from analyzer.smtp.events import MessageHeader

from .model import HeaderField

_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)


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
    """Decode RFC 2047 encoded words; fall back to the raw value."""
    if value is None:
        return None
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:  # malformed encoded words are common on the wire
        return value


def summarize(header_block: bytes) -> MessageSummary:
    """The fields a mail engineer asks about first, from a message's header section."""
    try:
        msg = _PARSER.parsebytes(header_block)
    except Exception:
        return MessageSummary(None, None, None, None, None)

    def get(name: str) -> str | None:
        value = msg.get(name)
        if value is None:
            return None
        text = str(value) if not isinstance(value, str) else value
        return " ".join(text.split())

    return MessageSummary(
        subject=_display(get("Subject")),
        header_from=_display(get("From")),
        header_to=_display(get("To")),
        message_id=get("Message-ID"),
        date=get("Date"),
    )


def header_field(event: MessageHeader) -> HeaderField:
    """A header event from the observer as a decoded field with its position on the wire."""
    raw = event.raw
    _, _, value = raw.partition(b":")
    return HeaderField(
        name=decode_text(event.name),
        value=" ".join(decode_text(value).split()),
        offset=event.offset,
        longest_line=event.longest_line,
        frame=event.frame,
        last_frame=event.last_frame,
        ts=event.ts,
        complete=raw.endswith(b"\n"),
    )
