"""TCP resets forged in the path (`reset_injected`), at any phase of the session.

What it does: from both captures, names each RST one side saw whose apparent sender's capture
does not hold it (`two_sided`); from one capture, compares a RST with its apparent sender's
other packets by TTL, source MAC and IP-ID sequence (`one_sided`: `possible` on one signal,
`likely` on two or more, never `confirmed`).
What it does not do: say what the reset killed (`drops`: a message cut in DATA).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from analyzer._common import CaptureSide, Direction
from analyzer.correlate import PairAlignment
from analyzer.correlate.placement import Placed
from analyzer.flows.events import EndKind, StreamEnd
from analyzer.session.model import SmtpSession

from .base import Confidence, Evidence, Finding, FindingKind, Severity
from .evidence import evidence, pair_ids
from .kinds import finding
from .signatures import origin_differences

S2C = Direction.SERVER_TO_CLIENT

FORGED_RESET_SIGNALS: Final = 2
"""Signals (TTL, source MAC, IP-ID) that must disagree with the endpoint's own packets for a
one-sided forged reset to be `likely` rather than `possible`."""

_SIGNAL_NAMES = {"ttl": "TTL", "mac": "source MAC", "ip_id": "IP-ID sequence"}


def two_sided(
    al: PairAlignment, placed: Sequence[Placed], found: Sequence[Finding]
) -> list[Finding]:
    """Resets one capture holds that their apparent sender never sent."""
    client, server = al.pair.client_side, al.pair.server_side
    forged = [m for m in al.end_mismatches if m.kind is EndKind.RST]
    if not forged:
        return []
    proof: list[Evidence] = []
    for m in forged:
        session = client if m.seen_in is CaptureSide.CLIENT_SIDE else server
        sender = "server" if m.direction is S2C else "client"
        usual = m.end.usual_origin
        note = (
            f"RST 'from the {sender}' with TTL {m.end.origin.ttl}"
            + (f" (the {sender}'s packets: TTL {usual.ttl})" if usual else "")
            + f"; no such RST in the {sender}-side capture"
        )
        proof.append(evidence(session, m.end.frame, m.end.ts, m.direction, "RST", note))
    return [
        finding(
            FindingKind.RESET_INJECTED,
            Confidence.CONFIRMED,
            pair_ids(al),
            f"{len(forged)} TCP reset(s) were forged in the path: the endpoints they "
            "claim to come from never sent them.",
            proof,
            {
                "resets": [
                    {
                        "seen_in": m.seen_in.key,
                        "claims_sender": "server" if m.direction is S2C else "client",
                        "ttl": m.end.origin.ttl,
                        "usual_ttl": m.end.usual_origin.ttl if m.end.usual_origin else None,
                        "origin_differs": m.origin_differs,
                    }
                    for m in forged
                ]
            },
        )
    ]


def _origin_note(end: StreamEnd, differs: tuple[str, ...]) -> str:
    usual = end.usual_origin
    parts = [f"TTL {end.origin.ttl}" + (f" (usually {usual.ttl})" if usual else "")]
    if end.origin.src_mac is not None:
        parts.append(
            f"MAC {end.origin.src_mac.hex(':')}"
            + (f" (usually {usual.src_mac.hex(':')})" if usual and usual.src_mac else "")
        )
    if end.origin.ip_id is not None:
        parts.append(
            f"IP-ID {end.origin.ip_id}"
            + (f" (last {usual.ip_id})" if usual and usual.ip_id is not None else "")
        )
    return ", ".join(parts) + "; differs in: " + ", ".join(_SIGNAL_NAMES[d] for d in differs)


def one_sided(session: SmtpSession) -> list[Finding]:
    """A reset whose TTL, source MAC or IP-ID does not fit its apparent sender's other packets.

    All three fitting makes it the endpoint's own reset. Any one differing makes it a forgery
    candidate: `possible` on one signal (a route change alters a TTL, a NIC bond the MAC),
    `likely` when two or more agree; never `confirmed` from one capture.
    """
    for end in session.ends:
        if end.kind is not EndKind.RST:
            continue
        differs = origin_differences(end.origin, end.usual_origin)
        if not differs:
            continue
        usual = end.usual_origin
        sender = "server" if end.direction is S2C else "client"
        return [
            finding(
                FindingKind.RESET_INJECTED,
                Confidence.LIKELY if len(differs) >= FORGED_RESET_SIGNALS else Confidence.POSSIBLE,
                (session.id,),
                f"A TCP reset 'from the {sender}' does not look like that endpoint's other "
                f"packets ({', '.join(_SIGNAL_NAMES[d] for d in differs)} differ): probably "
                "forged in the path.",
                (
                    evidence(
                        session, end.frame, end.ts, end.direction, "RST", _origin_note(end, differs)
                    ),
                ),
                {
                    "ttl": end.origin.ttl,
                    "usual_ttl": usual.ttl if usual else None,
                    "src_mac": end.origin.src_mac.hex(":") if end.origin.src_mac else None,
                    "usual_src_mac": usual.src_mac.hex(":") if usual and usual.src_mac else None,
                    "ip_id": end.origin.ip_id,
                    "usual_ip_id": usual.ip_id if usual else None,
                    "differs": list(differs),
                },
                severity=Severity.MEDIUM,  # one capture: the endpoint may have changed route
            )
        ]
    return []
