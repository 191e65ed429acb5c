"""What firewall damage looks like from one side: masks, masked banners, rejection texts.

Declared once, used by the one-sided detectors and to describe two-sided findings. Where a
rule is inferred from captures rather than documented, it says so. Detectors must not depend on
one server's exact wording (Postfix, Exim, Cisco ESA and Sendmail all phrase rejections
differently), so texts are matched by their common words.
"""

from __future__ import annotations

import re

from analyzer.flows.events import PacketOrigin

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

BANNER_MASK_CHARS = frozenset("*X")
BANNER_MASKED_RATIO = 0.5
"""A banner whose text is at least this share of mask characters is masked: PIX 5.1+ turns
every character but '2', '0' and spaces into '*' (PIX 4.4 all of it), the X-masking of
"fixup"/"inspect esmtp" writes 'X's of the same length; ASA's `mask-banner` form is unverified,
so 'mostly * or X' is the rule. A different banner that is readable text is not masked: it was
replaced (a full proxy greets with its own 220)."""

IP_ID_FORWARD_WINDOW = 1024
"""A host's IPv4 IP-IDs move forward by small steps between its packets (RFC 6864 §4: a
counter, per host or per destination); a forged packet's rarely lands within this many ahead
of the endpoint's last one. Zero (RFC 6864 atomic datagrams, DF set) says nothing."""

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
    masks = sum(ch in BANNER_MASK_CHARS for ch in significant)
    return masks / len(significant) >= BANNER_MASKED_RATIO


def origin_differences(origin: PacketOrigin, usual: PacketOrigin | None) -> tuple[str, ...]:
    """Which of TTL, source MAC and IP-ID sequence show a packet was not sent by the endpoint
    whose other packets are `usual` ('ttl', 'mac', 'ip_id'); empty when all fit or unknown."""
    if usual is None:
        return ()
    differs: list[str] = []
    if origin.ttl != usual.ttl:
        differs.append("ttl")
    if origin.src_mac is not None and usual.src_mac is not None and origin.src_mac != usual.src_mac:
        differs.append("mac")
    if origin.ip_id and usual.ip_id:
        step = (origin.ip_id - usual.ip_id) % 65536
        if step > IP_ID_FORWARD_WINDOW:
            differs.append("ip_id")
    return tuple(differs)


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
