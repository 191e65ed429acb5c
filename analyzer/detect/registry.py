"""The explicit list of detectors and the order findings are reported in.

No reflection: a detector runs because it is named here (two-sided in `paired.PAIR_DETECTORS`,
one-sided in `single.SESSION_DETECTORS`).

One rule holds for every two-sided finding (`cap_to_pairing`): a finding is only as sure as the
pairing it compares. When the pair is ambiguous (another partner nearly as good) or not
corroborated (nothing shows the two sessions are one connection), a `confirmed` finding is
reported `likely`, with a `confidence_note` saying why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from analyzer.correlate import PairAlignment, SessionPair

from . import paired
from .base import Confidence, Finding
from .paired import PAIR_DETECTORS
from .single import SESSION_DETECTORS, detect_single
from .unmatched import unmatched

__all__ = [
    "PAIR_DETECTORS",
    "SESSION_DETECTORS",
    "cap_to_pairing",
    "detect_pair",
    "detect_single",
    "number",
    "unmatched",
]


def number(findings: Iterable[Finding], start_of: dict[str, float]) -> list[Finding]:
    """Findings in report order (most severe first, then by time), with ids F1, F2, …"""
    ordered = sorted(
        findings,
        key=lambda f: (
            f.severity.rank,
            min((start_of.get(s, 0.0) for s in f.sessions), default=0.0),
            str(f.kind),
            f.sessions,
        ),
    )
    return [replace(f, id=f"F{i}") for i, f in enumerate(ordered, 1)]


def pairing_doubt(pair: SessionPair) -> str | None:
    """Why the pairing of `pair` does not prove that its two sessions are one connection, or
    None when it does."""
    doubts: list[str] = []
    if pair.ambiguous:
        doubts.append(
            f"the pairing of {pair.client_side.id} with {pair.server_side.id} is ambiguous "
            f"(it beats the next candidate by {pair.margin:g}): the two captures do not show "
            "which session is this one's counterpart"
        )
    if not pair.corroborated:
        doubts.append(
            f"the pairing of {pair.client_side.id} with {pair.server_side.id} is not "
            "corroborated: no TCP timestamp, IP-ID sequence or TLS ciphertext identifies the "
            "connection on both sides, and the clock offset does not vouch for it"
        )
    return "; ".join(doubts) or None


def cap_to_pairing(findings: Iterable[Finding], pair: SessionPair) -> list[Finding]:
    """`findings` of `pair`, with `confirmed` lowered to `likely` when the pairing is in doubt."""
    doubt = pairing_doubt(pair)
    if doubt is None:
        return list(findings)
    return [
        replace(f, confidence=Confidence.LIKELY, confidence_note=doubt)
        if f.confidence is Confidence.CONFIRMED
        else f
        for f in findings
    ]


def detect_pair(alignment: PairAlignment) -> list[Finding]:
    """Every finding of one session pair, as sure as its pairing (`cap_to_pairing`)."""
    return cap_to_pairing(paired.detect_pair(alignment), alignment.pair)
