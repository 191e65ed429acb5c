"""The report model: report.json's shape (`smtpfw.report/1`, DOMAIN.md §4) as typed dictionaries.

The JSON file *is* the model: `build` fills it from an analysis, the renderers (JSON, Markdown,
HTML) read it, and `smtpfw report report.json` re-renders a saved analysis from it alone. Keys of
the contract keep their names and meanings; everything else here is an addition.
"""

from __future__ import annotations

from typing import Any, TypedDict

SCHEMA = "smtpfw.report/1"


class CaptureEntry(TypedDict):
    id: str
    path: str
    role: str
    packets: int
    first_ts: float | None
    last_ts: float | None
    files: list[dict[str, Any]]
    smtp_sessions: int
    anomalies: dict[str, int]


class EvidenceEntry(TypedDict):
    capture: str
    frame: int | None
    ts: float | None
    direction: str | None
    excerpt: str
    file: str | None
    note: str


class FindingEntry(TypedDict):
    id: str
    kind: str
    severity: str
    confidence: str
    sessions: list[str]
    summary: str
    cause: str
    remediation: str
    evidence: list[EvidenceEntry]
    details: dict[str, Any]


class TranscriptLine(TypedDict):
    kind: str
    """'command', 'reply', 'fin' or 'rst'."""
    direction: str
    ts: float
    frame: int | None
    offset: int
    text: str


class PairEntry(TypedDict):
    client_side: str
    server_side: str
    score: float
    matched_on: list[str]
    time_delta_s: float
    identical: bool
    divergences: list[dict[str, Any]]
    end_mismatches: list[dict[str, Any]]


class Report(TypedDict):
    schema: str
    generator: dict[str, str]
    captures: list[CaptureEntry]
    clock_offset_s: float | None
    clock: dict[str, Any] | None
    sessions: list[dict[str, Any]]
    pairs: list[PairEntry]
    findings: list[FindingEntry]
    transcripts: dict[str, list[TranscriptLine]]
    summary: dict[str, Any]
