"""Values shared by every layer: which way bytes travel, which side of the firewall a capture
was taken on, where a byte was seen (`FrameRef`, from `_frame`), and anomalies.

This module holds only small immutable types. It does no parsing and no I/O.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from dataclasses import dataclass

from analyzer._frame import FrameRef as FrameRef


class Direction(enum.StrEnum):
    """Which way a byte travelled, relative to the TCP roles (client opens, server accepts)."""

    CLIENT_TO_SERVER = "client_to_server"
    SERVER_TO_CLIENT = "server_to_client"

    @property
    def reverse(self) -> Direction:
        if self is Direction.CLIENT_TO_SERVER:
            return Direction.SERVER_TO_CLIENT
        return Direction.CLIENT_TO_SERVER


class CaptureSide(enum.StrEnum):
    """Where a capture was taken, relative to the firewall: its value is the `role` of
    report.json's `captures` entries."""

    CLIENT_SIDE = "client-side"
    """Between the client and the firewall (outside)."""
    SERVER_SIDE = "server-side"
    """Between the firewall and the server (inside)."""
    SINGLE = "single"
    """One capture, not one of a pair."""

    @property
    def capture_id(self) -> str:
        """The capture's id in session ids (`client#3`) and evidence."""
        return _CAPTURE_IDS[self]

    @property
    def key(self) -> str:
        """The side as a report.json key or value (`pairs[].client_side`, `seen_in`)."""
        return self.name.lower()

    @property
    def other(self) -> CaptureSide:
        """The other side of the firewall (a single capture has none: itself)."""
        if self is CaptureSide.CLIENT_SIDE:
            return CaptureSide.SERVER_SIDE
        if self is CaptureSide.SERVER_SIDE:
            return CaptureSide.CLIENT_SIDE
        return self

    @staticmethod
    def sending(direction: Direction) -> CaptureSide:
        """The capture on the side where bytes travelling `direction` are sent."""
        if direction is Direction.CLIENT_TO_SERVER:
            return CaptureSide.CLIENT_SIDE
        return CaptureSide.SERVER_SIDE


_CAPTURE_IDS: dict[CaptureSide, str] = {
    CaptureSide.CLIENT_SIDE: "client",
    CaptureSide.SERVER_SIDE: "server",
    CaptureSide.SINGLE: "single",
}


class FrameMarks:
    """Where each captured segment of a run of in-order stream bytes begins.

    A run is the bytes of several consecutive segments handed on in one piece; `offsets` holds
    the stream offset of each segment's first byte (ascending, the first one the run's own
    offset), `frames` and `times` that segment's frame and capture time. The lists are never
    changed once the run is handed on.
    """

    __slots__ = ("frames", "offsets", "times")

    def __init__(self, offsets: list[int], frames: list[FrameRef], times: list[float]) -> None:
        self.offsets = offsets
        self.frames = frames
        self.times = times

    def index(self, offset: int) -> int:
        """Which segment holds the byte at stream offset `offset` (0 before the first)."""
        i = bisect_right(self.offsets, offset) - 1
        return i if i > 0 else 0

    def locate(self, offset: int) -> tuple[FrameRef, float]:
        """Frame and capture time of the segment holding the byte at stream offset `offset`."""
        i = self.index(offset)
        return self.frames[i], self.times[i]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrameMarks):
            return NotImplemented
        return (self.offsets, self.frames, self.times) == (
            other.offsets,
            other.frames,
            other.times,
        )

    def __hash__(self) -> int:
        return hash((tuple(self.offsets), tuple(self.frames)))

    def __repr__(self) -> str:
        return f"FrameMarks({self.offsets!r}, {self.frames!r}, {self.times!r})"


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something odd seen on the wire or in a file: an observation, never an error.

    `kind` is a member of a layer's own `StrEnum` (capture, flows, smtp); its value is a stable
    snake_case name that appears in JSON output.
    """

    kind: enum.StrEnum
    detail: str
    frames: tuple[FrameRef, ...] = ()
    ts: float | None = None
    direction: Direction | None = None
