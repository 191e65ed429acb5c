"""The TCP flow table: which segments form one connection, who is client and who is server, and
when each connection starts and ends.

`FlowTable.add` takes the segments of one capture in capture order and tells a `FlowSink` what
happened, connection by connection:

- `on_flow_start` once the roles are known: from the handshake (the SYN's sender is the client,
  or the SYN-ACK's receiver when only that was captured), else -- the capture began mid-connection
  -- from the first payload through the `role_hint`, else from the ports (`key`), with a
  `MIDSTREAM_START` anomaly. The start waits until both sides were seen or something must be
  reported, so that `FlowInfo` carries both sides' ISN, MSS and first TSval. A conversation
  that only ever carried bare ACKs is still reported, started at its close with roles from
  the ports: every `FlowInfo.index` is reported, like Wireshark's `tcp.stream`.
- `on_data` / `on_gap` per direction, in stream order (see `reassembly`), and `on_anomaly`.
- `on_end` for a FIN (in stream order) or a RST (at once), with the sender's TTL, IP-ID and MAC
  next to what that endpoint's earlier packets looked like; RSTs never count as "earlier".
- `on_flow_closed` with the counters, when both FINs are out, at a RST, when a new SYN reuses the
  4-tuple, when the flow idled longer than `idle_timeout` (capture time) or the table is full
  (`FLOW_EVICTED`), or at `finish()`. Before closing, whatever is buffered is delivered, holes
  becoming gaps.

Memory follows the number of open connections, not the size of the capture: closed flows are
dropped. A connection closed by FIN or RST lingers as a tombstone for `CLOSED_LINGER` seconds of
capture time (at most `max_flows` of them) so that its last ACKs and late retransmissions are
absorbed, uncounted, instead of starting a new conversation; payload that hits a tombstone is
reported (`DATA_AFTER_FIN` beyond the FIN, `DATA_AFTER_RST`). A segment arriving after a flow was
evicted starts a new conversation. "Least recently active" is tracked to within a second of
capture time (`_lru_step`), so the short path does not reorder the LRU on every segment.

Each side of a connection is a `_Half`, which *is* the `Reassembler` of the bytes that side sends;
one dictionary look-up on the segment's own 4-tuple finds it. The short path, `_short`, handles
an ACK or data segment of an open connection; everything else (new flows, SYN, FIN, RST, closed
connections) goes through `_add_slow`. Segments enter by `add` or by `take`, for a segment that
was never made a `Segment`: the capture layer offers each segment's fields and raw key
(`analyzer.capture.conversation`) first, and builds a `Segment` for `add` only when `take`
refuses it. Both lead to the same `_short`. Sides are filed under their raw keys too, and the
frame of a bare ACK is remembered as a number until someone needs the `FrameRef`.

A connection of which only the opening SYN was seen is kept as that `Segment` alone (a
half-open connection, `_halfopen`), numbered when it arrives and made a full flow when any other
segment of its 4-tuple comes, when it idles out, when too many are waiting or at `finish()` --
then through the same steps as if it had been one from the start, so what the sink is told is the
same. A SYN flood thus costs one segment per SYN, at most `max_half_open` of them (beyond, the
oldest is closed early, `FLOW_EVICTED`), and never evicts the open connections: half-open ones
wait in their own table, with their own limit.

A closed connection's tombstone is two small `_Tomb`s (filed under the two directions' keys)
holding the stream positions and FIN that late segments are checked against, and nothing more.
The idle sweep closes exactly the flows idle longer than the timeout, whatever else shares the
table, so that a table fed one shard of a capture (with `tick` for the other shards' segments)
treats each of its connections as a table fed the whole capture does.

One table serves one capture. The sink's callbacks may call `ignore()`; they must not call
`add()` or `finish()`.

This module does not reassemble bytes (that is `reassembly`) and never looks inside payload
except to hand the first payload of a midstream connection to the `role_hint`.

Why one long module: a flow's life cycle (its states, its tombstone, its half-open wait, the
idle sweep) is one table's bookkeeping; reassembly lives apart.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Final, Protocol, TypeAlias

from analyzer._common import Anomaly, Direction, FrameRef
from analyzer.capture.conversation import raw_key
from analyzer.capture.decode import SegmentTaker, new_frame_ref
from analyzer.capture.segment import ACK, FIN, RST, SYN, Segment
from analyzer.flows.events import (
    DirectionStats,
    EndKind,
    Endpoint,
    FlowAnomaly,
    FlowInfo,
    FlowStats,
    PacketOrigin,
    StreamData,
    StreamEnd,
    StreamGap,
)
from analyzer.flows.key import FlowKey, port_says_source_is_server, reverse_key
from analyzer.flows.reassembly import MAX_WINDOW, SEQ_HALF, SEQ_MASK, Reassembler

CLOSED_LINGER: Final = 60.0
"""Seconds of capture time a connection closed by FIN or RST stays known: about TIME-WAIT,
2 x MSL (RFC 9293 §3.6; Linux uses 60 s)."""

SWEEPS_PER_TIMEOUT: Final = 8
"""The idle sweep runs this many times per idle timeout of capture time (and at least every
`CLOSED_LINGER`/8 seconds), so a flow is closed at most 1/8 of the timeout late."""

IP_ID_SAMPLES: Final = 16
"""IP-IDs kept per side, from its first packets: enough to recognise one connection's IP-ID
sequence in the other capture (the correlation layer compares them), few enough to cost
nothing per connection."""

MAX_HALF_OPEN: Final = 100_000
"""Connections of which only the SYN was seen, kept waiting for any other segment at once. An
answered SYN waits a round trip, so only a flood or a scan comes near; each costs its SYN
(about 1 KB)."""

_SLOW_FLAGS: Final = SYN | FIN | RST

# Life of a flow.
_NEW: Final = 0
"""Roles unknown: only bare ACKs seen."""
_ROLES: Final = 1
"""Roles known, `on_flow_start` not sent yet."""
_OPEN: Final = 2
_CLOSED: Final = 3
"""Closed by FIN or RST; lingering as a tombstone."""


class FlowSink(Protocol):
    """Receives what the flow table found; every call names the flow it is about."""

    def on_flow_start(self, flow: FlowInfo) -> None: ...
    def on_data(self, flow: FlowInfo, data: StreamData) -> None: ...
    def on_gap(self, flow: FlowInfo, gap: StreamGap) -> None: ...
    def on_end(self, flow: FlowInfo, end: StreamEnd) -> None: ...
    def on_anomaly(self, flow: FlowInfo, anomaly: Anomaly) -> None: ...
    def on_flow_closed(self, flow: FlowInfo, stats: FlowStats) -> None: ...


RoleHint: TypeAlias = Callable[[bytes, int, int], bool | None]
"""Given the first payload bytes of a midstream connection's first payload segment, its source
port and destination port: True if that segment's sender is the server, False if it is the
client, None when the bytes do not tell."""


def _no_fin(end: StreamEnd) -> None:
    """The FIN callback of a forgotten flow."""


class _Half(Reassembler):
    """One side of a connection: its stream (the `Reassembler` it is), what it sent, and what
    its packets look like."""

    # `_close` does `del half.peer, half.flow` to break the reference cycle; a class compiled
    # by mypyc allows `del` only on the attributes it lists here (ignored when interpreted).
    __deletable__ = ("peer", "flow")

    __slots__ = (
        "ack_seen",
        "derived_isn",
        "file_no",
        "first_tsval",
        "flow",
        "frame_no",
        "ip",
        "ip_id",
        "ip_id_room",
        "ip_ids",
        "key",
        "last_frame",
        "last_ts",
        "lru_due",
        "mac",
        "packets",
        "payload_packets",
        "peer",
        "port",
        "raw",
        "ready",
        "syn_frame",
        "syn_isn",
        "syn_mss",
        "syn_window",
        "syn_wscale",
        "ttl",
        "ttl_others",
        "ttl_run",
    )

    def __init__(self, flow: _Flow, key: FlowKey, max_buffered: int) -> None:
        super().__init__(DirectionStats(), max_buffered)
        self.flow = flow
        self.key = key
        self.raw: bytes | None = None
        """Raw key (`conversation.raw_key`) of this side's direction; None if the addresses are
        not IP addresses in text form."""
        # The counters of the packets this side sent are kept here and written into `stats` by
        # `sync_stats`: compiled, these are native fields, while `stats` is a Python object.
        self.packets = 0
        self.payload_packets = 0
        self.last_ts: float | None = None
        self.last_frame: FrameRef | None = None
        self.frame_no = -1
        """Frame number (in file `file_no`) of this side's latest packet when `last_frame`
        does not hold it yet; -1 when it does."""
        self.file_no = 0
        self.ip = key[0]
        self.port = key[1]
        self.peer: _Half = self
        self.ready = False
        """The flow is open and this side has been seen: `add` may take its short path."""
        self.ack_seen = -1
        """Acknowledgement number of this side's previous segment."""
        self.lru_due = float("-inf")
        """Capture time after which a segment moves the flow to the recent end of the LRU."""
        self.first_tsval: int | None = None
        self.syn_isn: int | None = None
        """ISN of this side's SYN or SYN-ACK."""
        self.derived_isn: int | None = None
        """ISN implied by the peer's SYN-ACK acknowledgement when this side's SYN was missed."""
        self.syn_mss: int | None = None
        self.syn_frame: FrameRef | None = None
        self.ttl = -1
        """TTL of the latest run of equal TTLs (-1: none yet)."""
        self.ttl_run = 0
        """How many packets carried `ttl` (earlier runs of the same value included)."""
        self.ttl_others: dict[int, int] = {}
        """Packet counts of the other TTLs seen."""
        self.ip_id: int | None = None
        self.ip_ids: list[int] = []
        """IPv4 IP-IDs of the first `IP_ID_SAMPLES` packets this side sent (RSTs aside)."""
        self.ip_id_room = IP_ID_SAMPLES
        self.syn_window: int | None = None
        self.syn_wscale: int | None = None
        self.mac: bytes | None = None

    def note_ip_id(self, ip_id: int | None) -> None:
        """Keep `ip_id` while fewer than `IP_ID_SAMPLES` are kept."""
        if ip_id is not None:
            self.ip_ids.append(ip_id)
            self.ip_id_room -= 1

    def new_ttl(self, ttl: int) -> None:
        """Count a packet whose TTL differs from the previous packet's."""
        others = self.ttl_others
        if self.ttl >= 0:
            others[self.ttl] = self.ttl_run
        self.ttl = ttl
        self.ttl_run = others.pop(ttl, 0) + 1

    def latest_frame(self) -> FrameRef | None:
        """The frame of this side's latest packet (made now if it was kept as a number)."""
        if self.frame_no >= 0:
            self.last_frame = new_frame_ref(self.flow.capture_id, self.frame_no, self.file_no)
            self.frame_no = -1
        return self.last_frame

    def sync_stats(self) -> None:
        """Bring `stats` up to date: packet counts, latest time and frame."""
        st = self.stats
        st.packets = self.packets
        st.payload_packets = self.payload_packets
        st.last_ts = self.last_ts
        st.last_frame = self.latest_frame()
        st.ip_ids = tuple(self.ip_ids)

    def usual_origin(self) -> PacketOrigin | None:
        """Most common TTL, latest IP-ID and MAC of the packets counted so far."""
        if self.ttl < 0:
            return None
        ttl, count = self.ttl, self.ttl_run
        for other, n in self.ttl_others.items():
            if n > count:
                ttl, count = other, n
        return PacketOrigin(ttl, self.ip_id, self.mac)


class _Tomb:
    """What is left of one side of a connection closed by FIN or RST while it lingers: where its
    stream stood, to tell late bytes from data beyond the FIN."""

    __slots__ = ("base", "direction", "fin_frame", "fin_off", "flow", "key", "next", "next_seq")

    def __init__(self, half: _Half) -> None:
        self.key = half.key
        self.flow = half.flow
        self.direction = half.direction
        self.base = half.base
        self.fin_frame = None if half.fin is None else half.fin.frame
        """Frame of this side's FIN; None when it sent none."""
        self.fin_off = half.fin_off
        self.next = half.next
        self.next_seq = half.next_seq

    def offset(self, seq: int) -> int:
        """Stream offset of sequence number `seq`, as `Reassembler.offset` (base set)."""
        return self.next + ((seq - self.next_seq + SEQ_HALF) & SEQ_MASK) - SEQ_HALF


class _Flow:
    """One TCP connection of the table."""

    __slots__ = (
        "capture_id",
        "client",
        "closed_ts",
        "end_frame",
        "end_kind",
        "fins",
        "first",
        "guess",
        "handshake",
        "ignored",
        "index",
        "info",
        "start_ts",
        "state",
        "tombs",
        "touched",
    )

    def __init__(self, index: int, capture_id: str, ts: float) -> None:
        self.index = index
        self.capture_id = capture_id
        self.start_ts = ts
        self.closed_ts = ts
        self.touched = ts
        """Capture time of the flow's latest move to the recent end of the LRU order."""
        self.state = _NEW
        self.first: _Half | None = None
        """The side that sent the conversation's first segment."""
        self.client: _Half | None = None
        self.handshake = False
        self.guess: str | None = None
        """How the roles were guessed, when no handshake told them."""
        self.info: FlowInfo | None = None
        self.fins = 0
        self.end_kind: EndKind | None = None
        self.end_frame: FrameRef | None = None
        self.ignored = False
        self.tombs: tuple[_Tomb, ...] = ()
        """The sides' tombstones while the closed flow lingers (then `first` is None)."""

    def last_ts(self) -> float:
        """Capture time of the flow's latest packet."""
        first = self.first
        if first is None:
            return self.closed_ts
        a = first.last_ts
        b = first.peer.last_ts
        if a is None:
            return self.start_ts if b is None else b
        return a if b is None or a >= b else b


class FlowTable(SegmentTaker):
    """TCP connections of one capture, reassembled and handed to a `FlowSink` (see the module).

    As a `SegmentTaker`, it takes the segments of the connections it knows before they become
    `Segment`s (`take`)."""

    def __init__(
        self,
        sink: FlowSink,
        *,
        role_hint: RoleHint | None = None,
        max_flows: int = 200_000,
        max_half_open: int = MAX_HALF_OPEN,
        idle_timeout: float = 900.0,
        max_buffered_per_direction: int = 4 << 20,
    ) -> None:
        self._sink = sink
        self._role_hint = role_hint
        self._max_flows = max(1, max_flows)
        self._max_half_open = max(1, max_half_open)
        self._idle_timeout = idle_timeout
        self._max_buffered = max_buffered_per_direction
        self._linger = min(CLOSED_LINGER, idle_timeout)
        self._sweep_every = max(min(idle_timeout, CLOSED_LINGER) / SWEEPS_PER_TIMEOUT, 1e-3)
        self._next_sweep = float("-inf")
        self._halves: dict[FlowKey, _Half] = {}
        self._raw: dict[bytes, _Half] = {}
        """The same sides under their raw keys."""
        self._tombs: dict[FlowKey, _Tomb] = {}
        """Sides of lingering closed flows, by direction key (no side of an open flow has it)."""
        self._active: OrderedDict[int, _Flow] = OrderedDict()
        """Open flows by index, least recently active first."""
        self._halfopen: OrderedDict[FlowKey, tuple[int, Segment]] = OrderedDict()
        """Connections of which only the SYN was seen: index and SYN by the SYN's key, in
        capture order."""
        self._closed: OrderedDict[int, _Flow] = OrderedDict()
        """Tombstones by index, oldest first."""
        self._next_index = 0
        self._lru_step = min(1.0, idle_timeout / 100)
        """The LRU order is kept to this many seconds of capture time, not per segment."""
        self._finished: _Flow | None = None
        """A flow whose second FIN was just released, to close once the current call returns."""

    @property
    def open_flows(self) -> int:
        """Connections currently open, half-open ones included (tombstones of closed ones not)."""
        return len(self._active) + len(self._halfopen)

    @property
    def next_index(self) -> int:
        """The index the next new conversation will get: how many were numbered so far."""
        return self._next_index

    # -- input -----------------------------------------------------------------------------

    def add(self, seg: Segment) -> None:
        """Take the next segment of the capture."""
        ts = seg.ts
        if ts >= self._next_sweep:
            self._sweep(ts)
        half = self._halves.get((seg.src, seg.sport, seg.dst, seg.dport))
        if half is None or not half.ready or seg.flags & _SLOW_FLAGS:
            self._add_slow(seg, half)
            return
        self._short(
            half,
            ts,
            seg.frame,
            -1,
            0,
            seg.flags,
            seg.seq,
            seg.ack,
            seg.payload,
            seg.payload_len,
            seg.ttl,
            seg.ip_id,
            seg.src_mac,
        )

    def take(
        self,
        key: bytes,
        ts: float,
        frame_no: int,
        file_no: int,
        flags: int,
        seq: int,
        ack: int,
        payload: bytes,
        payload_len: int,
        ttl: int,
        ip_id: int | None,
        src_mac: bytes | None,
    ) -> bool:
        """`add` for a segment given as fields (`SegmentTaker.take`): True when it was an ACK or
        data segment of an open connection whose side was seen, and is done; False, with
        nothing changed but the idle sweep, for any other segment (then `add`)."""
        if ts >= self._next_sweep:
            self._sweep(ts)
        half = self._raw.get(key)
        if half is None or not half.ready or flags & _SLOW_FLAGS:
            return False
        self._short(
            half,
            ts,
            None,
            frame_no,
            file_no,
            flags,
            seq,
            ack,
            payload,
            payload_len,
            ttl,
            ip_id,
            src_mac,
        )
        return True

    def _short(
        self,
        half: _Half,
        ts: float,
        frame: FrameRef | None,
        frame_no: int,
        file_no: int,
        flags: int,
        seq: int,
        ack: int,
        payload: bytes,
        payload_len: int,
        ttl: int,
        ip_id: int | None,
        src_mac: bytes | None,
    ) -> None:
        """The short path of `add` and `take`: an ACK or data segment, no SYN, FIN or RST, from
        a side already seen of an open flow. Its frame is `frame`, or when None frame
        `frame_no` of file `file_no`, made a `FrameRef` only if it is cited.

        Called once per packet with its arguments in order: keyword arguments would cost the
        interpreted build 5% (the compiled build resolves them when compiling)."""
        if ts >= half.lru_due:
            self._touch(half, ts)
        half.packets += 1
        if frame is None:
            half.frame_no = frame_no
            half.file_no = file_no
        else:
            half.last_frame = frame
            half.frame_no = -1
        half.last_ts = ts
        if ttl == half.ttl:
            half.ttl_run += 1
        else:
            half.new_ttl(ttl)
        half.ip_id = ip_id
        if half.ip_id_room > 0:
            half.note_ip_id(ip_id)
        half.mac = src_mac
        if ack != half.ack_seen and flags & ACK:
            half.ack_seen = ack
            peer = half.peer
            # Beyond everything seen, or past a hole with bytes buffered behind it (a delayed ACK
            # covering a lost segment and the one after it, RFC 1122 4.2.3.2): delivered, so a gap.
            if peer.seen_end >= 0 and (
                0 < ((ack - peer.seen_end) & SEQ_MASK) < MAX_WINDOW
                or (peer.starts and 0 < ((ack - peer.next_seq) & SEQ_MASK) < MAX_WINDOW)
            ):
                cited = half.latest_frame()
                assert cited is not None
                peer.acked(ack, cited, ts)
                if self._finished is not None:
                    self._close_finished()
                    return
        if payload_len:
            half.payload_packets += 1
            cited = half.latest_frame()
            assert cited is not None
            half.push(seq, payload, payload_len, cited, ts)
            if self._finished is not None:
                self._close_finished()

    def tick(self, ts: float) -> float:
        """Capture time `ts` passed with a segment that is not this table's (one of another
        shard's conversations): run the idle sweep if one is due, as `add` would have.

        Returns the capture time of the next sweep: ticks before it would do nothing."""
        if ts >= self._next_sweep:
            self._sweep(ts)
        return self._next_sweep

    def ignore(self, flow: FlowInfo) -> None:
        """Stop keeping and delivering this flow's payload (no more `on_data`, `on_gap` or
        payload anomalies); it is still counted, its ends reported and it is still closed.

        For an ignored direction `DirectionStats.bytes` counts the stream extent seen."""
        live = self._active.get(flow.index)
        if live is None or live.info is None or (live.info is not flow and live.info != flow):
            return
        live.ignored = True
        if live.first is not None:
            live.first.ignore()
            live.first.peer.ignore()

    def finish(self) -> None:
        """End of the capture: deliver what is buffered (holes become gaps), release pending
        FINs and close every open flow, in index order."""
        waiting = {index: key for key, (index, _) in self._halfopen.items()}
        for index in sorted([*self._active, *waiting]):
            key = waiting.get(index)
            flow = self._active.get(index) if key is None else self._hatch(key)
            if flow is not None:
                self._close(flow)
        for flow in list(self._closed.values()):
            self._forget(flow)
        self._halves.clear()
        self._raw.clear()
        self._tombs.clear()

    # -- the slow path: new flows, handshakes, ends, tombstones ----------------------------

    def _add_slow(self, seg: Segment, half: _Half | None) -> None:
        flags = seg.flags
        if half is not None:
            half.hand_on_runs()
        if half is None and self._halfopen:
            half = self._hatch_for(seg)
        if half is None:
            tombs = self._tombs
            tomb = tombs.get((seg.src, seg.sport, seg.dst, seg.dport)) if tombs else None
            if tomb is not None:
                if not (flags & SYN and not flags & (ACK | RST)):
                    self._after_close(tomb.flow, tomb, seg)
                    return
                self._forget(tomb.flow)  # a new connection on the 4-tuple
            if flags & (SYN | ACK | FIN | RST) == SYN and not seg.payload_len:
                self._wait_halfopen(seg)
                return
            half = self._new_flow(seg)
        else:
            flow = half.flow
            if (
                flags & SYN
                and not flags & (ACK | RST)
                and not (flow.client is half and seg.seq in (half.syn_isn, half.derived_isn))
            ):
                self._port_reuse(flow, seg)
                half = self._new_flow(seg)
        self._add_to(half, seg)

    def _add_to(self, half: _Half, seg: Segment) -> None:
        """The slow path's work once the segment's side is known."""
        flags = seg.flags
        flow = half.flow
        ts = seg.ts
        self._touch(half, ts)
        if half.packets == 0:
            half.stats.first_frame = seg.frame
            half.first_tsval = seg.tsval
        half.packets += 1
        half.last_frame = seg.frame
        half.frame_no = -1
        half.last_ts = ts
        usual = half.usual_origin() if flags & (FIN | RST) else None
        if not flags & RST:
            if seg.ttl == half.ttl:
                half.ttl_run += 1
            else:
                half.new_ttl(seg.ttl)
            half.ip_id = seg.ip_id
            if half.ip_id_room > 0:
                half.note_ip_id(seg.ip_id)
            half.mac = seg.src_mac
            if flags & SYN:
                self._syn(flow, half, seg)
        n = seg.payload_len
        if flow.state == _NEW and (n or flags & (FIN | RST)):
            self._guess_roles(flow, half, seg)
        if flow.state == _ROLES and (n or flags & (FIN | RST) or half.peer.packets):
            self._start(flow)
        if flow.state != _OPEN:
            return
        half.ready = True
        if flags & ACK and not flags & RST:
            peer = half.peer
            if peer.seen_end >= 0 and (
                0 < ((seg.ack - peer.seen_end) & SEQ_MASK) < MAX_WINDOW
                or (peer.starts and 0 < ((seg.ack - peer.next_seq) & SEQ_MASK) < MAX_WINDOW)
            ):
                peer.acked(seg.ack, seg.frame, ts)
        if n:
            half.payload_packets += 1
        if n and not flags & RST:
            seq = seg.seq + 1 if flags & SYN else seg.seq
            half.push(seq & SEQ_MASK, seg.payload, n, seg.frame, ts)
        if flags & RST:
            self._reset(flow, half, seg, usual)
            return
        if flags & FIN and half.fin is None:
            fin_seq = (seg.seq + n + (1 if flags & SYN else 0)) & SEQ_MASK
            half.set_base(fin_seq)
            direction = half.direction
            origin = PacketOrigin(seg.ttl, seg.ip_id, seg.src_mac)
            end = StreamEnd(
                direction, EndKind.FIN, half.offset(fin_seq), seg.frame, ts, origin, usual
            )
            half.set_fin(end)
        if self._finished is not None:
            self._close_finished()

    def _new_flow(self, seg: Segment, index: int = -1) -> _Half:
        """A new flow whose first segment is `seg`, numbered `index` (-1: the next number)."""
        if len(self._active) >= self._max_flows:
            oldest = next(iter(self._active.values()))
            self._evict(oldest, f"the flow table is full ({self._max_flows} open flows)")
        if index < 0:
            index = self._next_index
            self._next_index += 1
        flow = _Flow(index, seg.frame.capture_id, seg.ts)
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        rkey = reverse_key(key)
        half = _Half(flow, key, self._max_buffered)
        other = _Half(flow, rkey, self._max_buffered)
        half.peer = other
        other.peer = half
        flow.first = half
        self._halves[key] = half
        self._halves[rkey] = other
        try:
            raw = raw_key(seg.src, seg.sport, seg.dst, seg.dport)
        except (OSError, ValueError):
            pass  # not IP addresses: no raw key, `take` never sees such segments
        else:
            n = (len(raw) - 4) // 2
            half.raw = raw
            other.raw = raw[n : 2 * n] + raw[:n] + raw[-2:] + raw[-4:-2]
            self._raw[raw] = half
            self._raw[other.raw] = other
        self._active[index] = flow
        return half

    # -- half-open connections -------------------------------------------------------------

    def _wait_halfopen(self, syn: Segment) -> None:
        """Keep a SYN of a new 4-tuple as a half-open connection, numbered now."""
        if len(self._halfopen) >= self._max_half_open:
            oldest = next(iter(self._halfopen))
            self._evict(
                self._hatch(oldest),
                f"too many half-open connections ({self._max_half_open} waiting)",
            )
        index = self._next_index
        self._next_index += 1
        self._halfopen[(syn.src, syn.sport, syn.dst, syn.dport)] = (index, syn)

    def _hatch_for(self, seg: Segment) -> _Half | None:
        """The side `seg` belongs to, if it is a segment of a half-open connection (which is
        made a flow now); None if it is not."""
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        if key in self._halfopen:
            self._hatch(key)
        else:
            syn_key = reverse_key(key)
            if syn_key not in self._halfopen:
                return None
            self._hatch(syn_key)
        return self._halves.get(key)

    def _hatch(self, key: FlowKey) -> _Flow:
        """Make the half-open connection of SYN key `key` a flow, as if its SYN had just been
        added."""
        index, syn = self._halfopen.pop(key)
        half = self._new_flow(syn, index)
        self._add_to(half, syn)
        return half.flow

    def _syn(self, flow: _Flow, half: _Half, seg: Segment) -> None:
        """Record what a SYN or SYN-ACK says: ISN, MSS, offset 0, and the roles."""
        if half.syn_isn is None:
            half.syn_isn = seg.seq
            half.syn_mss = seg.mss
            half.syn_window = seg.window
            half.syn_wscale = seg.wscale
            half.set_base(seg.seq + 1)
        if seg.flags & ACK:
            peer = half.peer
            if peer.syn_isn is None and peer.derived_isn is None:
                peer.derived_isn = (seg.ack - 1) & SEQ_MASK
                peer.set_base(seg.ack)
            if flow.state == _NEW:
                self._set_roles(flow, peer, handshake=False, guess=None)
        else:
            if half.syn_frame is None:
                half.syn_frame = seg.frame
            # Also when the SYN-ACK was captured first and the flow has not started yet.
            if flow.state == _NEW or (flow.state == _ROLES and flow.client is half):
                self._set_roles(flow, half, handshake=True, guess=None)

    def _guess_roles(self, flow: _Flow, half: _Half, seg: Segment) -> None:
        sender_is_server: bool | None = None
        how = "its port"
        if seg.payload_len and seg.payload and self._role_hint is not None:
            sender_is_server = self._role_hint(seg.payload, seg.sport, seg.dport)
            how = "the first payload"
        if sender_is_server is None:
            sender_is_server = port_says_source_is_server(seg.sport, seg.dport)
            how = "its port"
        client = half.peer if sender_is_server else half
        server = client.peer
        self._set_roles(
            flow,
            client,
            handshake=False,
            guess=f"no handshake captured: {Endpoint(server.ip, server.port)} is taken as the "
            f"server from {how}",
        )

    def _set_roles(self, flow: _Flow, client: _Half, *, handshake: bool, guess: str | None) -> None:
        flow.client = client
        flow.handshake = handshake
        flow.guess = guess
        client.direction = Direction.CLIENT_TO_SERVER
        client.peer.direction = Direction.SERVER_TO_CLIENT
        flow.state = _ROLES

    def _start(self, flow: _Flow) -> None:
        client = flow.client
        assert client is not None
        server = client.peer
        info = FlowInfo(
            capture_id=flow.capture_id,
            index=flow.index,
            client=Endpoint(client.ip, client.port),
            server=Endpoint(server.ip, server.port),
            start_ts=flow.start_ts,
            handshake_seen=flow.handshake,
            syn_frame=client.syn_frame,
            client_isn=client.syn_isn if client.syn_isn is not None else client.derived_isn,
            server_isn=server.syn_isn,
            client_tsval=client.first_tsval,
            server_tsval=server.first_tsval,
            mss=(client.syn_mss, server.syn_mss),
            syn_window=(client.syn_window, server.syn_window),
            wscale=(client.syn_wscale, server.syn_wscale),
        )
        flow.info = info
        flow.state = _OPEN
        sink = self._sink
        for half in (client, server):
            half.on_data = partial(sink.on_data, info)
            half.on_gap = partial(sink.on_gap, info)
            half.on_anomaly = partial(sink.on_anomaly, info)
            half.on_fin = partial(self._fin_released, half)
            half.partner = half.peer
            half.ready = half.packets > 0
        sink.on_flow_start(info)
        if flow.guess is not None:
            first = flow.first
            assert first is not None and first.stats.first_frame is not None
            sink.on_anomaly(
                info,
                Anomaly(
                    FlowAnomaly.MIDSTREAM_START,
                    flow.guess,
                    (first.stats.first_frame,),
                    flow.start_ts,
                ),
            )

    def _ensure_started(self, flow: _Flow) -> FlowInfo:
        if flow.state == _NEW:
            first = flow.first
            assert first is not None
            by_port = port_says_source_is_server(first.port, first.peer.port)
            client = first.peer if by_port else first
            self._set_roles(
                flow,
                client,
                handshake=False,
                guess=f"no handshake captured: {Endpoint(client.peer.ip, client.peer.port)} is "
                "taken as the server from its port",
            )
        if flow.state == _ROLES:
            self._start(flow)
        assert flow.info is not None
        return flow.info

    # -- ends ------------------------------------------------------------------------------

    def _fin_released(self, half: _Half, end: StreamEnd) -> None:
        """A FIN's turn came in its stream."""
        flow = half.flow
        half.stats.end = end
        flow.fins += 1
        if flow.fins == 2:
            self._finished = flow
        if flow.end_kind is None:
            flow.end_kind = EndKind.FIN
            flow.end_frame = end.frame
        assert flow.info is not None
        self._sink.on_end(flow.info, end)

    def _reset(self, flow: _Flow, half: _Half, seg: Segment, usual: PacketOrigin | None) -> None:
        half.set_base(seg.seq)
        direction = half.direction
        assert flow.client is not None
        end = StreamEnd(
            direction,
            EndKind.RST,
            half.offset(seg.seq),
            seg.frame,
            seg.ts,
            PacketOrigin(seg.ttl, seg.ip_id, seg.src_mac),
            usual,
        )
        flow.client.flush(seg.ts)
        flow.client.peer.flush(seg.ts)
        half.stats.end = end
        flow.end_kind = EndKind.RST
        flow.end_frame = seg.frame
        assert flow.info is not None
        self._sink.on_end(flow.info, end)
        self._close(flow)

    def _touch(self, half: _Half, ts: float) -> None:
        """Move the flow to the recent end of the LRU order (at most once per `_lru_step`)."""
        half.lru_due = ts + self._lru_step
        flow = half.flow
        flow.touched = ts
        self._active.move_to_end(flow.index)

    def _close_finished(self) -> None:
        flow = self._finished
        self._finished = None
        if flow is not None and flow.state == _OPEN:
            self._close(flow)

    def _close(self, flow: _Flow, *, evicted: bool = False) -> None:
        """Hand the flow's counters on and forget it (FIN/RST-closed flows linger as tombstones)."""
        info = self._ensure_started(flow)
        client = flow.client
        assert client is not None
        server = client.peer
        last_ts = flow.last_ts()
        client.flush(last_ts)
        server.flush(last_ts)
        if self._finished is flow:
            self._finished = None
        if flow.state != _OPEN:
            return
        flow.state = _CLOSED
        client.ready = server.ready = False
        client.sync_stats()
        server.sync_stats()
        self._active.pop(flow.index, None)
        linger = not evicted and (flow.end_kind is EndKind.RST or flow.fins == 2)
        if linger:
            flow.closed_ts = last_ts
            self._closed[flow.index] = flow
            if len(self._closed) > self._max_flows:
                _, oldest = self._closed.popitem(last=False)
                self._forget(oldest)
        stats = FlowStats(client.stats, server.stats, last_ts, evicted)
        self._sink.on_flow_closed(info, stats)
        tombs = (_Tomb(client), _Tomb(server)) if linger else ()
        self._drop_keys(flow)
        if tombs and flow.index in self._closed:
            flow.tombs = tombs
            for tomb in tombs:
                self._tombs[tomb.key] = tomb

    def _evict(self, flow: _Flow, why: str) -> None:
        info = self._ensure_started(flow)
        first = flow.first
        assert first is not None
        first.hand_on_runs()
        seen = [f for f in (first.latest_frame(), first.peer.latest_frame()) if f is not None]
        self._sink.on_anomaly(
            info,
            Anomaly(FlowAnomaly.FLOW_EVICTED, f"closed early: {why}", (max(seen),), flow.last_ts()),
        )
        self._close(flow, evicted=True)
        self._active.pop(flow.index, None)

    def _port_reuse(self, flow: _Flow, seg: Segment) -> None:
        info = self._ensure_started(flow)
        self._sink.on_anomaly(
            info,
            Anomaly(
                FlowAnomaly.PORT_REUSE,
                f"a new SYN (ISN {seg.seq}) from {Endpoint(seg.src, seg.sport)} reuses the 4-tuple "
                f"of flow {flow.index}, which was still open: it is closed and a new flow begins",
                (seg.frame,),
                seg.ts,
            ),
        )
        if flow.state == _OPEN:
            self._close(flow)

    def _after_close(self, flow: _Flow, half: _Tomb, seg: Segment) -> None:
        """A segment for a connection already closed by FIN or RST."""
        n = seg.payload_len
        if not n or flow.ignored or flow.info is None:
            return
        frames = (flow.end_frame, seg.frame) if flow.end_frame is not None else (seg.frame,)
        if flow.end_kind is EndKind.RST:
            self._sink.on_anomaly(
                flow.info,
                Anomaly(
                    FlowAnomaly.DATA_AFTER_RST,
                    f"{n} payload bytes after the connection was reset",
                    frames,
                    seg.ts,
                    half.direction,
                ),
            )
            return
        if half.base is None or half.fin_frame is None:
            return
        start = half.offset(seg.seq)
        if start + n > half.fin_off:
            first = max(start, half.fin_off)
            self._sink.on_anomaly(
                flow.info,
                Anomaly(
                    FlowAnomaly.DATA_AFTER_FIN,
                    f"{start + n - first} bytes at stream offsets {first}..{start + n} after the "
                    f"FIN at offset {half.fin_off}, once the connection was closed",
                    (half.fin_frame, seg.frame),
                    seg.ts,
                    half.direction,
                ),
            )

    # -- housekeeping ----------------------------------------------------------------------

    def _sweep(self, now: float) -> None:
        """Close flows idle longer than the timeout; forget tombstones older than the linger."""
        self._next_sweep = now + self._sweep_every
        limit = now - self._idle_timeout
        idle: list[_Flow] = []
        for flow in self._active.values():
            if flow.touched > limit:
                break  # this one and all after it had a packet since `limit`
            if flow.last_ts() <= limit:
                idle.append(flow)
        for flow in idle:
            if flow.state == _CLOSED:
                continue
            last_ts = flow.last_ts()
            self._evict(
                flow, f"idle for {now - last_ts:.1f} s (idle timeout {self._idle_timeout:g} s)"
            )
        waiting = self._halfopen
        while waiting:
            key, (_, syn) = next(iter(waiting.items()))
            if syn.ts > limit:
                break  # half-open connections are kept in capture order
            # One at a time: made a flow and closed at once, so memory stays that of a SYN.
            self._evict(
                self._hatch(key),
                f"idle for {now - syn.ts:.1f} s (idle timeout {self._idle_timeout:g} s)",
            )
        closed = self._closed
        limit = now - self._linger
        while closed:
            flow = next(iter(closed.values()))
            if flow.closed_ts > limit:
                break
            self._forget(flow)

    def _forget(self, flow: _Flow) -> None:
        """Drop a tombstone."""
        self._closed.pop(flow.index, None)
        self._drop_keys(flow)

    def _drop_keys(self, flow: _Flow) -> None:
        """Forget the flow's sides (or its tombstones); break the reference cycles so that memory
        is freed at once."""
        tombs = self._tombs
        for tomb in flow.tombs:
            if tombs.get(tomb.key) is tomb:
                del tombs[tomb.key]
        flow.tombs = ()
        first = flow.first
        if first is None:
            return
        halves = self._halves
        raws = self._raw
        pair = (first, first.peer)
        for half in pair:
            if halves.get(half.key) is half:
                del halves[half.key]
            if half.raw is not None and raws.get(half.raw) is half:
                del raws[half.raw]
        flow.first = flow.client = None
        for half in pair:
            half.release()
            half.on_fin = _no_fin
            half.partner = None
            del half.peer, half.flow
