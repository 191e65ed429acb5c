"""Where in the SMTP dialogue each divergence of an aligned pair lies, on both sides.

What it does: places every `Divergence` of a `PairAlignment` in the dialogue — the greeting, the
EHLO reply, another reply, a client command, an AUTH credential, a message, or elsewhere — and
finds the command or reply line that holds it in the sending and in the receiving capture; plus
the small lookups this needs over a finished session (the line or the transaction at a stream
offset, the verb a reply answers).
What it does not do: judge what a divergence means (that is `detect`), or build evidence.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass

from analyzer._common import Direction
from analyzer.session.model import Line, MailTransaction, SmtpSession

from .align import Divergence, PairAlignment

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT


class Place(enum.StrEnum):
    """Where a divergence lies (report.json: a change's `place`)."""

    BANNER = "banner"
    EHLO_REPLY = "ehlo_reply"
    REPLY = "reply"
    COMMAND = "command"
    CREDENTIAL = "auth_credential"
    """An AUTH initial response or SASL response (compared by digest, never shown)."""
    MESSAGE = "message"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Placed:
    divergence: Divergence
    place: Place
    sent_line: Line | None
    received_line: Line | None


def place(al: PairAlignment) -> list[Placed]:
    """Where in the dialogue each divergence falls, on the sending and the receiving side."""
    client, server = al.pair.client_side, al.pair.server_side
    placed: list[Placed] = []
    for d in al.divergences:
        sender, receiver = (client, server) if d.direction is C2S else (server, client)
        if d.credential:
            placed.append(
                Placed(
                    d,
                    Place.CREDENTIAL,
                    _auth_line(sender, d.sent_offset),
                    _auth_line(receiver, d.received_offset),
                )
            )
            continue
        sent_line = line_at(sender, d.direction, d.sent_offset)
        received_line = line_at(receiver, d.direction, d.received_offset)
        if sent_line is None and _greeting_cut(d, sender, receiver, received_line):
            where = Place.BANNER
        elif sent_line is None:
            where = Place.MESSAGE if d.direction is C2S and _in_message(sender, d) else Place.OTHER
        elif d.direction is C2S:
            where = Place.COMMAND
        elif sent_line is first_reply(sender) and sender.banner is not None:
            where = Place.BANNER
        elif answered_verb(sender, sent_line) == "EHLO":
            where = Place.EHLO_REPLY
        else:
            where = Place.REPLY
        placed.append(Placed(d, where, sent_line, received_line))
    return placed


def _greeting_cut(
    d: Divergence, sender: SmtpSession, receiver: SmtpSession, received_line: Line | None
) -> bool:
    """A difference in the greeting the sending side's capture holds only in part (a snaplen
    or a lost segment cut the line): placed by the receiving side's copy of the greeting."""
    return (
        d.direction is not C2S
        and sender.banner is None
        and receiver.banner is not None
        and received_line is not None
        and received_line is first_reply(receiver)
    )


def _auth_line(session: SmtpSession, offset: int) -> Line | None:
    """The client's command line at or before client stream offset `offset`: for a credential,
    the AUTH command (as kept: verb and mechanism) that it answers or ends."""
    found = None
    for line in session.lines:
        if line.direction is C2S and line.offset <= offset:
            found = line
    return found


def _in_message(session: SmtpSession, d: Divergence) -> bool:
    return transaction_at(session, d.sent_offset) is not None


def first_reply(session: SmtpSession) -> Line | None:
    """The first server→client line of the session (the greeting, when there is one)."""
    return next((line for line in session.lines if line.direction is S2C), None)


# -- lookups over one session ------------------------------------------------------------------


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
    """The verb of the command `reply` answers, if the session holds it."""
    if reply.answers is None or reply.answers >= len(session.lines):
        return None
    return session.lines[reply.answers].verb


def transaction_at(session: SmtpSession, offset: int) -> MailTransaction | None:
    """The transaction whose message contains client→server offset `offset`."""
    found = None
    for txn in session.transactions:
        if txn.data_offset is not None and txn.data_offset <= offset:
            found = txn
    return found
