"""Constants and small readers shared by the digest: values of report.json read leniently
(`as_int`, `as_str`, …), times, plurals, kind titles, findings in report order grouped as
issues, and the `Event` of a timeline.

Part of `report.digest` (see its docstring).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from analyzer.detect.kinds import KINDS

from ..model import FindingEntry, Report

SEVERITIES = ("critical", "high", "medium", "low", "info")
"""Most severe first (DOMAIN.md §3)."""
CONFIDENCES = ("confirmed", "likely", "possible")
C2S = "client_to_server"
S2C = "server_to_client"

MAX_TIMELINE_EVENTS = 300
"""Events listed in a timeline; the rest are counted."""
MAX_LISTED = 25
"""Findings of one kind listed one by one (summary, evidence, checks); the rest are counted."""
MAX_STEPS = 600
"""Aligned steps kept per connection (transcripts are capped at 400 lines per side)."""

END_LINE = re.compile(r"\[(RST|FIN) ttl=(\d+)\]")
"""How `build` writes a connection end into a transcript (`[RST ttl=255]`)."""

TITLES: Final[Mapping[str, str]] = {str(kind): text.title for kind, text in KINDS.items()}
"""A heading per finding kind (DOMAIN.md §3), from the detectors' table of kinds."""

HAPPENED: Final[Mapping[str, str]] = {str(kind): text.happened for kind, text in KINDS.items()}
"""What a kind means, as part of a sentence."""

CUT_OFF_KINDS = frozenset({"reset_after_dkim_header", "header_line_too_long_drop"})
ROOT_CAUSE_KINDS = (
    "ehlo_keyword_masked",
    "ehlo_keyword_removed",
    "command_masked",
    "command_replaced",
    "starttls_rejected",
)
"""Kinds that explain a `tls_downgrade` (its details' `because_of`), most telling first."""


def as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) < 1e11 else None  # NaN, absurd times


def as_str(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def utc(ts: object, *, date: bool = True, ms: bool = True) -> str:
    """An epoch time as UTC text ('2024-03-05 09:14:02.250'); '?' when it is not a time."""
    seconds = as_float(ts)
    if seconds is None:
        return "?"
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return "?"
    text = moment.strftime("%Y-%m-%d %H:%M:%S.%f" if date else "%H:%M:%S.%f")
    return text[:-3] if ms else text[:-7]


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def confidence_rank(confidence: str) -> int:
    return CONFIDENCES.index(confidence) if confidence in CONFIDENCES else len(CONFIDENCES)


def title(kind: str) -> str:
    return TITLES.get(kind, kind.replace("_", " ").capitalize() or "Finding")


def id_list(ids: Sequence[str], limit: int = 10) -> str:
    """'F1, F2, F3' — at most `limit` ids, then how many more."""
    shown = ", ".join(ids[:limit])
    return shown + (f" +{len(ids) - limit} more" if len(ids) > limit else "")


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else words or word + 's'}"


def ordered_findings(report: Report) -> list[FindingEntry]:
    """Most severe first, then most certain, then report order."""
    indexed = list(enumerate(report.get("findings") or []))
    indexed.sort(
        key=lambda item: (
            severity_rank(as_str(item[1].get("severity"))),
            confidence_rank(as_str(item[1].get("confidence"))),
            item[0],
        )
    )
    return [f for _, f in indexed]


@dataclass(frozen=True, slots=True)
class Issue:
    """The findings of one kind: one section of a report."""

    kind: str
    findings: tuple[FindingEntry, ...]

    @property
    def severity(self) -> str:
        return min((as_str(f.get("severity")) for f in self.findings), key=severity_rank)

    @property
    def confidence(self) -> str:
        return min((as_str(f.get("confidence")) for f in self.findings), key=confidence_rank)

    @property
    def title(self) -> str:
        return title(self.kind)

    @property
    def ids(self) -> list[str]:
        return [as_str(f.get("id")) for f in self.findings]

    @property
    def listed(self) -> tuple[FindingEntry, ...]:
        """The findings shown one by one (the most severe first)."""
        return self.findings[:MAX_LISTED]

    @property
    def unlisted(self) -> int:
        return max(0, len(self.findings) - MAX_LISTED)


def issues(report: Report) -> list[Issue]:
    """Findings grouped by kind, the group with the most severe finding first."""
    groups: dict[str, list[FindingEntry]] = {}
    for finding in ordered_findings(report):
        groups.setdefault(as_str(finding.get("kind")), []).append(finding)
    return [Issue(kind, tuple(found)) for kind, found in groups.items()]


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, on the client-side capture's clock. `text` is raw."""

    ts: float
    session: str
    text: str
    severity: str | None = None
    finding: str | None = None
