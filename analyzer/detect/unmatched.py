"""Sessions seen in one capture only (`session_unmatched`).

What it does: one finding per session the pairing left without a counterpart, as severe as where
it lies (inside the other capture's time span: suspicious; outside: only capture windows).
What it does not do: run per pair or per session like the rules in `registry.DETECTORS` (its
input is what the pairing left over on one side, so the pipeline calls it with each side's
leftovers), or look at what the session did.
"""

from __future__ import annotations

from collections.abc import Sequence

from analyzer._common import Direction
from analyzer.session.model import SmtpSession

from .base import Confidence, Finding, FindingKind, Severity
from .evidence import evidence
from .kinds import finding


def unmatched(
    sessions: Sequence[SmtpSession], other_capture: str, other_span: tuple[float, float] | None
) -> list[Finding]:
    """One finding per session with no counterpart in `other_capture`.

    `other_span` is the other capture's first and last timestamp on this capture's clock: a
    session outside it is only a matter of capture windows (info), one inside it is suspicious.
    """
    findings: list[Finding] = []
    for s in sessions:
        inside = other_span is None or (other_span[0] <= s.start_ts <= other_span[1])
        mail = sum(1 for t in s.transactions if t.data_started)
        findings.append(
            finding(
                FindingKind.SESSION_UNMATCHED,
                Confidence.CONFIRMED,
                (s.id,),
                f"Session {s.client} → {s.server} ({len(s.transactions)} transaction(s)) "
                f"has no counterpart in the {other_capture} capture"
                + ("" if inside else " (it lies outside that capture's time span)")
                + ".",
                (
                    evidence(
                        s,
                        s.flow.syn_frame or s.banner_frame,
                        s.start_ts,
                        Direction.CLIENT_TO_SERVER,
                        f"{s.client} → {s.server}",
                        "first packet of the session",
                    ),
                ),
                {"inside_other_capture_span": inside},
                severity=(Severity.MEDIUM if mail else Severity.LOW) if inside else Severity.INFO,
            )
        )
    return findings
