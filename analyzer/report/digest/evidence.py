"""The comparisons shown in a finding's evidence: what was sent against what was received, and the
tokens to mark.

Part of `report.digest` (see its docstring).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ..model import FindingEntry, Report
from .common import C2S, as_int, as_str
from .lookups import Index


@dataclass(frozen=True, slots=True)
class Shown:
    """Evidence to show: the two captures' copies of the same bytes, or one packet.

    `client_side` holds the copy from the client-side capture (or from the only capture),
    `server_side` the copy from the server-side capture; one of them may be None.
    """

    direction: str
    client_side: dict[str, Any] | None
    server_side: dict[str, Any] | None

    @property
    def compared(self) -> bool:
        return self.client_side is not None and self.server_side is not None

    @property
    def sent(self) -> dict[str, Any] | None:
        return self.client_side if self.direction == C2S else self.server_side

    @property
    def received(self) -> dict[str, Any] | None:
        return self.server_side if self.direction == C2S else self.client_side

    @property
    def copies(self) -> list[dict[str, Any]]:
        """Sender's copy first."""
        return [c for c in (self.sent, self.received) if c is not None]


def shown_evidence(finding: FindingEntry, index: Index) -> list[Shown]:
    """Evidence in order; a packet and the other capture's copy of the same bytes (same
    direction, next such item) are shown together."""
    items = [dict(ev) for ev in finding.get("evidence") or []]
    taken: set[int] = set()
    out: list[Shown] = []
    for i, ev in enumerate(items):
        if i in taken:
            continue
        taken.add(i)
        direction = as_str(ev.get("direction"))
        role = index.role(as_str(ev.get("capture")))
        twin = None
        if index.two_sided and as_str(ev.get("excerpt")) != "RST":
            for j in range(i + 1, len(items)):
                other = items[j]
                if (
                    j not in taken
                    and as_str(other.get("direction")) == direction
                    and index.role(as_str(other.get("capture"))) not in ("", role)
                    and as_str(other.get("excerpt")) != "RST"
                ):
                    twin = other
                    taken.add(j)
                    break
        if role == "server-side":
            out.append(Shown(direction, twin, ev))
        else:
            out.append(Shown(direction, ev, twin))
    return out


def tokens_of(finding: FindingEntry) -> list[str]:
    """What a finding points at inside its excerpts (masked keywords and verbs), to highlight."""
    details = finding.get("details") or {}
    out: list[str] = []
    masked = details.get("masked")
    if isinstance(masked, list):
        out.extend(as_str(m.get("mask")) for m in masked if isinstance(m, dict))
    for key in ("mask", "replacement"):
        if isinstance(details.get(key), str):
            out.append(details[key])
    return [m for m in out if m and len(m) < 200]


def evidence_key(finding: FindingEntry) -> tuple[tuple[str, str, str], ...]:
    """What a finding's evidence says, without where: equal keys show the same thing."""
    return tuple(
        (as_str(e.get("capture")), as_str(e.get("direction")), as_str(e.get("excerpt")))
        for e in finding.get("evidence") or []
    )


def findings_touching(
    report: Report, sessions: Collection[str]
) -> tuple[list[str], list[str], list[int]]:
    """The findings that name any of `sessions`: their ids, the tokens their evidence marks
    (`tokens_of`) and the frames it cites, in report order."""
    ids: list[str] = []
    marks: list[str] = []
    frames: list[int] = []
    for finding in report.get("findings") or []:
        if any(s in sessions for s in finding.get("sessions") or []):
            ids.append(as_str(finding.get("id")))
            marks.extend(tokens_of(finding))
            frames.extend(
                n
                for e in finding.get("evidence") or []
                if (n := as_int(e.get("frame"))) is not None
            )
    return ids, marks, frames
