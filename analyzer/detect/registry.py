"""The explicit list of detectors and the order findings are reported in.

No reflection: a detector runs because it is named here (two-sided in `paired.PAIR_DETECTORS`,
one-sided in `single.SESSION_DETECTORS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .base import Finding
from .paired import PAIR_DETECTORS, detect_pair
from .single import SESSION_DETECTORS, detect_single
from .unmatched import unmatched

__all__ = [
    "PAIR_DETECTORS",
    "SESSION_DETECTORS",
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
