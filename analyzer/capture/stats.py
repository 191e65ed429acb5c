"""Counters and anomalies of one pass over a capture, kept in bounded memory.

`CaptureStats` is filled while `Capture.segments()` runs and is final once the iterator is
exhausted. It holds the first `MAX_KEPT_ANOMALIES` anomalies in full and a count per kind of all
of them, so a hostile file with millions of odd packets cannot exhaust memory.
This module only counts; it does not read files or decode packets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer._common import Anomaly, FrameRef
from analyzer.capture.segment import CaptureAnomaly

MAX_KEPT_ANOMALIES = 1000
"""Anomalies kept in full per pass; later ones are only counted in `anomaly_counts`."""


@dataclass(slots=True)
class CaptureStats:
    """What one pass over a capture saw, below and at the TCP layer.

    Every record counts once in `packets` and, unless it is an IP fragment still waiting for its
    siblings, once in exactly one of `tcp_segments`, `non_tcp`, `non_ip`,
    `unknown_link_packets` or `malformed`.
    """

    packets: int = 0
    """Records read, in every file (the sum of the files' last frame numbers)."""
    tcp_segments: int = 0
    """TCP segments handed on (a reassembled IP datagram counts once)."""
    non_tcp: int = 0
    """IP packets carrying something other than TCP (UDP, ICMP, ESP, ...)."""
    non_ip: int = 0
    """Frames of a known link type that carry no IP (ARP, LLC, LLDP, ...)."""
    ip_fragments: int = 0
    """Records that were IP fragments (any protocol)."""
    fragments_reassembled: int = 0
    """TCP datagrams rebuilt from fragments."""
    truncated_records: int = 0
    """Files that ended in the middle of a record or block."""
    snaplen_cut: int = 0
    """Records captured shorter than they were on the wire."""
    unknown_link_packets: int = 0
    """Records of a link type this layer does not decode."""
    malformed: int = 0
    """Records whose headers are inconsistent (bad lengths) or cut before the TCP header."""
    first_ts: float | None = None
    """Earliest record timestamp seen, seconds since the epoch."""
    last_ts: float | None = None
    """Latest record timestamp seen."""
    anomalies: list[Anomaly] = field(default_factory=list)
    """The first `MAX_KEPT_ANOMALIES` anomalies, in the order they were seen."""
    anomaly_counts: dict[str, int] = field(default_factory=dict)
    """Number of anomalies of each kind (by `CaptureAnomaly` value), including those not kept."""

    def add_anomaly(
        self,
        kind: CaptureAnomaly,
        detail: str,
        frames: tuple[FrameRef, ...] = (),
        ts: float | None = None,
    ) -> None:
        """Count an anomaly and keep it while fewer than `MAX_KEPT_ANOMALIES` are kept."""
        self.anomaly_counts[kind.value] = self.anomaly_counts.get(kind.value, 0) + 1
        if len(self.anomalies) < MAX_KEPT_ANOMALIES:
            self.anomalies.append(Anomaly(kind, detail, frames, ts))

    def note_time_span(self, first: float | None, last: float | None) -> None:
        """Widen `first_ts`/`last_ts` to cover a file's earliest and latest timestamps."""
        if first is not None and (self.first_ts is None or first < self.first_ts):
            self.first_ts = first
        if last is not None and (self.last_ts is None or last > self.last_ts):
            self.last_ts = last
