"""The one list of detectors (`DETECTORS`), the runners over a pair and over one capture, and
the order and numbering of findings.

What it does: runs every family's rules in the order of `DETECTORS` — two-sided rules on an
aligned pair, one-sided rules on each session of one capture, then the rules over a whole
capture — and numbers the findings in report order. No reflection: a rule runs because it is
named here.
What it does not do: detect anything itself, or read files.

One rule holds for every two-sided finding (`cap_to_pairing`): a finding is only as sure as the
pairing it compares. When the pair is ambiguous (another partner nearly as good) or not
corroborated (nothing shows the two sessions are one connection), a `confirmed` finding is
reported `likely`, with a `confidence_note` saying why.

The report's order is `number`'s (severity, time, kind, sessions); each kind belongs to one
family, so the order of families below only decides what a later two-sided rule sees of the
earlier ones (`downgrade` reads the STARTTLS damage, `changes` everything found before it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from analyzer.correlate import PairAlignment, SessionPair
from analyzer.correlate.placement import Placed, place
from analyzer.session.model import SmtpSession

from . import banner, changes, commands, downgrade, drops, ehlo, resets, starttls
from .base import Confidence, Finding, FindingKind
from .unmatched import unmatched

__all__ = [
    "DETECTORS",
    "Detector",
    "cap_to_pairing",
    "detect_pair",
    "detect_single",
    "number",
    "pair_findings",
    "unmatched",
]

PairRule = Callable[[PairAlignment, Sequence[Placed], Sequence[Finding]], list[Finding]]
"""A two-sided rule: an aligned pair, its placed divergences, and what the rules before it found
in the pair."""
SessionRule = Callable[[SmtpSession], list[Finding]]
"""A one-sided rule: one session of one capture."""
CaptureRule = Callable[[Sequence[SmtpSession]], list[Finding]]
"""A one-sided rule over all the sessions of one capture."""


@dataclass(frozen=True, slots=True)
class Detector:
    """One family of findings: its kinds and its rules from two captures and from one."""

    name: str
    kinds: tuple[FindingKind, ...]
    two_sided: PairRule | None = None
    one_sided: SessionRule | None = None
    across_sessions: CaptureRule | None = None


DETECTORS: tuple[Detector, ...] = (
    Detector(
        "banner",
        (FindingKind.BANNER_MASKED, FindingKind.BANNER_REPLACED),
        banner.two_sided,
        banner.one_sided,
    ),
    Detector(
        "ehlo",
        (FindingKind.EHLO_KEYWORD_MASKED, FindingKind.EHLO_KEYWORD_REMOVED),
        ehlo.two_sided,
        ehlo.one_sided,
        ehlo.across_sessions,
    ),
    Detector(
        "commands",
        (
            FindingKind.COMMAND_MASKED,
            FindingKind.COMMAND_REPLACED,
            FindingKind.INTERACTIVE_TEST_ARTEFACT,
        ),
        commands.two_sided,
        commands.one_sided,
    ),
    Detector("starttls", (FindingKind.STARTTLS_REJECTED,), starttls.two_sided, starttls.one_sided),
    Detector("downgrade", (FindingKind.TLS_DOWNGRADE,), downgrade.two_sided, downgrade.one_sided),
    Detector("resets", (FindingKind.RESET_INJECTED,), resets.two_sided, resets.one_sided),
    Detector(
        "drops",
        (FindingKind.RESET_AFTER_DKIM_HEADER, FindingKind.HEADER_LINE_TOO_LONG_DROP),
        drops.two_sided,
        drops.one_sided,
    ),
    Detector(
        "changes", (FindingKind.PAYLOAD_MODIFIED, FindingKind.DATA_MISSING), changes.two_sided
    ),
)
"""Every detector, in the order its rules run. `session_unmatched` is `unmatched`'s, which the
pipeline calls with what the pairing left over."""


def pair_findings(al: PairAlignment) -> list[Finding]:
    """Every finding the two-sided rules make of one aligned pair, as the captures show it
    (before `cap_to_pairing`)."""
    if al.identical:
        return []
    placed = place(al)
    found: list[Finding] = []
    for detector in DETECTORS:
        if detector.two_sided is not None:
            found.extend(detector.two_sided(al, placed, found))
    return found


def detect_pair(alignment: PairAlignment) -> list[Finding]:
    """Every finding of one session pair, as sure as its pairing (`cap_to_pairing`)."""
    return cap_to_pairing(pair_findings(alignment), alignment.pair)


def detect_single(sessions: Sequence[SmtpSession]) -> list[Finding]:
    """Every finding the one-sided rules make of one capture's sessions."""
    found: list[Finding] = []
    for session in sessions:
        for detector in DETECTORS:
            if detector.one_sided is not None:
                found.extend(detector.one_sided(session))
    for detector in DETECTORS:
        if detector.across_sessions is not None:
            found.extend(detector.across_sessions(sessions))
    return found


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
