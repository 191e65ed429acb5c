"""The report model: report.json's shape (`smtpfw.report/1`, DOMAIN.md §4) as typed dictionaries.

The JSON file *is* the model: `build` fills it from an analysis, the renderers (JSON, Markdown,
HTML) read it, and `smtpfw report report.json` re-renders a saved analysis from it alone. Keys of
the contract keep their names and meanings; everything else here is an addition.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

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
    traffic: NotRequired[TrafficEntry]
    """Absent from reports written before it existed."""


class TrafficEntry(TypedDict):
    """What a capture held besides SMTP (DOMAIN.md §4, "traffic"): how a capture without any
    SMTP session is described."""

    tcp_segments: int
    non_tcp: int
    """IP packets of other protocols (UDP, ICMP, ...)."""
    non_ip: int
    tcp_connections: int
    server_ports: dict[str, int]
    """Connections per server port (as a string key), most first; at most 32 ports."""
    other_ports: int
    """Connections to ports beyond those."""
    connections_without_payload: NotRequired[SilentEntry]
    """Mail-port connections that carried no payload (not sessions); absent when none."""
    connections_without_smtp: NotRequired[UnspokenEntry]
    """Mail-port connections whose payload held no SMTP line (not sessions); absent when none."""


class SilentEntry(TypedDict):
    """Mail-port connections without a payload byte either way (DOMAIN.md §4, "traffic"): a
    SYN flood, a port scan or refused attempts, summarised in one entry instead of a session
    each."""

    count: int
    unanswered: int
    """Of those, connections of which the capture holds no packet from the server."""
    reset: int
    """Of those, connections ended by a reset."""
    clients: int
    """Distinct client addresses (at most 10,000 are counted)."""
    more_clients: bool
    """More distinct clients than `clients` were seen."""
    first_ts: float | None
    last_ts: float | None


class UnspokenEntry(SilentEntry):
    """Mail-port connections whose server sent nothing and whose client sent bytes without
    ending one line (DOMAIN.md §4, "traffic"): a flood of fragments, summarised like
    `SilentEntry`."""

    client_bytes: int
    """Payload bytes the clients sent, summed."""


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
    confidence_note: NotRequired[str]
    """Why the confidence is lower than the evidence alone would give (an ambiguous or
    uncorroborated pairing); absent when it is not lowered."""


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
    margin: float
    """Score less the best alternative either session had (DOMAIN.md: pairing)."""
    ambiguous: bool
    corroborated: bool
    identical: bool
    divergences: list[dict[str, Any]]
    end_mismatches: list[dict[str, Any]]
    uncovered: list[dict[str, Any]]
    """Ranges one capture does not hold, left out of the comparison (DOMAIN.md: coverage)."""


class VerdictEntry(TypedDict):
    """The overall verdict, said plainly (DOMAIN.md §4, "verdict")."""

    kind: str
    """'findings', 'clean', 'unproven_overlap', 'no_overlap' or 'no_smtp' (no SMTP session in
    any capture: nothing to judge)."""
    two_sided: bool
    headline: str
    reasons: list[str]
    """Why the captures do not overlap, or why their overlap is not proven; else empty."""
    confirmed: int
    """Findings that are `confirmed`."""
    sessions_cut_by_limits: NotRequired[int]
    """Sessions whose entry carries `dropped` (a memory cap left something out); absent when
    none."""


class OrientationEntry(TypedDict):
    """Which capture is which side, as given and as analysed (DOMAIN.md §4, "orientation")."""

    given: dict[str, list[str]]
    """{"client_side": [paths], "server_side": [paths]} as the user gave them."""
    used: dict[str, list[str]]
    """The same, as analysed."""
    swapped: bool
    """The sides were exchanged for the analysis."""
    kept: bool
    """The given orientation was forced (`--keep-orientation`)."""
    judgment: str
    """'given', 'swapped', 'conflicting', 'undecided' or 'not_judged' (no proven overlap)."""
    confidence: str
    """'high', 'medium' or 'low'."""
    evidence: list[dict[str, Any]]
    """Per signal: {"signal", "says", "for_given", "for_swapped", "detail"}."""


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
    verdict: NotRequired[VerdictEntry]
    """Absent from reports written before it existed."""
    orientation: NotRequired[OrientationEntry | None]
    """None for one capture; absent from reports written before it existed."""
