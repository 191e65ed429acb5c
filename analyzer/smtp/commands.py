"""Client command lines: the verb table, splitting, AUTH redaction, MAIL/RCPT paths and params.

Pure functions over the bytes of one line; no state. What a command does to the session (enter
DATA, start TLS, …) is in `state`; the observer applies it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Verb:
    """A command verb this observer understands."""

    name: str
    reference: str
    """Where the verb is defined."""
    positive: frozenset[int]
    """Positive reply codes of the verb's first reply (2yz completion, 3yz intermediate). Any
    4yz or 5yz reply fits any verb; this is only used to re-align replies after a capture gap."""


def _verbs(*verbs: Verb) -> dict[str, Verb]:
    return {verb.name: verb for verb in verbs}


VERBS: Final[dict[str, Verb]] = _verbs(
    # RFC 5321 §4.1.1 and the reply codes of §4.3.2.
    Verb("EHLO", "RFC 5321 §4.1.1.1", frozenset({250})),
    Verb("HELO", "RFC 5321 §4.1.1.1", frozenset({250})),
    Verb("MAIL", "RFC 5321 §4.1.1.2", frozenset({250})),
    Verb("RCPT", "RFC 5321 §4.1.1.3", frozenset({250, 251, 252})),
    Verb("DATA", "RFC 5321 §4.1.1.4", frozenset({354})),
    Verb("RSET", "RFC 5321 §4.1.1.5", frozenset({250})),
    Verb("VRFY", "RFC 5321 §4.1.1.6", frozenset({250, 251, 252})),
    Verb("EXPN", "RFC 5321 §4.1.1.7", frozenset({250, 252})),
    Verb("HELP", "RFC 5321 §4.1.1.8", frozenset({211, 214})),
    Verb("NOOP", "RFC 5321 §4.1.1.9", frozenset({250})),
    Verb("QUIT", "RFC 5321 §4.1.1.10", frozenset({221})),
    # RFC 821 §4.1.1, obsolete but still recognised by Cisco's inspection.
    Verb("SEND", "RFC 821 §4.1.1", frozenset({250})),
    Verb("SOML", "RFC 821 §4.1.1", frozenset({250})),
    Verb("SAML", "RFC 821 §4.1.1", frozenset({250})),
    Verb("TURN", "RFC 821 §4.1.1", frozenset({250})),
    # Service extensions.
    Verb("STARTTLS", "RFC 3207 §4", frozenset({220})),
    Verb("AUTH", "RFC 4954 §4", frozenset({235, 334})),
    Verb("ETRN", "RFC 1985 §5", frozenset({250, 251, 252, 253})),
    Verb("ATRN", "RFC 2645 §4", frozenset({250})),
    Verb("BDAT", "RFC 3030 §2", frozenset({250})),
    Verb("BURL", "RFC 4468 §3", frozenset({250})),
    Verb("LHLO", "RFC 2033 §4.1", frozenset({250})),
    # Widely deployed vendor commands.
    Verb("XCLIENT", "Postfix XCLIENT_README", frozenset({220, 250})),
    Verb("XFORWARD", "Postfix XFORWARD_README", frozenset({250})),
    Verb("VERB", "Sendmail", frozenset({250})),
    Verb("ONEX", "Sendmail", frozenset({250})),
)
"""Verbs the observer knows, by upper-case name."""

MASK_CHAR: Final = "X"
"""The character an inspecting firewall writes over a command it does not allow."""
MASKED_VERB_MIN: Final = 3
"""Shortest all-X verb taken as masked: no real verb is made only of X's (`XXXX` comes from
one-character-per-segment typing, `XXXXXXXX` from `STARTTLS`)."""

VERB_MAX_CHARS: Final = 64
"""Characters of the first word kept as `Command.verb`; the whole line stays in `raw`."""

_SASL_RESPONSE: Final = re.compile(rb"[A-Za-z0-9+/]*={0,2}|\*")
"""A SASL response line: base64 (RFC 4954 §4) or `*` to cancel the exchange."""

SASL_MECHANISM: Final = re.compile(rb"[A-Za-z0-9_-]{1,20}")
"""A SASL mechanism name (RFC 4422 §3.1): `sasl-mech = 1*20mech-char`, `mech-char = UPPER-ALPHA /
DIGIT / HYPHEN / UNDERSCORE`; matched case-insensitively, as servers read it on the wire."""

INVALID_MECHANISM: Final = b"<invalid>"
"""Stored instead of a mechanism name that breaks the grammar: it may be the credential itself
(`AUTH <token>`, the mechanism forgotten)."""

_INITIAL_RESPONSE: Final = re.compile(rb"[A-Za-z0-9+/]+={0,2}|=")
"""An AUTH initial response (RFC 4954 §4): base64, or `=` for an empty one."""

_PATH_KEYWORD: Final = re.compile(rb"\s*(?:FROM|TO)\s*:\s*", re.IGNORECASE)


def split_command(content: bytes) -> tuple[str, bytes]:
    """The upper-cased verb and everything after its separating space."""
    verb, _, args = content.partition(b" ")
    text = verb[:VERB_MAX_CHARS].decode("ascii", "backslashreplace").upper()
    return text, args


def is_known_verb(verb: str) -> bool:
    return verb in VERBS


def is_masked_verb(verb: str) -> bool:
    """A verb made only of X's: overwritten in place by an inspecting firewall."""
    return len(verb) >= MASKED_VERB_MIN and verb.strip(MASK_CHAR) == ""


def redact_auth(content: bytes) -> tuple[bytes, bytes]:
    """An AUTH line cut after its mechanism: (raw, args), the initial response dropped.

    `AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=` → (b'AUTH PLAIN', b'PLAIN'). A mechanism that breaks the
    RFC 4422 grammar is not kept: `AUTH dGVzdA==` → (b'AUTH <invalid>', b'<invalid>').
    """
    raw, mechanism, _ = auth_parts(content)
    return raw, mechanism


def auth_parts(content: bytes) -> tuple[bytes, bytes, int]:
    """An AUTH line's (raw, mechanism, secret): the line cut after a valid mechanism, the
    mechanism (or `INVALID_MECHANISM`), and where in `content` the bytes that may hold a
    credential begin, after the blanks that follow the mechanism (`len(content)`: none)."""
    space = content.find(b" ")
    if space < 0:
        return content, b"", len(content)
    start = space + 1
    while start < len(content) and content[start] in b" \t":
        start += 1
    end = start
    while end < len(content) and content[end] not in b" \t":
        end += 1
    if start == end:
        return content[:end], b"", len(content)
    if SASL_MECHANISM.fullmatch(content, start, end) is None:
        return content[:start] + INVALID_MECHANISM, INVALID_MECHANISM, start
    secret = end
    while secret < len(content) and content[secret] in b" \t":
        secret += 1
    return content[:end], content[start:end], secret


def is_masked_auth(verb: str, args: bytes) -> bool:
    """An unknown verb followed by a SASL mechanism and an initial response: an AUTH line whose
    verb an inspecting firewall overwrote (a PIX writes X's or `*`'s of the verb's length).

    Only the two-argument shape counts: `XXXX` alone or `XXXXXXXX` (a masked STARTTLS) stay the
    unknown commands they are. Taking another unknown command of that shape for AUTH only hides
    its second argument.
    """
    if verb in VERBS:
        return False
    words = args.split()
    return (
        len(words) == 2
        and SASL_MECHANISM.fullmatch(words[0]) is not None
        and _INITIAL_RESPONSE.fullmatch(words[1]) is not None
    )


def looks_like_sasl_response(content: bytes) -> bool:
    """The line could be a SASL response (base64 or `*`)."""
    return _SASL_RESPONSE.fullmatch(content) is not None


def parse_bdat(args: bytes) -> tuple[int, bool] | None:
    """`<size> [LAST]` of a BDAT command (RFC 3030 §2): (size, last), or None when malformed."""
    words = args.split()
    if not words or len(words) > 2 or not words[0].isdigit() or len(words[0]) > 18:
        return None
    if len(words) == 2 and words[1].upper() != b"LAST":
        return None
    return int(words[0]), len(words) == 2


def parse_path(args: bytes) -> tuple[bytes, dict[str, str | None]]:
    """The path and ESMTP parameters of MAIL/RCPT arguments.

    `FROM:<a@b> SIZE=10 BODY=8BITMIME` → (b'a@b', {'SIZE': '10', 'BODY': '8BITMIME'}).
    Tolerant, as real clients are: the `FROM:`/`TO:` keyword may be absent, spaces may follow
    the colon, the angle brackets may be missing. `<>` (the null path) gives b''. Parameter
    names are upper-cased; a parameter without `=` has the value None (RFC 5321 §4.1.2).
    """
    if args[:1] == b"<":
        rest = args  # the common case, as the session builder calls it: no keyword, no space
    else:
        keyword = _PATH_KEYWORD.match(args)
        rest = args[keyword.end() :] if keyword else args.lstrip()
    end = _closing_bracket(rest) if rest[:1] == b"<" else len(rest)
    if end < len(rest):
        path = rest[1:end]
        rest = rest[end + 1 :]
    else:
        token, _, rest = rest.partition(b" ")
        path = token.lstrip(b"<").rstrip(b">")
    params: dict[str, str | None] = {}
    if not rest:
        return path, params
    for word in rest.split():
        name, eq, value = word.partition(b"=")
        params[name.decode("ascii", "surrogateescape").upper()] = (
            value.decode("ascii", "surrogateescape") if eq else None
        )
    return path, params


def _closing_bracket(text: bytes) -> int:
    """Index of the `>` that closes the path opened by text[0], skipping quoted parts
    (`<"a>b"@c>`); len(text) when it is never closed."""
    end = text.find(b">", 1)
    if end < 0:
        return len(text)
    if text.find(b'"', 1, end) < 0:
        # No quote before the first `>`, the common case: it closes the path (a backslash only
        # escapes inside quotes).
        return end
    quoted = False
    escaped = False
    for i in range(1, len(text)):
        ch = text[i]
        if escaped:
            escaped = False
        elif ch == 0x5C:  # backslash
            escaped = quoted
        elif ch == 0x22:  # double quote
            quoted = not quoted
        elif ch == 0x3E and not quoted:  # '>'
            return i
    return len(text)
