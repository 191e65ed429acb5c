"""Remediation text: the other fixes beside the verdict's, and remediation split into prose and
configuration blocks.

Part of `report.digest` (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Report
from .common import CUT_OFF_KINDS, Issue, as_str, issues
from .summary import Verdict


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph of prose, or configuration lines to type as they are."""

    code: bool
    text: str


def other_fixes(report: Report, verdict: Verdict) -> list[tuple[int, Issue]]:
    """Groups of findings (numbered from 1, as reports list them) whose fix is not the verdict's
    one change: the reader must not think that change cures them too."""
    if verdict.clean:
        return []
    groups = issues(report)
    kinds = {issue.kind for issue in groups}
    return [
        (number, issue)
        for number, issue in enumerate(groups, 1)
        if issue.severity in ("critical", "high", "medium")
        and as_str(issue.findings[0].get("remediation")) != verdict.remediation
        and issue.kind != "tls_downgrade"
        # the resets are how the box drops a connection: the drop's fix ends them too
        and not (issue.kind == "reset_injected" and kinds & CUT_OFF_KINDS)
    ]


def blocks(text: str) -> list[Block]:
    """Remediation text split into prose and code (lines indented by 4 spaces or a tab)."""
    out: list[Block] = []
    for line in text.split("\n"):
        is_code = line.startswith(("    ", "\t"))
        content = line[4:] if line.startswith("    ") else line[1:] if is_code else line
        if not is_code and not line.strip():
            continue
        if out and out[-1].code == is_code:
            out[-1] = Block(is_code, out[-1].text + "\n" + content)
        else:
            out.append(Block(is_code, content))
    return out


def inline_code(text: str) -> list[tuple[str, bool]]:
    """Prose split into (text, is_code) at `backtick` pairs; an unpaired backtick is text."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # odd number of backticks: keep the last one as text
        parts[-2:] = [parts[-2] + "`" + parts[-1]]
    return [(part, i % 2 == 1) for i, part in enumerate(parts) if part]
