"""What commands and replies do to an SMTP session, as tables.

The observer keeps a mode per direction and a queue of commands waiting for replies; this module
says when those change. It holds no state and does no parsing.

Client-side modes and what moves between them:

    COMMANDS --DATA, then 354 (or DATA with no server bytes seen)--> MESSAGE
    MESSAGE  --<CRLF>.<CRLF>, or any server reply, or the stream ends--> COMMANDS
    COMMANDS --BDAT <size> [LAST]--> CHUNK --<size> octets later--> COMMANDS
    COMMANDS --STARTTLS, then 220--> TLS (both directions, for good)

While an AUTH command is waiting, a 334 reply makes the client's next line a SASL response,
not a command; the exchange ends with the first reply that is not 334. Any 334 does so, even one
whose AUTH was lost in a capture gap: a credential must never be taken for a command.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from .commands import VERBS


class ClientMode(enum.Enum):
    """How the observer reads the client's bytes."""

    COMMANDS = "commands"
    """Each line is a command (or a SASL response during AUTH)."""
    MESSAGE = "message"
    """Mail data after DATA, up to `<CRLF>.<CRLF>` (RFC 5321 §4.1.1.4)."""
    CHUNK = "chunk"
    """The octets of a BDAT chunk (RFC 3030 §2), counted, never scanned for an end mark."""
    TLS = "tls"
    """After STARTTLS was accepted: counted, never parsed as lines."""


class Effect(enum.Enum):
    """What a reply does besides answering its command."""

    NONE = "none"
    START_TLS = "start_tls"
    """STARTTLS answered 220: TLS begins in both directions (RFC 3207 §4)."""
    START_MESSAGE = "start_message"
    """DATA answered 354: the client's next bytes are mail data (RFC 5321 §4.1.1.4)."""
    SASL_CHALLENGE = "sasl_challenge"
    """AUTH answered 334: the client's next line is a SASL response (RFC 4954 §4)."""
    LEARN_EXTENSIONS = "learn_extensions"
    """EHLO/HELO/LHLO answered 250: the service extensions (none for HELO) are now known
    (RFC 5321 §4.1.1.1)."""


REPLY_EFFECTS: Final[Mapping[tuple[str, int], Effect]] = {
    ("STARTTLS", 220): Effect.START_TLS,
    ("DATA", 354): Effect.START_MESSAGE,
    ("AUTH", 334): Effect.SASL_CHALLENGE,
    ("EHLO", 250): Effect.LEARN_EXTENSIONS,
    ("HELO", 250): Effect.LEARN_EXTENSIONS,
    ("LHLO", 250): Effect.LEARN_EXTENSIONS,
}
"""(verb, reply code) → effect; every pair not listed has no effect."""

INTERMEDIATE: Final[frozenset[tuple[str, int]]] = frozenset({("DATA", 354), ("AUTH", 334)})
"""Positive intermediate replies (3yz, RFC 5321 §4.2.1) after which the command waits for a
further reply: the reply to the mail data, or the end of the SASL exchange."""

UNSOLICITED_CODES: Final[frozenset[int]] = frozenset({421})
"""Replies a server may send without a command waiting: 421 when it shuts the service down,
"asynchronously from command receipt" (RFC 5321 §3.8), e.g. after a client timeout."""

RESYNC_CODES: Final[frozenset[int]] = frozenset({354, 221})
"""Replies only one verb can get: 354 (DATA, RFC 5321 §4.3.2) and 221 (QUIT). When one arrives
while other commands wait before that verb, replies were merged or lost: matching resumes there."""

GREETING_CODES: Final[frozenset[int]] = frozenset({220, 421, 554})
"""Codes a connection can open with: 220 ready, 554 no service (RFC 5321 §4.3.2), 421 closing
(RFC 5321 §3.8)."""


class CommandEffect(enum.Enum):
    """What a command does to how the client's next bytes are read."""

    NONE = "none"
    MESSAGE_IF_UNANSWERED = "message_if_unanswered"
    """DATA in a capture holding no server bytes: nothing will say 354, so the next bytes are
    taken as mail data right away."""
    CHUNK = "chunk"
    """BDAT: the next <size> octets are data (RFC 3030 §2)."""
    SASL = "sasl"
    """AUTH: SASL responses may follow instead of commands (RFC 4954 §4)."""


ENDS_CHUNKED_MESSAGE: Final[frozenset[str]] = frozenset(
    {"MAIL", "RSET", "HELO", "EHLO", "LHLO", "QUIT", "STARTTLS", "DATA"}
)
"""Commands that abandon a BDAT message still waiting for its LAST chunk: they reset or leave
the mail transaction (RFC 3030 §2, RFC 5321 §4.1.1.5 and §4.1.4)."""

COMMAND_EFFECTS: Final[Mapping[str, CommandEffect]] = {
    "DATA": CommandEffect.MESSAGE_IF_UNANSWERED,
    "BDAT": CommandEffect.CHUNK,
    "AUTH": CommandEffect.SASL,
}


NO_EFFECT: Final = Effect.NONE
NO_COMMAND_EFFECT: Final = CommandEffect.NONE
"""What most commands and replies do, bound to module names: on Python 3.11 reading a member
from its Enum class costs several times as much as reading a global."""


def reply_effect(verb: str, code: int) -> Effect:
    return REPLY_EFFECTS.get((verb, code), NO_EFFECT)


def command_effect(verb: str) -> CommandEffect:
    return COMMAND_EFFECTS.get(verb, NO_COMMAND_EFFECT)


def keeps_command_open(verb: str, code: int) -> bool:
    """The reply is intermediate: the command will get another reply."""
    return (verb, code) in INTERMEDIATE


FINAL_POSITIVE: Final[Mapping[str, frozenset[int]]] = {"DATA": frozenset({250})}
"""Positive replies to a command after its intermediate reply and what followed it: the mail
data was accepted (RFC 5321 §4.3.2)."""


def reply_fits(verb: str, code: int, *, continued: bool = False) -> bool:
    """The reply code is one the command can get: any failure (4yz, 5yz) fits any command; a
    positive code must be one the verb's definition lists (for its final reply when the command
    is `continued` after an intermediate one). Unknown verbs take anything."""
    if code >= 400:
        return True
    if continued:
        final = FINAL_POSITIVE.get(verb)
        if final is not None:
            return code in final
    positive = _POSITIVE.get(verb)
    return positive is None or code in positive


_POSITIVE: Final[Mapping[str, frozenset[int]]] = {
    name: verb.positive for name, verb in VERBS.items()
}
"""`Verb.positive` by verb name, for `reply_fits` (asked once per reply)."""
