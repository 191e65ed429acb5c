"""Which bytes of a paired connection both captures hold, and why the rest is not compared.

A capture that started after the connection did (no SYN, its first bytes mid-dialogue), one that
stopped while the connection was still going, one cut by its snaplen or one that lost a segment
holds only part of a stream. Bytes that one capture does not hold prove nothing about the box in
between: they are named here as capture coverage and left out of the comparison, never turned
into a removal, an insertion or an end that "did not cross".

This module finds the common part of one direction (`held_range`) and names what lies outside
it (`Uncovered`). It does not compare the bytes (`align`) and judges nothing (`detect`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from analyzer._common import CaptureSide, Direction
from analyzer.flows.record import StreamRecord

ANCHOR_BYTES: Final = 48
"""Bytes of the late capture's first held data looked up in the other copy to line the two up
(sequence numbers cannot: a NAT box or ISN randomisation gives each side its own)."""
ANCHOR_TRIES: Final = (0, 256, 1024, 4096)
"""Where in the late copy anchors are taken: a box may have rewritten the first one."""
EARLY_STOP_MARGIN_S: Final = 3.0
"""A capture that ended less than this after bytes crossed on the other side cannot show that
they never arrived: the first retransmission timeout alone is 1 s (RFC 6298 §2.4, §5.5)."""


class Reason(enum.StrEnum):
    """Why a capture does not hold part of a stream, as report.json spells it."""

    LATE_START = "late_start"
    """The capture began after these bytes crossed (the connection was already open)."""
    EARLY_STOP = "early_stop"
    """The capture ended while the connection was still going."""
    NOT_CAPTURED = "not_captured"
    """A hole inside the stream: a segment lost by the capture or cut by its snaplen."""
    UNALIGNED = "unaligned"
    """A capture began mid-stream and its first bytes were not found in the other copy: the
    direction is not compared at all."""


@dataclass(frozen=True, slots=True)
class Uncovered:
    """A range of one direction that one capture does not hold."""

    direction: Direction
    capture: CaptureSide
    """The capture that lacks the bytes (report.json spells it `client_side` or `server_side`)."""
    reason: Reason
    offset: int
    """Offset in the other capture's copy of the stream (its stream offsets)."""
    length: int


@dataclass(frozen=True, slots=True)
class CaptureSpans:
    """First and last packet times of each capture, and how their clocks differ."""

    client_side: tuple[float, float] | None
    server_side: tuple[float, float] | None
    offset_s: float
    """Server-side clock minus client-side clock."""

    def last_ts(self, capture: CaptureSide) -> float | None:
        """When `capture` ended, on the client side's clock."""
        span = self.client_side if capture is CaptureSide.CLIENT_SIDE else self.server_side
        if span is None:
            return None
        return span[1] - (self.offset_s if capture is CaptureSide.SERVER_SIDE else 0.0)


@dataclass(frozen=True, slots=True)
class HeldRange:
    """The part of one direction both copies hold: indexes into each record's `data`."""

    sent_start: int
    received_start: int
    sent_end: int
    received_end: int
    uncovered: tuple[Uncovered, ...]

    @property
    def compared(self) -> bool:
        return self.sent_end > self.sent_start or self.received_end > self.received_start


def _unique_find(haystack: bytes, needle: bytes) -> int | None:
    at = haystack.find(needle)
    if at < 0 or haystack.find(needle, at + 1) >= 0:
        return None
    return at


def late_shift(early: bytes, late: bytes) -> int | None:
    """Where the late copy's data begins in the early copy, by its first distinctive bytes."""
    for start in ANCHOR_TRIES:
        anchor = late[start : start + ANCHOR_BYTES]
        if len(anchor) < min(ANCHOR_BYTES, len(late)) or not anchor:
            break
        at = _unique_find(early, anchor)
        if at is not None and at >= start:
            return at - start
    return None


def _ts_at(record: StreamRecord, index: int) -> float | None:
    return record.frame_at(record.base + index)[1]


def held_range(
    direction: Direction,
    sent: StreamRecord,
    received: StreamRecord,
    sent_midstream: bool,
    received_midstream: bool,
    spans: CaptureSpans | None,
    open_at_end: tuple[bool, bool] = (False, False),
) -> HeldRange:
    """The common part of one direction's two copies, and what each capture lacks.

    `open_at_end` says, for the sent and the received copy's capture, that it saw neither FIN
    nor RST of the connection: only such a capture can have stopped before the connection did.
    """
    sent_side = CaptureSide.sending(direction)
    received_side = sent_side.other
    a, b = sent.data, received.data
    a0 = b0 = 0
    uncovered: list[Uncovered] = []
    if sent_midstream != received_midstream or (sent_midstream and received_midstream):
        shift_in_sent = late_shift(bytes(a), bytes(b)) if received_midstream else None
        shift_in_received = late_shift(bytes(b), bytes(a)) if sent_midstream else None
        if shift_in_sent is not None and (shift_in_received is None or shift_in_sent > 0):
            a0 = shift_in_sent
            if a0:
                uncovered.append(
                    Uncovered(direction, received_side, Reason.LATE_START, sent.base, a0)
                )
        elif shift_in_received is not None:
            b0 = shift_in_received
            if b0:
                uncovered.append(
                    Uncovered(direction, sent_side, Reason.LATE_START, received.base, b0)
                )
        elif a and b:
            uncovered.append(
                Uncovered(direction, received_side, Reason.UNALIGNED, sent.base, len(a))
            )
            return HeldRange(0, 0, 0, 0, tuple(uncovered))
    a1, b1 = len(a), len(b)
    if sent.truncated or received.truncated:
        # Past the recording cap only lengths are known: compare what both sides kept.
        common = min(a1 - a0, b1 - b0)
        a1, b1 = a0 + common, b0 + common
    elif spans is not None and a1 - a0 != b1 - b0:
        a1, b1 = _early_stop(direction, sent, received, a0, b0, spans, open_at_end, uncovered)
    for record, side in ((sent, sent_side), (received, received_side)):
        for offset, length in record.gaps:
            uncovered.append(Uncovered(direction, side, Reason.NOT_CAPTURED, offset, length))
    return HeldRange(a0, b0, a1, b1, tuple(uncovered))


def _early_stop(
    direction: Direction,
    sent: StreamRecord,
    received: StreamRecord,
    a0: int,
    b0: int,
    spans: CaptureSpans,
    open_at_end: tuple[bool, bool],
    uncovered: list[Uncovered],
) -> tuple[int, int]:
    """Cut the longer copy where the shorter capture ended, if it ended too soon to tell."""
    sent_side = CaptureSide.sending(direction)
    received_side = sent_side.other
    a1, b1 = len(sent.data), len(received.data)
    common = min(a1 - a0, b1 - b0)
    if a1 - a0 > b1 - b0:
        longer, longer_end, short_side, short_open = (
            sent,
            a0 + common,
            received_side,
            open_at_end[1],
        )
    else:
        longer, longer_end, short_side, short_open = (
            received,
            b0 + common,
            sent_side,
            open_at_end[0],
        )
    if not short_open:
        return a1, b1  # the shorter capture saw the connection end: its copy is complete
    crossed = _ts_at(longer, longer_end)
    ended = spans.last_ts(short_side)
    longer_side = sent_side if longer is sent else received_side
    if crossed is not None and longer_side is CaptureSide.SERVER_SIDE:
        crossed -= spans.offset_s
    if crossed is None or ended is None or ended >= crossed + EARLY_STOP_MARGIN_S:
        return a1, b1
    uncovered.append(
        Uncovered(
            direction,
            short_side,
            Reason.EARLY_STOP,
            longer.base + longer_end,
            len(longer.data) - longer_end,
        )
    )
    return a0 + common, b0 + common


def end_covered(
    spans: CaptureSpans | None, capture: CaptureSide, ts: float, ts_side: CaptureSide
) -> bool:
    """Whether `capture` was still running when a segment was seen at `ts` in `ts_side`."""
    if spans is None:
        return True
    ended = spans.last_ts(capture)
    if ended is None:
        return True
    on_client_clock = ts - (spans.offset_s if ts_side is CaptureSide.SERVER_SIDE else 0.0)
    return ended >= on_client_clock + EARLY_STOP_MARGIN_S
