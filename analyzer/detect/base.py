"""What a detector produces: `Finding`s with `Evidence`, and the closed vocabularies they use.

The kind strings are report.json's contract (DOMAIN.md §3): never rename one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from analyzer._common import Direction, FrameRef


class FindingKind(enum.StrEnum):
    BANNER_MASKED = "banner_masked"
    BANNER_REPLACED = "banner_replaced"
    EHLO_KEYWORD_MASKED = "ehlo_keyword_masked"
    EHLO_KEYWORD_REMOVED = "ehlo_keyword_removed"
    COMMAND_MASKED = "command_masked"
    COMMAND_REPLACED = "command_replaced"
    STARTTLS_REJECTED = "starttls_rejected"
    TLS_DOWNGRADE = "tls_downgrade"
    RESET_AFTER_DKIM_HEADER = "reset_after_dkim_header"
    HEADER_LINE_TOO_LONG_DROP = "header_line_too_long_drop"
    RESET_INJECTED = "reset_injected"
    PAYLOAD_MODIFIED = "payload_modified"
    DATA_MISSING = "data_missing"
    SESSION_UNMATCHED = "session_unmatched"
    INTERACTIVE_TEST_ARTEFACT = "interactive_test_artefact"


class Severity(enum.StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Confidence(enum.StrEnum):
    CONFIRMED = "confirmed"
    """Both captures prove it."""
    LIKELY = "likely"
    """One capture, a strong signature."""
    POSSIBLE = "possible"
    """One capture, a weak signature."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """One packet a user can open to check a claim."""

    capture: str
    frame: FrameRef | None
    ts: float | None
    direction: Direction | None
    excerpt: str
    """What the bytes were, decoded and as captured (escaping is the renderer's job)."""
    note: str = ""
    """What this packet shows ('as the server sent it', 'as the client received it')."""


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    severity: Severity
    confidence: Confidence
    sessions: tuple[str, ...]
    summary: str
    cause: str
    remediation: str
    evidence: tuple[Evidence, ...]
    details: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """Kind-specific facts: original and masked keyword, header name and offset, who replied…"""
    id: str = ""
    """Assigned once all findings are known ('F1', 'F2', … in report order)."""
    confidence_note: str | None = None
    """Why `confidence` is lower than the evidence alone would give: the session pair it rests
    on is ambiguous or not corroborated (`registry.cap_to_pairing`)."""
