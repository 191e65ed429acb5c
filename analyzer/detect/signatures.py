"""What firewall damage looks like from one side: masks, masked banners, rejection texts.

Declared once, used by the one-sided detectors and to describe two-sided findings. Where a
rule is inferred from captures rather than documented, it says so. Detectors must not depend on
one server's exact wording (Postfix, Exim, Cisco ESA and Sendmail all phrase rejections
differently), so texts are matched by their common words.
"""

from __future__ import annotations

import re

MASKED_KEYWORD = re.compile(r"X+[A-Z]")
"""A masked EHLO keyword: X's with a final letter counting up per masked keyword (inferred
from captures: STARTTLS → XXXXXXXA, HELP → XXXB)."""

MASKED_VERB = re.compile(r"X{3,}")
"""A command verb overwritten by X's (STARTTLS → XXXXXXXX)."""

NOT_RECOGNIZED = re.compile(
    rb"not\s+recogni[sz]ed|unrecogni[sz]ed|command\s+unknown|unknown\s+command|"
    rb"syntax\s+error|not\s+implemented",
    re.IGNORECASE,
)
"""Server texts for an unknown command: Cisco ESA `500 #5.5.1 command not recognized`, Postfix
`500 5.5.2 Error: command not recognized` (older 502), Exim `500 unrecognized command`,
Sendmail `500 5.5.1 Command unrecognized`."""

REJECT_UNKNOWN_CODES = frozenset({500, 502})
"""RFC 5321 §4.2.2: 500 syntax error / command unrecognized, 502 command not implemented."""

BANNER_MASK_CHAR = "*"
BANNER_MASKED_RATIO = 0.5
"""A banner whose text (after the code) is at least this share of '*' is masked (PIX 5.1+ keeps
only '2', '0' and spaces; ASA's exact form is unverified, so 'mostly *' is the rule)."""

KEYWORDS_BY_LENGTH: dict[int, tuple[str, ...]] = {
    8: ("STARTTLS", "CHUNKING", "SMTPUTF8"),
    4: ("HELP", "ETRN", "VRFY", "SIZE"),
    19: ("ENHANCEDSTATUSCODES",),
    3: ("DSN",),
    7: ("XCLIENT",),
    9: ("XFORWARD",),
    10: ("PIPELINING", "DELIVERBY", "BINARYMIME"),
}
"""Well-known EHLO keywords (RFC 5321 §2.2.2 registry) by length: a mask keeps the length, so
the length says which keyword it may have been."""

KNOWN_VERBS = frozenset(
    {
        "HELO",
        "EHLO",
        "MAIL",
        "RCPT",
        "DATA",
        "RSET",
        "NOOP",
        "QUIT",
        "VRFY",
        "EXPN",
        "HELP",
        "AUTH",
        "BDAT",
        "ETRN",
    }
)
"""Verbs every ESMTP server knows (RFC 5321 §4.1, RFC 4954, RFC 3030, RFC 1985): a server that
calls one of them unknown did not receive it as sent."""

ONE_CHAR_SEGMENT_SHARE = 0.6
"""A client whose command bytes mostly travel one per segment is a person typing (telnet)."""


def is_masked_keyword(keyword: str) -> bool:
    return len(keyword) >= 2 and MASKED_KEYWORD.fullmatch(keyword) is not None


def is_masked_verb(verb: str) -> bool:
    return MASKED_VERB.fullmatch(verb) is not None


def banner_is_masked(banner: str) -> bool:
    text = banner.split("\n", 1)[0]
    significant = [ch for ch in text if not ch.isspace()]
    if not significant:
        return False
    stars = sum(ch == BANNER_MASK_CHAR for ch in significant)
    return stars / len(significant) >= BANNER_MASKED_RATIO


def candidates_for_mask(mask: str) -> tuple[str, ...]:
    """Keywords a mask of this length may stand for, most often masked first."""
    return KEYWORDS_BY_LENGTH.get(len(mask), ())


def rejects_unknown_command(code: int | None, text: str | None) -> bool:
    """A reply that says 'I do not know that command' (500/502 or such words)."""
    if code is None:
        return False
    if code in REJECT_UNKNOWN_CODES:
        return True
    return 500 <= code < 600 and text is not None and bool(NOT_RECOGNIZED.search(text.encode()))
