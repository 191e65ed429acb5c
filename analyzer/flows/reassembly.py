"""One direction of a TCP connection turned back into the byte stream its sender wrote.

`Reassembler` maps 32-bit sequence numbers onto unbounded stream offsets (offset 0 is the first
byte after the SYN, or the first byte seen when the capture started mid-connection), so the 2**32
wrap never shows. It delivers bytes in order, buffers segments that arrive early, and compares
every byte it sees twice -- a retransmission, a partial overlap, a segment overlapping one that is
still buffered -- with the copy it already has. Bytes that differ are evidence of rewriting in
the path and become a `RETRANSMISSION_MISMATCH` anomaly naming both frames. The first copy wins:
what was delivered or buffered first is what the stream keeps, as most TCP stacks do. Holes that
will not be filled (the peer acknowledged bytes never captured, too much buffered behind a hole,
a segment cut by the snaplen, the end of the capture) become `StreamGap`s and the stream goes on
after them. A FIN is released once every byte before it is out.

Consecutive in-order segments are handed on together as one run (one `StreamData` whose
`marks` say where each segment begins), so that consumers pay per run, not per segment: a run
grows until `RUN_BYTES`, until the `partner` (the other direction of the connection) has
something to hand on, or until anything else happens to this stream (a segment out of order, a
gap, a FIN, the end). Across the two directions, everything is handed on in capture order.

It keeps the last `HISTORY_BYTES` delivered (the `StreamData` values themselves, so no copy) to
compare retransmissions with, at most `RUN_BYTES` of the run being gathered, and at most
`max_buffered` bytes of early data.

Judgement calls, each the reading that keeps real captures whole:
- A segment of at most one byte at `next - 1` is a keep-alive: its byte is filler, never compared.
- An acknowledgement exactly one position beyond everything seen more likely covers a FIN the
  capture missed than a byte; that position becomes a one-byte gap only when bytes beyond it
  arrive (`maybe_fin`).
- Bytes further ahead than any window TCP can offer (`MAX_WINDOW`) are garbage and dropped.
- Mid-connection, offset 0 is where the first payload (or FIN, RST) seen begins; bytes before
  it are not stream bytes (they count as retransmissions).
- Bytes that arrive for a range already declared a gap are not delivered (the stream has moved
  on); they count as retransmissions. Bytes a snaplen cut left missing stay a gap even if a
  complete copy arrives later.

It does not know about flows, roles, addresses or who sent a packet, and it never sees bare
ACKs: the flow table (`table`) feeds it one direction's payload, FIN and peer acknowledgements,
and forwards what comes out through the callbacks `on_data`, `on_gap`, `on_anomaly`, `on_fin`.
Callbacks may call `ignore()` on the reassembler that is calling them.

Why one long module: one reassembler, whose invariants are tested as a unit
(`tests/flows/test_reassembly_properties.py`).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import deque
from collections.abc import Callable
from typing import Final, TypeAlias

from analyzer._common import Anomaly, Direction, FrameMarks, FrameRef
from analyzer._quick import quick_constructor
from analyzer.flows.events import (
    DirectionStats,
    FlowAnomaly,
    StreamData,
    StreamEnd,
    StreamGap,
)

SEQ_SPACE: Final = 1 << 32
"""Sequence numbers are 32 bits and compared modulo 2**32 (RFC 9293 §3.4)."""
SEQ_MASK: Final = SEQ_SPACE - 1
SEQ_HALF: Final = 1 << 31
"""A sequence number is "after" another when less than half the space ahead (RFC 1982 §3.2)."""

MAX_WINDOW: Final = 1 << 30
"""The largest window TCP can advertise (RFC 7323 §2.3: shift at most 14). Bytes or acknowledgements
further ahead than this cannot be part of the stream: they are garbage, not a capture gap."""

HISTORY_BYTES: Final = 64 * 1024
"""Delivered bytes kept per direction to compare retransmissions with (TCP's classic maximum
window without scaling, RFC 9293 §3.1)."""
HISTORY_CHUNKS: Final = 4096
"""At most this many delivered segments are kept, so one-byte segments cannot inflate memory."""
RUN_BYTES: Final = 32 * 1024
"""A run of in-order segments is handed on once it holds this many bytes."""
_NO_RUN: list[bytes] = []
_NO_FRAMES: list[FrameRef] = []
_NO_TIMES: list[float] = []
"""`Reassembler.run`, `run_frames` and `run_times` between runs: shared by every reassembler
and never appended to (a run starts with lists of its own), so that an idle connection holds
no lists of its own."""

SHOWN_BYTES: Final = 40
"""How much of each version a conflict's detail shows."""

KEEPALIVE_MAX_LEN: Final = 1
"""A keep-alive carries zero or one byte at SND.NXT-1 (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6)."""

Piece: TypeAlias = tuple[int, bytes | None, FrameRef, float]
"""A buffered range, keyed by its start offset: (end offset, bytes or None when the bytes are
known to be missing because the snaplen cut them, frame, timestamp)."""


def _ignore_data(data: StreamData) -> None:
    """Callback of a direction whose payload nobody wants."""


def _ignore_gap(gap: StreamGap) -> None:
    """Callback of a direction whose payload nobody wants."""


def _ignore_anomaly(anomaly: Anomaly) -> None:
    """Callback of a direction whose payload nobody wants."""


def _ignore_fin(end: StreamEnd) -> None:
    """Callback before the owner wires the reassembler up."""


new_stream_data: Final = quick_constructor(StreamData)
"""`StreamData(...)`, made faster: one is made per run of in-order bytes."""


def _show(data: bytes) -> str:
    if len(data) > SHOWN_BYTES:
        return f"{data[:SHOWN_BYTES]!r}…"
    return repr(data)


def describe_conflict(offset: int, earlier: bytes, later: bytes) -> str:
    """Say where two equally long versions of the same stream bytes differ and show both.

    Only the span from the first to the last differing byte is shown.
    """
    n = len(earlier)
    diff = int.from_bytes(earlier, "big") ^ int.from_bytes(later, "big")
    first = n - (diff.bit_length() + 7) // 8
    last = n - ((diff & -diff).bit_length() - 1) // 8
    return (
        f"{last - first} of {n} overlapping bytes differ at stream offset {offset + first}: "
        f"{_show(earlier[first:last])} first, then {_show(later[first:last])}"
    )


class Reassembler:
    """The byte stream of one direction, rebuilt from its segments in whatever order they come.

    The owner sets `direction` and the callbacks before feeding it, calls `set_base` with the
    sequence number of offset 0 (ISN+1, or the first sequence number seen midstream), then
    `push` for every segment with payload, `acked` when the peer acknowledges bytes beyond
    everything seen, `set_fin` for a FIN, and `flush` at the end. An owner that reports other
    things about the connection calls `hand_on_runs` first, so that they come after the bytes
    that came before them. Runs are gathered only when the owner sets `partner` (the other
    direction's reassembler, or the reassembler itself for a stream without one).
    """

    __slots__ = (
        "_notes",
        "base",
        "direction",
        "fast",
        "fin",
        "fin_done",
        "fin_off",
        "history",
        "history_bytes",
        "ignored",
        "max_buffered",
        "maybe_fin",
        "next",
        "next_seq",
        "on_anomaly",
        "on_data",
        "on_fin",
        "on_gap",
        "partner",
        "pending_bytes",
        "pieces",
        "run",
        "run_bytes",
        "run_frames",
        "run_start",
        "run_times",
        "seen_end",
        "starts",
        "stats",
    )

    def __init__(self, stats: DirectionStats, max_buffered: int) -> None:
        self.direction = Direction.CLIENT_TO_SERVER
        """Set by the owner once the roles are known."""
        self.stats = stats
        self.max_buffered = max_buffered
        self.base: int | None = None
        """Sequence number of stream offset 0; None until set."""
        self.next = 0
        """Offset of the next byte to deliver."""
        self.next_seq = -1
        """Sequence number of `next` (-1 until the base is known, so it matches no segment)."""
        self.seen_end = -1
        """Sequence number just past the highest byte (or FIN) seen, -1 until the base is known."""
        self.starts: list[int] = []
        """Sorted start offsets of the buffered pieces; the pieces never overlap."""
        self.pieces: dict[int, Piece] = {}
        self.pending_bytes = 0
        self.history: deque[StreamData] | None = None
        """What was delivered lately, oldest first; None until something was (a connection
        that never carries a byte costs no deque)."""
        self.history_bytes = 0
        self.fin: StreamEnd | None = None
        self.fin_off = 0
        """Offset of the FIN's sequence number; meaningful only when `fin` is set."""
        self.fin_done = False
        """The FIN was handed to `on_fin`."""
        self.maybe_fin = -1
        """Offset of the last position an acknowledgement covered beyond everything seen: it may
        be a FIN the capture missed rather than a byte, so it becomes a gap only once bytes
        beyond it show up. Meaningful only while equal to `next`."""
        self.ignored = False
        self.fast = True
        """Nothing buffered, no FIN, not ignored: an in-order segment is simply appended."""
        self._notes: list[Anomaly] = []
        self.partner: Reassembler | None = None
        """The other direction of the connection, whose run is handed on before anything of
        this one; None: no runs, every segment is handed on at once."""
        self.run: list[bytes] = _NO_RUN
        """Payloads of the run being gathered (in-order segments not handed on yet); the
        shared, never filled `_NO_RUN` between runs."""
        self.run_frames: list[FrameRef] = _NO_FRAMES
        self.run_times: list[float] = _NO_TIMES
        self.run_start = 0
        """Stream offset of the run's first byte."""
        self.run_bytes = 0
        self.on_data: Callable[[StreamData], None] = _ignore_data
        self.on_gap: Callable[[StreamGap], None] = _ignore_gap
        self.on_anomaly: Callable[[Anomaly], None] = _ignore_anomaly
        self.on_fin: Callable[[StreamEnd], None] = _ignore_fin

    # -- runs ------------------------------------------------------------------------------

    def hand_on_run(self) -> None:
        """Hand on the run gathered so far, if any."""
        run = self.run
        if not run:
            return
        frames = self.run_frames
        times = self.run_times
        start = self.run_start
        self.run, self.run_frames, self.run_times = _NO_RUN, _NO_FRAMES, _NO_TIMES
        self.run_bytes = 0
        if len(run) == 1:
            item = new_stream_data(self.direction, start, run[0], frames[0], times[0])
        else:
            offsets = [start]
            at = start
            for payload in run[:-1]:
                at += len(payload)
                offsets.append(at)
            item = new_stream_data(
                self.direction,
                start,
                b"".join(run),
                frames[0],
                times[0],
                FrameMarks(offsets, frames, times),
            )
        self._deliver_data(item)

    def hand_on_runs(self) -> None:
        """Hand on both directions' runs: call before reporting anything else about the
        connection (only one direction gathers a run at a time)."""
        if self.run:
            self.hand_on_run()
        partner = self.partner
        if partner is not None and partner.run:
            partner.hand_on_run()

    # -- positions -------------------------------------------------------------------------

    def set_base(self, seq: int) -> None:
        """Make `seq` stream offset 0, unless offset 0 is already known."""
        if self.base is None:
            self.base = self.next_seq = self.seen_end = seq & SEQ_MASK

    def offset(self, seq: int) -> int:
        """Stream offset of sequence number `seq`: the one congruent mod 2**32 nearest `next`.

        The base must be set.
        """
        return self.next + ((seq - self.next_seq + SEQ_HALF) & SEQ_MASK) - SEQ_HALF

    def seq_at(self, offset: int) -> int:
        """Sequence number of stream offset `offset` (the base must be set)."""
        return (self.next_seq + offset - self.next) & SEQ_MASK

    def _see(self, end: int) -> None:
        if end > self.offset(self.seen_end):
            self.seen_end = self.seq_at(end)

    # -- input -----------------------------------------------------------------------------

    def push(self, seq: int, payload: bytes, payload_len: int, frame: FrameRef, ts: float) -> None:
        """One segment's payload; `payload` may be shorter than `payload_len` (snaplen)."""
        if self.fast and seq == self.next_seq and len(payload) == payload_len:
            partner = self.partner
            if partner is None:
                off = self.next
                self.next = off + payload_len
                self.next_seq = self.seen_end = (seq + payload_len) & SEQ_MASK
                self.stats.bytes += payload_len
                self._deliver_data(new_stream_data(self.direction, off, payload, frame, ts))
                return
            if partner.run and partner is not self:
                partner.hand_on_run()
            run = self.run
            if run:
                run.append(payload)
                self.run_frames.append(frame)
                self.run_times.append(ts)
            else:
                self.run_start = self.next
                self.run = [payload]
                self.run_frames = [frame]
                self.run_times = [ts]
            self.next += payload_len
            self.next_seq = self.seen_end = (seq + payload_len) & SEQ_MASK
            self.stats.bytes += payload_len
            self.run_bytes += payload_len
            if self.run_bytes >= RUN_BYTES:
                self.hand_on_run()
            return
        self.hand_on_runs()
        if self.base is None:
            self.set_base(seq)
        start = self.offset(seq)
        if start - self.next >= MAX_WINDOW:
            return  # outside any window the receiver could have offered: not stream bytes
        if start > self.maybe_fin == self.next and not self.ignored:
            self._gap(self.next, 1, frame, ts)  # bytes beyond it: it was a byte, not a FIN
        self._push_slow(start, payload, payload_len, frame, ts)
        self._emit_notes()
        if not self.ignored:
            self._drain()
            if self.pending_bytes > self.max_buffered:
                self._over_limit(frame, ts)
        self._settle()

    def _push_slow(
        self, start: int, payload: bytes, payload_len: int, frame: FrameRef, ts: float
    ) -> None:
        end = start + payload_len
        nxt = self.next
        if self.fin is not None and end > self.fin_off:
            self._data_after_fin(start, end, frame, ts)
            if start >= self.fin_off:
                return
            end = self.fin_off
            payload_len = end - start
        self._see(end)
        if self.ignored:
            if end > nxt:
                self.stats.bytes += end - nxt
                self._move_to(end)
            return
        if payload_len <= KEEPALIVE_MAX_LEN and start == nxt - 1:
            return  # keep-alive: its byte is filler, not a retransmission
        st = self.stats
        have = min(len(payload), payload_len)
        if have < payload_len:
            self._notes.append(
                Anomaly(
                    FlowAnomaly.SNAPLEN_CUT,
                    f"{frame} holds {have} of {payload_len} payload bytes: stream offsets "
                    f"{start + have}..{end} were cut by the snaplen",
                    (frame,),
                    ts,
                    self.direction,
                )
            )
        overlap = 0
        if start < nxt:
            old_end = min(end, nxt)
            overlap = old_end - start
            self._compare_history(start, payload[: min(have, overlap)], frame, ts)
            if end <= nxt:
                st.retransmissions += 1
                st.retransmitted_bytes += overlap
                return
            cut = nxt - start
            payload = payload[cut:]
            have = max(0, have - cut)
            start = nxt
        elif start > nxt:
            st.out_of_order += 1
        if start == nxt and not self.starts:
            if overlap:
                st.retransmissions += 1
                st.retransmitted_bytes += overlap
            if have:
                self._deliver(start, payload[:have], frame, ts)
            if start + have < end:
                self._gap(start + have, end - start - have, frame, ts)
            return
        data_end = start + have
        if have:
            overlap += self._insert(start, data_end, payload[:have], frame, ts)
        if data_end < end:
            overlap += self._insert(data_end, end, None, frame, ts)
        if overlap:
            st.retransmissions += 1
            st.retransmitted_bytes += overlap

    def acked(self, ack_seq: int, frame: FrameRef, ts: float) -> None:
        """The peer acknowledged up to `ack_seq`, beyond everything seen in this direction.

        The receiver has those bytes, so the capture missed them: every hole below `ack_seq` is
        declared a gap and what is buffered is delivered. When the acknowledgement is exactly
        one position ahead, that position is more likely a FIN the capture missed than a byte,
        so it waits (`maybe_fin`). The caller checks that `ack_seq` is ahead of `seen_end` by
        less than `MAX_WINDOW`.
        """
        if self.base is None:
            return
        self.hand_on_runs()
        target = self.offset(ack_seq)
        one_ahead = target == self.offset(self.seen_end) + 1 and self.fin is None
        if self.fin is not None:
            target = min(target, self.fin_off)
        self._see(target)
        if one_ahead:
            target -= 1
            self.maybe_fin = target
        if self.ignored:
            self._move_to(max(target, self.next))
        else:
            self._fill_holes(target, frame, ts)
        self._settle()

    def set_fin(self, end: StreamEnd) -> None:
        """The sender's FIN at stream offset `end.offset`; released once the bytes before it are.

        A second FIN (a retransmission) is ignored: the first one counts.
        """
        if self.fin is not None:
            return
        self.hand_on_runs()
        fin_off = end.offset
        self.fin = end
        self.fin_off = fin_off
        self._see(fin_off + 1)
        starts = self.starts
        if starts and self.pieces[starts[-1]][0] > fin_off:
            i = max(0, bisect_right(starts, fin_off) - 1)
            if self.pieces[starts[i]][0] <= fin_off:
                i += 1
            first = max(fin_off, starts[i])
            _, _, frame, ts = self.pieces[starts[i]]
            self._data_after_fin(first, self.pieces[starts[-1]][0], frame, ts)
            self._cut_pieces_at(fin_off)
        if fin_off < self.next:
            self._notes.append(
                Anomaly(
                    FlowAnomaly.DATA_AFTER_FIN,
                    f"FIN at stream offset {fin_off} but {self.next - fin_off} bytes after it "
                    "were already delivered",
                    (end.frame,),
                    end.ts,
                    self.direction,
                )
            )
        self._emit_notes()
        self._settle()

    def flush(self, ts: float) -> None:
        """End of the stream's life: deliver everything buffered, declaring the holes between as
        gaps, then the FIN if one was seen (after a gap if bytes before it are missing)."""
        self.hand_on_runs()
        if self.ignored:
            if self.fin is not None and self.next < self.fin_off:
                self._move_to(self.fin_off)
            self._settle()
            return
        if self.starts:
            self._fill_holes(self.pieces[self.starts[-1]][0], None, ts)
        if self.fin is not None and self.next < self.fin_off:
            self._fill_holes(self.fin_off, self.fin.frame, self.fin.ts)
        self._settle()

    def ignore(self) -> None:
        """Stop keeping and delivering payload; keep counting and still release the FIN.

        The runs gathered so far are handed on first: they arrived before the call."""
        if not self.ignored:
            self.hand_on_runs()
        self.ignored = True
        self.fast = False
        self.on_data = _ignore_data
        self.on_gap = _ignore_gap
        self.on_anomaly = _ignore_anomaly
        self.release()

    def release(self) -> None:
        """Drop every buffered and remembered byte (the positions stay known)."""
        self.run, self.run_frames, self.run_times = _NO_RUN, _NO_FRAMES, _NO_TIMES
        self.run_bytes = 0
        self.starts.clear()
        self.pieces.clear()
        self.pending_bytes = 0
        self.history = None
        self.history_bytes = 0
        self._notes.clear()

    # -- output ----------------------------------------------------------------------------

    def _move_to(self, offset: int) -> None:
        self.next_seq = self.seq_at(offset)
        self.next = offset

    def _deliver(self, off: int, data: bytes, frame: FrameRef, ts: float) -> None:
        n = len(data)
        self._move_to(off + n)
        self.stats.bytes += n
        self._deliver_data(new_stream_data(self.direction, off, data, frame, ts))

    def _deliver_data(self, item: StreamData) -> None:
        """Remember `item` for comparing retransmissions with, and hand it on."""
        history = self.history
        if history is None:
            self.history = history = deque()
        elif len(history) == HISTORY_CHUNKS:
            self.history_bytes -= len(history.popleft().data)
        history.append(item)
        kept = self.history_bytes + len(item.data)
        while kept - len(history[0].data) >= HISTORY_BYTES:
            kept -= len(history.popleft().data)
        self.history_bytes = kept
        self.on_data(item)

    def _gap(self, off: int, length: int, frame: FrameRef | None, ts: float) -> None:
        self._move_to(off + length)
        st = self.stats
        st.gaps += 1
        st.gap_bytes += length
        self.on_gap(StreamGap(self.direction, off, length, ts, frame))

    def _emit_notes(self) -> None:
        notes = self._notes
        while notes:
            self.on_anomaly(notes.pop(0))

    def _settle(self) -> None:
        """Release the FIN if its turn came, and recompute whether the fast path applies."""
        fin = self.fin
        if fin is not None and not self.fin_done and self.next >= self.fin_off:
            self.fin_done = True
            self.on_fin(fin)
        self.fast = not self.starts and fin is None and not self.ignored

    # -- buffering -------------------------------------------------------------------------

    def _insert(self, start: int, end: int, data: bytes | None, frame: FrameRef, ts: float) -> int:
        """Buffer the parts of [start, end) not buffered yet; compare the parts that are.

        Returns how many bytes were already buffered.
        """
        starts = self.starts
        pieces = self.pieces
        i = bisect_right(starts, start) - 1
        pos = start
        overlap = 0
        fresh: list[tuple[int, int]] = []
        if i >= 0:
            p_start = starts[i]
            p_end, p_data, p_frame, _ = pieces[p_start]
            if p_end > start:
                stop = min(p_end, end)
                overlap += stop - start
                if p_data is not None and data is not None:
                    self._note(
                        self._compare(
                            start,
                            p_data[start - p_start : stop - p_start],
                            data[: stop - start],
                            p_frame,
                            frame,
                            ts,
                        )
                    )
                pos = stop
        i += 1
        count = len(starts)
        while i < count and starts[i] < end:
            p_start = starts[i]
            p_end, p_data, p_frame, _ = pieces[p_start]
            if p_start > pos:
                fresh.append((pos, p_start))
            stop = min(p_end, end)
            overlap += stop - p_start
            if p_data is not None and data is not None:
                self._note(
                    self._compare(
                        p_start,
                        p_data[: stop - p_start],
                        data[p_start - start : stop - start],
                        p_frame,
                        frame,
                        ts,
                    )
                )
            pos = stop
            i += 1
        if pos < end:
            fresh.append((pos, end))
        for a, b in fresh:
            piece = None if data is None else data[a - start : b - start]
            pieces[a] = (b, piece, frame, ts)
            insort(starts, a)
            if piece is not None:
                self.pending_bytes += b - a
        return overlap

    def _cut_pieces_at(self, limit: int) -> None:
        """Forget buffered bytes at or beyond `limit`."""
        starts = self.starts
        pieces = self.pieces
        while starts and pieces[starts[-1]][0] > limit:
            p_start = starts[-1]
            _, p_data, p_frame, p_ts = pieces[p_start]
            if p_data is not None:
                self.pending_bytes -= len(p_data)
            if p_start >= limit:
                starts.pop()
                del pieces[p_start]
                continue
            kept = None if p_data is None else p_data[: limit - p_start]
            pieces[p_start] = (limit, kept, p_frame, p_ts)
            if kept is not None:
                self.pending_bytes += len(kept)

    def _drain(self) -> None:
        """Deliver the buffered pieces that now continue the stream."""
        starts = self.starts
        pieces = self.pieces
        while starts and starts[0] == self.next:
            p_start = starts.pop(0)
            p_end, p_data, p_frame, p_ts = pieces.pop(p_start)
            if p_data is None:
                self._gap(p_start, p_end - p_start, p_frame, p_ts)
            else:
                self.pending_bytes -= len(p_data)
                self._deliver(p_start, p_data, p_frame, p_ts)

    def _fill_holes(self, upto: int, frame: FrameRef | None, ts: float) -> None:
        """Declare every hole below `upto` a gap, delivering the buffered pieces between."""
        self._drain()
        gap_frame: FrameRef | None
        while self.next < upto:
            starts = self.starts
            if starts and starts[0] <= upto:
                hole_end = starts[0]
                _, _, gap_frame, gap_ts = self.pieces[hole_end]
            else:
                hole_end, gap_frame, gap_ts = upto, frame, ts
            self._gap(self.next, hole_end - self.next, gap_frame, gap_ts)
            self._drain()

    def _over_limit(self, frame: FrameRef, ts: float) -> None:
        while self.pending_bytes > self.max_buffered and self.starts and not self.ignored:
            hole_end = self.starts[0]
            self.on_anomaly(
                Anomaly(
                    FlowAnomaly.OUT_OF_ORDER_LIMIT,
                    f"{self.pending_bytes} bytes buffered behind a hole at stream offset "
                    f"{self.next} (limit {self.max_buffered}): its {hole_end - self.next} "
                    "bytes are declared a gap",
                    (frame,),
                    ts,
                    self.direction,
                )
            )
            self._fill_holes(hole_end, frame, ts)

    # -- comparing -------------------------------------------------------------------------

    def _compare_history(self, start: int, data: bytes, frame: FrameRef, ts: float) -> None:
        """Compare bytes [start, start+len(data)) with what was delivered, newest first."""
        end = start + len(data)
        found: list[Anomaly] = []
        for run in reversed(self.history or ()):
            if run.offset >= end:
                continue
            if run.offset + len(run.data) <= start:
                break
            found.extend(self._compare_run(run, start, end, data, frame, ts))
        found.reverse()
        self._notes.extend(found)

    def _compare_run(
        self, run: StreamData, start: int, end: int, data: bytes, frame: FrameRef, ts: float
    ) -> list[Anomaly]:
        """Compare bytes [start, end) with the delivered `run`, segment by segment, newest
        first."""
        found: list[Anomaly] = []
        for item in reversed(list(run.pieces(start, end))):
            i_start = item.offset
            i_end = i_start + len(item.data)
            if i_end <= start:
                break
            if i_start >= end:
                continue
            a = max(i_start, start)
            b = min(i_end, end)
            note = self._compare(
                a,
                item.data[a - i_start : b - i_start],
                data[a - start : b - start],
                item.frame,
                frame,
                ts,
            )
            if note is not None:
                found.append(note)
        return found

    def _compare(
        self,
        offset: int,
        earlier: bytes,
        later: bytes,
        earlier_frame: FrameRef,
        later_frame: FrameRef,
        ts: float,
    ) -> Anomaly | None:
        if earlier == later:
            return None
        self.stats.conflicts += 1
        return Anomaly(
            FlowAnomaly.RETRANSMISSION_MISMATCH,
            describe_conflict(offset, earlier, later),
            (earlier_frame, later_frame),
            ts,
            self.direction,
        )

    def _note(self, note: Anomaly | None) -> None:
        if note is not None:
            self._notes.append(note)

    def _data_after_fin(self, start: int, end: int, frame: FrameRef, ts: float) -> None:
        fin = self.fin
        assert fin is not None
        first = max(start, self.fin_off)
        self._notes.append(
            Anomaly(
                FlowAnomaly.DATA_AFTER_FIN,
                f"{end - first} bytes at stream offsets {first}..{end} after the FIN at "
                f"offset {self.fin_off} ({fin.frame})",
                (fin.frame, frame),
                ts,
                self.direction,
            )
        )
