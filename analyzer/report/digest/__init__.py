"""Read a report model the way an incident report tells it: verdict, issues, checks, timeline.

What it does: derives, from `report.json` alone, what both renderers (Markdown and HTML) show —
the verdict (what happened, between which hosts, since when, how many connections and
messages, the security impact, the most likely cause and the one change that fixes it), the
findings grouped by kind, how to verify each one in Wireshark, a timeline of the affected
connections, and the two captures' transcripts of one connection aligned step by step.
What it does not do: find anything new (findings come from `detect`), or escape or format for
any output (strings here are raw captured text; each renderer escapes what it prints). Optional
facts may be missing or null (an older or trimmed report.json): they are left out, not guessed.
"""

from __future__ import annotations

from .chronology import timeline
from .common import (
    C2S,
    CONFIDENCES,
    CUT_OFF_KINDS,
    END_LINE,
    HAPPENED,
    MAX_LISTED,
    MAX_STEPS,
    MAX_TIMELINE_EVENTS,
    ROOT_CAUSE_KINDS,
    S2C,
    SEVERITIES,
    TITLES,
    Event,
    Issue,
    as_float,
    as_int,
    as_str,
    confidence_rank,
    id_list,
    issues,
    ordered_findings,
    plural,
    severity_rank,
    title,
    utc,
)
from .evidence import Shown, evidence_key, findings_touching, shown_evidence, tokens_of
from .lookups import (
    Index,
    affected_connections,
    delivered,
    is_message,
    starttls_text,
    transactions,
    transactions_text,
)
from .remediation import Block, blocks, inline_code, other_fixes
from .summary import (
    DROPPED_PHRASES,
    FILE_DAMAGE,
    MAX_CUT_SESSIONS_LISTED,
    NO_OVERLAP_HEADLINE,
    NO_SMTP_HEADLINE,
    NO_SMTP_HEADLINE_TWO,
    PORTS_SHOWN,
    UNPROVEN_PREFIX,
    Verdict,
    cut_by_limits,
    damage,
    dropped_text,
    notices,
    verdict,
    verdict_kind,
)
from .transcripts import AFTER, Step, align
from .verification import Check, checks

__all__ = [
    "AFTER",
    "C2S",
    "CONFIDENCES",
    "CUT_OFF_KINDS",
    "DROPPED_PHRASES",
    "END_LINE",
    "FILE_DAMAGE",
    "HAPPENED",
    "MAX_CUT_SESSIONS_LISTED",
    "MAX_LISTED",
    "MAX_STEPS",
    "MAX_TIMELINE_EVENTS",
    "NO_OVERLAP_HEADLINE",
    "NO_SMTP_HEADLINE",
    "NO_SMTP_HEADLINE_TWO",
    "PORTS_SHOWN",
    "ROOT_CAUSE_KINDS",
    "S2C",
    "SEVERITIES",
    "TITLES",
    "UNPROVEN_PREFIX",
    "Block",
    "Check",
    "Event",
    "Index",
    "Issue",
    "Shown",
    "Step",
    "Verdict",
    "affected_connections",
    "align",
    "as_float",
    "as_int",
    "as_str",
    "blocks",
    "checks",
    "confidence_rank",
    "cut_by_limits",
    "damage",
    "delivered",
    "dropped_text",
    "evidence_key",
    "findings_touching",
    "id_list",
    "inline_code",
    "is_message",
    "issues",
    "notices",
    "ordered_findings",
    "other_fixes",
    "plural",
    "severity_rank",
    "shown_evidence",
    "starttls_text",
    "timeline",
    "title",
    "tokens_of",
    "transactions",
    "transactions_text",
    "utc",
    "verdict",
    "verdict_kind",
]
