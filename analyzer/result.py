"""What an analysis found: the captures read (`CaptureInfo`) and everything `analyze` returns
(`Analysis`: sessions, pairs, alignments, findings, the clock offset, how the sides were judged).

Plain records, made by `pipeline` and read by `report`, `frames` and the notebook display. This
module computes nothing; `Analysis._repr_html_` hands itself to `analyzer.report.notebook`,
the one import from a layer above (the notebook display hook).
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer._common import CaptureSide
from analyzer.capture import CaptureFile, CaptureStats
from analyzer.correlate import ClockEstimate, PairAlignment, SessionPair
from analyzer.correlate.orientation import Orientation
from analyzer.correlate.overlap import Overlap
from analyzer.detect import Finding
from analyzer.dispatch import PipelineStats
from analyzer.session.model import SmtpSession


@dataclass(slots=True)
class CaptureInfo:
    """One analysed capture (a file or a rotation set) and what reading it found."""

    id: str
    role: CaptureSide
    paths: tuple[str, ...]
    files: tuple[CaptureFile, ...]
    stats: CaptureStats
    pipeline: PipelineStats

    @property
    def first_ts(self) -> float | None:
        return self.stats.first_ts

    @property
    def last_ts(self) -> float | None:
        return self.stats.last_ts


@dataclass(slots=True)
class Analysis:
    """Everything `analyze` found: sessions, pairs, alignments, findings, clock offset."""

    captures: list[CaptureInfo]
    sessions: list[SmtpSession]
    pairs: list[SessionPair]
    alignments: list[PairAlignment]
    findings: list[Finding]
    clock: ClockEstimate | None
    clock_given: bool = False
    overlap: Overlap | None = None
    """Two captures: whether they are shown to hold the same connections."""
    orientation: Orientation | None = None
    """Two captures: which side is which, judged from the captures (None when they are not
    shown to overlap)."""
    sides_swapped: bool = False
    """The captures were given the wrong way round and were analysed the right way round:
    `captures[0]` is the file given as the server side."""
    keep_orientation: bool = False
    """The sides were analysed as given, whatever the captures show."""

    @property
    def two_sided(self) -> bool:
        return self.clock is not None

    def peer_of(self, session_id: str) -> str | None:
        for pair in self.pairs:
            if pair.client_side.id == session_id:
                return pair.server_side.id
            if pair.server_side.id == session_id:
                return pair.client_side.id
        return None

    def session(self, session_id: str) -> SmtpSession | None:
        return next((s for s in self.sessions if s.id == session_id), None)

    def _repr_html_(self) -> str:
        from analyzer.report.notebook import analysis_html

        return analysis_html(self)
