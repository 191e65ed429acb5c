"""Line up the two captures' copies of one connection, byte by byte, and name each difference.

For each direction the *sent* copy is the one captured nearer its sender (client→server: the
client-side capture; server→client: the server-side capture) and the *received* copy is the
other. A length-preserving middlebox leaves streams of equal length that differ only where it
overwrote bytes; a proxy that deletes lines or a box that drops the rest of a connection leaves
them of different lengths. FIN/RST segments are compared too: a reset that its apparent sender
never sent came from the box in between. Only the part of each direction that both captures
hold is compared (`coverage`): what one capture lacks is listed as uncovered, not as a
difference. AUTH credentials are blanked with `*` in both copies (`smtp.secrets`), so a
credential the box changed without changing its length is found by the two sessions' keyed
digests of it instead (`credential` divergences, which carry no bytes). Nothing here decides
severity or cause (see `detect`).
"""

from __future__ import annotations

import difflib
import enum
from dataclasses import dataclass

from analyzer._common import CaptureSide, Direction, FrameRef
from analyzer.flows.events import EndKind, StreamEnd
from analyzer.flows.record import StreamRecord
from analyzer.smtp.secrets import CredentialDigest

from .coverage import CaptureSpans, HeldRange, Uncovered, end_covered, held_range
from .match import SessionPair

CHUNK = 4096
"""Bytes compared at once when looking for the first difference."""
MERGE_WITHIN = 16
"""Differences this close on one line are one divergence (a masked banner keeps its spaces)."""
EXCERPT = 160
"""Bytes of each version kept in a divergence."""
MAX_DIVERGENCES = 200
"""Per direction; a stream that differs everywhere is not worth listing byte by byte."""
MAX_LINE_DIFF_BYTES = 2 << 20
"""Different-length regions larger than this are reported as one replacement, not line-diffed."""


class DivergenceKind(enum.StrEnum):
    OVERWRITE = "overwrite"
    """Same length, other bytes (in-place masking)."""
    REMOVAL = "removal"
    """Bytes the sender sent that never arrived, the stream continuing after them."""
    INSERTION = "insertion"
    """Bytes that arrived but were never sent."""
    REPLACEMENT = "replacement"
    """Bytes replaced by a different number of other bytes."""
    TRUNCATION = "truncation"
    """The received copy stops early: everything after never crossed."""


@dataclass(frozen=True, slots=True)
class Divergence:
    direction: Direction
    kind: DivergenceKind
    sent_offset: int
    received_offset: int
    sent: bytes
    """The sent version (capped at `EXCERPT`)."""
    received: bytes
    sent_length: int
    received_length: int
    sent_frame: FrameRef | None
    sent_ts: float | None
    received_frame: FrameRef | None
    received_ts: float | None
    credential: bool = False
    """An AUTH credential, blanked alike in both copies, whose keyed digests differ: the box
    changed it. `sent` and `received` are then empty: its bytes are never shown."""


@dataclass(frozen=True, slots=True)
class EndMismatch:
    """A FIN or RST seen on one side whose apparent sender never sent it on the other side."""

    direction: Direction
    """Direction of the segment as it appears (SERVER_TO_CLIENT: it claims the server sent it)."""
    kind: EndKind
    seen_in: CaptureSide
    """'client_side' or 'server_side': the capture in which it appears."""
    end: StreamEnd
    origin_differs: bool
    """Its TTL, IP-ID or MAC differ from the apparent sender's other packets in that capture."""


@dataclass(frozen=True, slots=True)
class PairAlignment:
    pair: SessionPair
    divergences: tuple[Divergence, ...]
    end_mismatches: tuple[EndMismatch, ...]
    lengths: dict[Direction, tuple[int, int]]
    """(sent length, received length) per direction."""
    uncovered: tuple[Uncovered, ...] = ()
    """Ranges one capture does not hold: left out of the comparison."""

    @property
    def identical(self) -> bool:
        return not self.divergences and not self.end_mismatches


def _records(pair: SessionPair, direction: Direction) -> tuple[StreamRecord, StreamRecord] | None:
    client_streams = pair.client_side.streams
    server_streams = pair.server_side.streams
    if client_streams is None or server_streams is None:
        return None
    if direction is Direction.CLIENT_TO_SERVER:
        return client_streams.of(direction), server_streams.of(direction)
    return server_streams.of(direction), client_streams.of(direction)


def _diff_runs(a: bytes, b: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) runs where a and b differ, merged within a line."""
    runs: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        stop = min(end, pos + CHUNK)
        if a[pos:stop] == b[pos:stop]:
            pos = stop
            continue
        for i in range(pos, stop):
            if a[i] != b[i]:
                if runs and i - runs[-1][1] <= MERGE_WITHIN and b"\n" not in a[runs[-1][1] : i]:
                    runs[-1] = (runs[-1][0], i + 1)
                else:
                    if len(runs) >= MAX_DIVERGENCES:
                        return runs
                    runs.append((i, i + 1))
        pos = stop
    return runs


def _line_start(data: bytes, offset: int) -> int:
    return data.rfind(b"\n", 0, offset) + 1


class _Aligner:
    """Builds the divergences of one direction."""

    def __init__(
        self, direction: Direction, sent: StreamRecord, received: StreamRecord, held: HeldRange
    ) -> None:
        self.direction = direction
        self.sent = sent
        self.received = received
        self.a = bytes(sent.data[held.sent_start : held.sent_end])
        self.b = bytes(received.data[held.received_start : held.received_end])
        self.a_base = sent.base + held.sent_start
        self.b_base = received.base + held.received_start
        self.out: list[Divergence] = []
        self.lined_up: list[tuple[int, int, int]] = []
        """(start, end, shift): the bytes a[start:end] were compared with b[start + shift:end +
        shift], byte for byte (equal there, or overwritten in place)."""

    def add(
        self,
        kind: DivergenceKind,
        a0: int,
        a1: int,
        b0: int,
        b1: int,
        *,
        credential: bool = False,
    ) -> None:
        if len(self.out) >= MAX_DIVERGENCES:
            return
        if self.sent.in_gap(self.a_base + a0) or self.received.in_gap(self.b_base + b0):
            return  # bytes never captured on one side: not evidence of anything
        sent_frame, sent_ts = self.sent.frame_at(self.a_base + a0)
        recv_frame, recv_ts = self.received.frame_at(self.b_base + min(b0, max(0, len(self.b) - 1)))
        self.out.append(
            Divergence(
                direction=self.direction,
                kind=kind,
                sent_offset=self.a_base + a0,
                received_offset=self.b_base + b0,
                sent=b"" if credential else self.a[a0 : min(a1, a0 + EXCERPT)],
                received=b"" if credential else self.b[b0 : min(b1, b0 + EXCERPT)],
                sent_length=a1 - a0,
                received_length=b1 - b0,
                sent_frame=sent_frame,
                sent_ts=sent_ts,
                received_frame=recv_frame,
                received_ts=recv_ts,
                credential=credential,
            )
        )

    def overwrites(self, a0: int, b0: int, length: int) -> None:
        """Equal-length regions: every differing run is an overwrite."""
        shift = b0 - a0
        if shift == 0:
            runs = _diff_runs(self.a, self.b, a0, a0 + length)
        else:
            runs = [
                (s + a0, e + a0)
                for s, e in _diff_runs(
                    self.a[a0 : a0 + length], self.b[b0 : b0 + length], 0, length
                )
            ]
        for s, e in runs:
            for hs, he in self._held(s, e, shift):
                self.add(DivergenceKind.OVERWRITE, hs, he, hs + shift, he + shift)

    def _held(self, start: int, end: int, shift: int) -> list[tuple[int, int]]:
        """[start, end) without the bytes either capture lacks (zero-filled holes in `data`)."""
        if not self.sent.gaps and not self.received.gaps:
            return [(start, end)]
        out: list[tuple[int, int]] = []
        run_start: int | None = None
        for i in range(start, end):
            lacking = self.sent.in_gap(self.a_base + i) or self.received.in_gap(
                self.b_base + i + shift
            )
            if lacking and run_start is not None:
                out.append((run_start, i))
                run_start = None
            elif not lacking and run_start is None:
                run_start = i
        if run_start is not None:
            out.append((run_start, end))
        return out

    def run(self) -> list[Divergence]:
        a, b = self.a, self.b
        if len(a) == len(b):
            self.lined_up.append((0, len(a), 0))
            if a != b:
                self.overwrites(0, 0, len(a))
            return self.out
        prefix = _common_prefix(a, b)
        if prefix == len(b):
            self.lined_up.append((0, prefix, 0))
            self.add(DivergenceKind.TRUNCATION, prefix, len(a), prefix, prefix)
            return self.out
        if prefix == len(a):
            self.lined_up.append((0, prefix, 0))
            self.add(DivergenceKind.INSERTION, prefix, prefix, prefix, len(b))
            return self.out
        start = _line_start(a, prefix)
        self.lined_up.append((0, start, 0))
        self.lines(start, start)
        return self.out

    def credentials(
        self, sent: tuple[CredentialDigest, ...], received: tuple[CredentialDigest, ...]
    ) -> None:
        """Credentials that lie where the two copies were compared byte for byte, of one length
        on both sides, and whose digests differ: the `*` that blank them hide a change.

        A credential of another length on the other side is already a difference of the
        blanked bytes, found above; one the other capture does not hold whole has no digest and
        is compared with nothing."""
        if not sent or not received:
            return
        theirs = {c.start: c for c in received}
        for mine in sent:
            a0, a1 = mine.start - self.a_base, mine.end - self.a_base
            shift = self._shift_of(a0, a1)
            if shift is None:
                continue
            b0 = a0 + shift
            other = theirs.get(self.b_base + b0)
            if other is None or other.length != mine.length or not mine.differs_from(other):
                continue
            if any(self._overlaps(d, mine) for d in self.out):
                continue  # a difference already found there covers it
            self.add(DivergenceKind.OVERWRITE, a0, a1, b0, b0 + mine.length, credential=True)

    def _shift_of(self, a0: int, a1: int) -> int | None:
        """How far the received copy of a[a0:a1] lies from it, when it was compared in place."""
        if a0 < 0 or a1 > len(self.a):
            return None
        for start, end, shift in self.lined_up:
            if start <= a0 and a1 <= end and a0 + shift >= 0 and a1 + shift <= len(self.b):
                return shift
        return None

    @staticmethod
    def _overlaps(d: Divergence, credential: CredentialDigest) -> bool:
        return d.sent_offset < credential.end and credential.start < d.sent_offset + max(
            d.sent_length, 1
        )

    def lines(self, a0: int, b0: int) -> None:
        """Different lengths after a common prefix: line-level alignment of the rest."""
        a_rest, b_rest = self.a[a0:], self.b[b0:]
        if len(a_rest) + len(b_rest) > MAX_LINE_DIFF_BYTES:
            self.add(DivergenceKind.REPLACEMENT, a0, len(self.a), b0, len(self.b))
            return
        a_lines = a_rest.splitlines(keepends=True)
        b_lines = b_rest.splitlines(keepends=True)
        a_pos = _positions(a_lines, a0)
        b_pos = _positions(b_lines, b0)
        matcher = difflib.SequenceMatcher(None, a_lines, b_lines, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            s0, s1, r0, r1 = a_pos[i1], a_pos[i2], b_pos[j1], b_pos[j2]
            if tag == "equal":
                self.lined_up.append((s0, s1, r0 - s0))
                continue
            if tag == "delete":
                kind = DivergenceKind.TRUNCATION if j1 == len(b_lines) else DivergenceKind.REMOVAL
                self.add(kind, s0, s1, r0, r1)
            elif tag == "insert":
                self.add(DivergenceKind.INSERTION, s0, s1, r0, r1)
            elif s1 - s0 == r1 - r0:
                self.lined_up.append((s0, s1, r0 - s0))
                self.overwrites(s0, r0, s1 - s0)
            elif j2 == len(b_lines) and self.b[r0:r1] == self.a[s0 : s0 + (r1 - r0)]:
                self.add(DivergenceKind.TRUNCATION, s0 + (r1 - r0), s1, r1, r1)
            else:
                self.add(DivergenceKind.REPLACEMENT, s0, s1, r0, r1)


def _positions(lines: list[bytes], base: int) -> list[int]:
    positions = [base]
    for line in lines:
        positions.append(positions[-1] + len(line))
    return positions


def _common_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    pos = 0
    while pos < n:
        stop = min(n, pos + CHUNK)
        if a[pos:stop] != b[pos:stop]:
            while a[pos] == b[pos]:
                pos += 1
            return pos
        pos = stop
    return n


def _origin_differs(end: StreamEnd) -> bool:
    usual = end.usual_origin
    if usual is None:
        return False
    if end.origin.ttl != usual.ttl:
        return True
    macs = (end.origin.src_mac, usual.src_mac)
    if None not in macs and macs[0] != macs[1]:
        return True
    if end.origin.ip_id is not None and usual.ip_id is not None:
        # IP-IDs of one host move forward by small steps; a forged packet's rarely lands nearby.
        step = (end.origin.ip_id - usual.ip_id) % 65536
        if step > 1024 and end.origin.ip_id != 0 and usual.ip_id != 0:
            return True
    return False


def _end_mismatches(pair: SessionPair, spans: CaptureSpans | None) -> list[EndMismatch]:
    """FIN/RSTs in one capture whose apparent sender sent no such segment in the other.

    A segment seen when the other capture, still without an end of this connection, had stopped
    (or was about to) is no mismatch: that capture cannot show it.
    """
    found: list[EndMismatch] = []
    sides = (
        (
            CaptureSide.CLIENT_SIDE,
            pair.client_side.ends,
            pair.server_side.ends,
            Direction.SERVER_TO_CLIENT,
        ),
        (
            CaptureSide.SERVER_SIDE,
            pair.server_side.ends,
            pair.client_side.ends,
            Direction.CLIENT_TO_SERVER,
        ),
    )
    for seen_in, here, there, foreign in sides:
        # In the client-side capture, the endpoint behind the box is the server: a segment
        # "from the server" there must also appear in the server-side capture.
        for end in here:
            if end.direction is not foreign:
                continue
            if any(o.direction is end.direction and o.kind is end.kind for o in there):
                continue
            if not there and not end_covered(spans, seen_in.other, end.ts, seen_in):
                continue
            found.append(EndMismatch(end.direction, end.kind, seen_in, end, _origin_differs(end)))
    return found


def align_pair(pair: SessionPair, spans: CaptureSpans | None = None) -> PairAlignment:
    """Compare one pair where both captures hold the bytes; `spans` says when each ended."""
    divergences: list[Divergence] = []
    lengths: dict[Direction, tuple[int, int]] = {}
    uncovered: list[Uncovered] = []
    midstream = (not pair.client_side.flow.handshake_seen, not pair.server_side.flow.handshake_seen)
    for direction in (Direction.SERVER_TO_CLIENT, Direction.CLIENT_TO_SERVER):
        records = _records(pair, direction)
        if records is None:
            continue
        sent, received = records
        lengths[direction] = (len(sent.data), len(received.data))
        if direction is Direction.CLIENT_TO_SERVER:
            sent_mid, received_mid = midstream
        else:
            received_mid, sent_mid = midstream
        open_at_end = (not pair.client_side.ends, not pair.server_side.ends)
        if direction is Direction.SERVER_TO_CLIENT:
            open_at_end = open_at_end[::-1]
        held = held_range(direction, sent, received, sent_mid, received_mid, spans, open_at_end)
        uncovered.extend(held.uncovered)
        if held.compared:
            aligner = _Aligner(direction, sent, received, held)
            aligner.run()
            if direction is Direction.CLIENT_TO_SERVER:
                aligner.credentials(pair.client_side.credentials, pair.server_side.credentials)
            divergences.extend(aligner.out)
    divergences.sort(key=lambda d: (d.sent_ts or 0.0, d.direction != Direction.SERVER_TO_CLIENT))
    ends = tuple(_end_mismatches(pair, spans))
    return PairAlignment(pair, tuple(divergences), ends, lengths, tuple(uncovered))
