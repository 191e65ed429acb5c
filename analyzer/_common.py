"""Values shared by every layer: which way bytes travel, where a byte was seen, and anomalies.

This module holds only small immutable types. It does no parsing and no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Direction(enum.StrEnum):
    """Which way a byte travelled, relative to the TCP roles (client opens, server accepts)."""

    CLIENT_TO_SERVER = "client_to_server"
    SERVER_TO_CLIENT = "server_to_client"

    @property
    def reverse(self) -> Direction:
        if self is Direction.CLIENT_TO_SERVER:
            return Direction.SERVER_TO_CLIENT
        return Direction.CLIENT_TO_SERVER


@dataclass(frozen=True, slots=True, order=True)
class FrameRef:
    """A packet a user can open in Wireshark.

    `frame_no` is 1-based within file number `file_no` (0-based, in time order) of the capture
    `capture_id`, exactly as Wireshark numbers frames when it opens that file.
    """

    capture_id: str
    frame_no: int
    file_no: int = 0

    def __str__(self) -> str:
        if self.file_no:
            return f"{self.capture_id}[{self.file_no}]#{self.frame_no}"
        return f"{self.capture_id}#{self.frame_no}"


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
