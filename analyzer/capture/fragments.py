"""IP fragment reassembly (IPv4 and IPv6) in bounded memory.

Fragments are collected per datagram key until the pieces cover the datagram from offset 0 to
the end announced by the last fragment; then the payload is handed back once. Where fragments
overlap, the bytes that arrived first win. Memory is bounded by the number of datagrams being
rebuilt, their bytes, and a timeout in capture time; a datagram given up for any of these
reasons, or still open when the capture ends, becomes a FRAGMENT_INCOMPLETE anomaly.
Knows nothing about link layers or TCP; the caller parses headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from analyzer._common import FrameRef
from analyzer.capture.segment import CaptureAnomaly
from analyzer.capture.stats import CaptureStats

MAX_DATAGRAM_LEN: Final = 65535
"""Largest IP payload fragments may build: 16-bit length fields (RFC 791 §3.1, RFC 8200 §4.5)."""
FRAGMENT_TIMEOUT: Final = 60.0
"""Seconds of capture time after the first fragment before giving up (RFC 8200 §4.5: 60 s)."""
MAX_PENDING_DATAGRAMS = 1024
"""Datagrams rebuilt at once; the oldest is given up to make room."""
MAX_PENDING_BYTES = 32 * 1024 * 1024
"""Bytes held for datagrams being rebuilt, counting `PER_FRAGMENT_OVERHEAD` per fragment."""
PER_FRAGMENT_OVERHEAD: Final = 64
MAX_FRAGMENTS_PER_DATAGRAM: Final = 1024
"""More pieces than this for one datagram is taken as an attack; the datagram is given up."""
MAX_FRAMES_CITED: Final = 16
"""Frames listed in one anomaly; the count is in its detail."""

FragmentKey = tuple[int, bytes, bytes, int]
"""(IP version, source address, destination address, identification)."""


@dataclass(slots=True)
class _Pending:
    first_ts: float
    parts: list[tuple[int, bytes]] = field(default_factory=list)
    """(offset, data) in arrival order."""
    frames: list[FrameRef] = field(default_factory=list)
    received: int = 0
    """Data bytes received, overlaps counted twice."""
    total: int | None = None
    """Payload length, known once the last fragment (More Fragments clear) arrived."""
    protocol: int | None = None
    """Protocol / next header carried by the fragment at offset 0."""
    cost: int = 0


@dataclass(frozen=True, slots=True)
class Reassembled:
    """A datagram rebuilt from all its fragments."""

    payload: bytes
    """The IP payload (for IPv6: the fragmentable part, starting with `protocol`'s header)."""
    protocol: int
    frames: tuple[FrameRef, ...]
    """Frames of the fragments, in arrival order; the last one completed the datagram."""


class FragmentReassembler:
    """Collects fragments by key and returns each datagram once it is complete."""

    __slots__ = ("_bytes", "_pending", "_stats")

    def __init__(self, stats: CaptureStats) -> None:
        self._stats = stats
        self._pending: dict[FragmentKey, _Pending] = {}
        self._bytes = 0

    def add(
        self,
        key: FragmentKey,
        offset: int,
        more: bool,
        data: bytes,
        protocol: int,
        ts: float,
        frame: FrameRef,
    ) -> Reassembled | None:
        """Add one fragment; return the datagram if this fragment completed it.

        `offset` is in bytes; `protocol` is the protocol / next header this fragment announces
        (only the one of the fragment at offset 0 is used).
        """
        self._expire(ts)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending(ts)
        pending.parts.append((offset, data))
        pending.frames.append(frame)
        pending.received += len(data)
        cost = len(data) + PER_FRAGMENT_OVERHEAD
        pending.cost += cost
        self._bytes += cost
        if offset == 0:
            pending.protocol = protocol
        if not more:
            end = offset + len(data)
            if pending.total is not None and pending.total != end:
                self._give_up(key, "fragments disagree on the datagram length")
                return None
            pending.total = end
        if len(pending.parts) > MAX_FRAGMENTS_PER_DATAGRAM:
            self._give_up(key, f"more than {MAX_FRAGMENTS_PER_DATAGRAM} fragments")
            return None
        done = self._complete(key, pending)
        if done is None:
            self._enforce_limits()
        return done

    def flush(self) -> None:
        """Give up every datagram still open (end of capture)."""
        for key in list(self._pending):
            self._give_up(key, "capture ended before all fragments were seen")

    def _complete(self, key: FragmentKey, pending: _Pending) -> Reassembled | None:
        total = pending.total
        if total is None or pending.protocol is None or pending.received < total:
            return None
        covered = 0
        for offset, data in sorted(pending.parts, key=lambda part: part[0]):
            if offset > covered:
                return None
            covered = max(covered, offset + len(data))
        if covered > total:
            self._give_up(key, "a fragment reaches past the end of the datagram")
            return None
        out = bytearray(total)
        for offset, data in reversed(pending.parts):
            out[offset : offset + len(data)] = data
        del self._pending[key]
        self._bytes -= pending.cost
        return Reassembled(bytes(out), pending.protocol, tuple(pending.frames))

    def _expire(self, now: float) -> None:
        while self._pending:
            key = next(iter(self._pending))
            if now - self._pending[key].first_ts <= FRAGMENT_TIMEOUT:
                return
            self._give_up(key, f"no complete set of fragments within {FRAGMENT_TIMEOUT:g} s")

    def _enforce_limits(self) -> None:
        while self._pending and (
            len(self._pending) > MAX_PENDING_DATAGRAMS or self._bytes > MAX_PENDING_BYTES
        ):
            self._give_up(next(iter(self._pending)), "too many fragments held at once")

    def _give_up(self, key: FragmentKey, why: str) -> None:
        pending = self._pending.pop(key)
        self._bytes -= pending.cost
        frames = tuple(pending.frames[:MAX_FRAMES_CITED])
        self._stats.add_anomaly(
            CaptureAnomaly.FRAGMENT_INCOMPLETE,
            f"IPv{key[0]} datagram id {key[3]}: {len(pending.frames)} fragment(s) dropped: {why}",
            frames,
            pending.first_ts,
        )
