"""Puts dialogues on the wire: TCP connections crossing a firewall, captured on both sides.

`simulate` plays each connection's `Dialogue` between a sending MTA (outside) and a receiving
MTA (inside) through a firewall that NATs both ends, randomizes the ISN in both directions,
clamps the MSS, forwards segments with a few ms of delay, rewrites payload in place as the
dialogue says, and forges RSTs to both ends when it drops a segment. Both hosts run a
Linux-like stack: TCP timestamps, window scaling, SACK-permitted, delayed ACKs, an ACK every
second full segment, one segment per MSS. The client-side capture is taken on the sending MTA,
the server-side capture on the receiving MTA, whose clock runs ahead and whose NIC merges
back-to-back segments (GRO), so the two sides cut the same stream at different places.
`pcap_file` encodes frames as Ethernet/IPv4/TCP with valid checksums in a microsecond pcap.

Content is not made here (see `_dialogues`), and nothing is read back.
"""

from __future__ import annotations

import enum
import functools
import heapq
import ipaddress
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from _dialogues import Chunk, Dialogue, Peer

# --- Wire facts ----------------------------------------------------------------------------

PCAP_MAGIC_US = 0xA1B2C3D4
"""Classic pcap, microsecond timestamps (pcap file format, draft-ietf-opsawg-pcap §4)."""
PCAP_VERSION = (2, 4)
PCAP_SNAPLEN = 262144
LINKTYPE_ETHERNET = 1
ETHERTYPE_IPV4 = 0x0800
IPV4_HEADER_LEN = 20
"""IPv4 header without options (RFC 791 §3.1)."""
IPV4_DONT_FRAGMENT = 0x4000
IPPROTO_TCP = 6
TCP_HEADER_LEN = 20
"""TCP header without options (RFC 9293 §3.1)."""

# TCP flag bits, RFC 9293 §3.1.
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10

# TCP option kinds: RFC 9293 §3.2 (EOL, NOP, MSS), RFC 7323 (window scale, timestamps),
# RFC 2018 (SACK permitted).
OPT_NOP = 1
OPT_MSS = 2
OPT_WSCALE = 3
OPT_SACK_PERMITTED = 4
OPT_TIMESTAMPS = 8
TIMESTAMPS_SPACE = 12
"""NOP, NOP, kind 8 length 10: what a timestamp option costs every segment (RFC 7323 App. A)."""

SEQ_MOD = 2**32

ENDPOINT_MSS = 1460
"""MSS both MTAs announce: Ethernet MTU 1500 minus 40 bytes of IPv4 and TCP headers."""
CLAMPED_MSS = 1380
"""What the firewall rewrites the SYN/SYN-ACK MSS option to (PIX/ASA `sysopt connection
tcpmss` default)."""
SEGMENT_PAYLOAD = CLAMPED_MSS - TIMESTAMPS_SPACE
"""Payload of a full segment: the clamped MSS less the timestamp option (Linux counts options)."""
INITIAL_WINDOW = 10
"""Initial congestion window in segments (RFC 6928); every write must fit in it."""
SYN_WINDOW = 64240
"""Linux's initial receive window for a 1460-byte MSS (44 segments)."""
WINDOW_SCALE = 7
DELAYED_ACK_US = 40_000
"""Linux TCP_DELACK_MIN: a lone small segment is acknowledged after 40 ms."""
ACK_TURNAROUND_US = 6
"""Time a host takes to answer with an immediate ACK."""
WIRE_US_PER_BYTE = 0.008
"""Serialization time at 1 Gbit/s."""
GRO_WINDOW_US = 40
"""Segments arriving closer than this are merged by the receiving NIC (two at most here)."""


class Side(enum.StrEnum):
    OUTSIDE = "outside"
    """Between the sending MTA and the firewall (the client-side capture)."""
    INSIDE = "inside"
    """Between the firewall and the receiving MTA (the server-side capture)."""


@dataclass(frozen=True, slots=True)
class Topology:
    """Addresses, hops and clocks of the two capture points."""

    client_ip: str = "198.51.100.25"
    client_mac: bytes = bytes.fromhex("525400a1b2c3")
    server_public_ip: str = "203.0.113.10"
    """The receiving MTA's public address (static NAT on the firewall)."""
    server_ip: str = "192.0.2.25"
    server_mac: bytes = bytes.fromhex("5254005e0025")
    nat_client_ip: str = "192.0.2.254"
    """The firewall's inside address: every client is PATed to it."""
    fw_outside_mac: bytes = bytes.fromhex("001ef78a1001")
    fw_inside_mac: bytes = bytes.fromhex("001ef78a1002")
    endpoint_ttl: int = 64
    forged_ttl: int = 255
    """TTL of the RSTs the firewall makes up."""
    clock_offset_us: int = 37_412_638
    """Server-side capture clock minus client-side capture clock."""
    outside_link_us: tuple[int, int] = (1150, 1450)
    """One-way delay between the sending MTA and the firewall: each connection and direction
    draws its own from this range, then every packet adds up to `jitter_us`."""
    firewall_us: tuple[int, int] = (420, 520)
    """Time the firewall holds a packet (inspection), drawn the same way."""
    inside_link_us: tuple[int, int] = (80, 110)
    jitter_us: int = 25


TOPOLOGY = Topology()


@dataclass(frozen=True, slots=True)
class Connection:
    """One TCP connection to play: its script, when the client sends SYN, and its ports."""

    dialogue: Dialogue
    start_us: int
    """Client SYN time, microseconds since the epoch (client-side clock)."""
    client_port: int
    """Client source port on the outside."""
    nat_port: int
    """The port the firewall maps it to on the inside."""
    server_port: int = 25


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of one capture, before its IP-ID is known."""

    ts_us: int
    order: int
    pid: int
    """Identity of the packet: both sides' copies of one packet share it (and its IP-ID)."""
    conn: int
    c2s: bool
    offset: int
    """Stream offset of the first payload byte (or of the FIN/RST) on this side; -1 for a SYN."""
    src_mac: bytes
    dst_mac: bytes
    src_ip: str
    dst_ip: str
    ttl: int
    dont_fragment: bool
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    options: bytes
    payload: bytes
    tsval: int | None


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """Where a frame of a written capture sits in its connection (frame numbers are 1-based)."""

    number: int
    conn: int
    """Index of the connection in the order given to `simulate`."""
    from_client: bool
    offset: int
    length: int
    flags: int


@dataclass(frozen=True, slots=True)
class CapturePair:
    client_side: bytes
    """The outside pcap file."""
    server_side: bytes
    """The inside pcap file."""
    client_frames: tuple[FrameInfo, ...]
    server_frames: tuple[FrameInfo, ...]


# --- Encoding ------------------------------------------------------------------------------


def internet_checksum(data: bytes) -> int:
    """RFC 1071 ones' complement sum."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_options(
    *, mss: int | None = None, tsval: int | None = None, tsecr: int = 0, syn: bool = False
) -> bytes:
    """Linux's layouts: SYN = MSS, SACK-permitted, timestamps, NOP, window scale;
    others = NOP, NOP, timestamps; nothing when `tsval` is None and it is not a SYN."""
    ts = b"" if tsval is None else struct.pack("!BBII", OPT_TIMESTAMPS, 10, tsval, tsecr)
    if syn:
        if mss is None:
            raise ValueError("a SYN carries an MSS")
        return (
            struct.pack("!BBH", OPT_MSS, 4, mss)
            + bytes([OPT_SACK_PERMITTED, 2])
            + ts
            + bytes([OPT_NOP, OPT_WSCALE, 3, WINDOW_SCALE])
        )
    return bytes([OPT_NOP, OPT_NOP]) + ts if ts else b""


def encode_frame(frame: Frame, ip_id: int) -> bytes:
    """Ethernet II + IPv4 + TCP with correct IP and TCP checksums."""
    src = ipaddress.IPv4Address(frame.src_ip).packed
    dst = ipaddress.IPv4Address(frame.dst_ip).packed
    offset_words = (TCP_HEADER_LEN + len(frame.options)) // 4
    tcp = (
        struct.pack(
            "!HHIIBBHHH",
            frame.sport,
            frame.dport,
            frame.seq,
            frame.ack,
            offset_words << 4,
            frame.flags,
            frame.window,
            0,
            0,
        )
        + frame.options
        + frame.payload
    )
    pseudo = src + dst + struct.pack("!BBH", 0, IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", internet_checksum(pseudo + tcp)) + tcp[18:]
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        IPV4_HEADER_LEN + len(tcp),
        ip_id,
        IPV4_DONT_FRAGMENT if frame.dont_fragment else 0,
        frame.ttl,
        IPPROTO_TCP,
        0,
        src,
        dst,
    )
    header = header[:10] + struct.pack("!H", internet_checksum(header)) + header[12:]
    ether = frame.dst_mac + frame.src_mac + struct.pack("!H", ETHERTYPE_IPV4)
    return ether + header + tcp


def pcap_file(records: Sequence[tuple[int, bytes]]) -> bytes:
    """A little-endian microsecond pcap of (timestamp in µs, frame bytes) records."""
    out = [
        struct.pack("<IHHiIII", PCAP_MAGIC_US, *PCAP_VERSION, 0, 0, PCAP_SNAPLEN, LINKTYPE_ETHERNET)
    ]
    for ts_us, data in records:
        seconds, micros = divmod(ts_us, 1_000_000)
        out.append(struct.pack("<IIII", seconds, micros, len(data), len(data)) + data)
    return b"".join(out)


# --- Simulation ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Host:
    """TCP state of one endpoint of one connection; offsets are in its own side's numbering."""

    peer: Peer
    side: Side
    isn: int
    ts_base: int
    established_us: int | None = None
    snd_nxt: int = 0
    rcv_nxt: int = 0
    ts_recent: int = 0
    received: int = 0
    unacked: int = 0
    unacked_full: int = 0
    delack_token: int = 0
    delack_armed: bool = False
    closed: bool = False
    fin_sent: bool = False

    def window(self) -> int:
        return min(0xFFFF, (SYN_WINDOW + 16 + min(self.received, 1 << 20)) >> WINDOW_SCALE)

    def tsval(self, t_us: int) -> int:
        return (self.ts_base + t_us // 1000) % SEQ_MOD


@dataclass(slots=True)
class _Packet:
    """A packet as its sender emitted it, before the firewall."""

    pid: int
    sender: Peer
    flags: int
    offset: int
    """Sequence offset in the sender's own side (-1 for a SYN)."""
    ack_offset: int | None
    payload: bytes
    chunk: Chunk | None
    tsval: int
    tsecr: int
    window: int
    mss: int | None


@dataclass(slots=True)
class _Direction:
    """Offset translation of one direction's stream between the sender's and receiver's side."""

    forward: dict[int, int] = field(default_factory=lambda: {0: 0})
    back: dict[int, int] = field(default_factory=lambda: {0: 0})
    high_sender: int = 0
    """End of what the firewall forwarded, in sender-side offsets."""
    high_receiver: int = 0


class _Run:
    """Plays one connection; appends frames to both sides' lists."""

    def __init__(
        self,
        index: int,
        conn: Connection,
        topo: Topology,
        rng: random.Random,
        pids: Callable[[str, int], int],
        order: Callable[[], int],
    ) -> None:
        self.index = index
        self.conn = conn
        self.topo = topo
        self.rng = rng
        self.pids = pids
        self.order = order
        self.dialogue = conn.dialogue
        self.frames: dict[Side, list[Frame]] = {Side.OUTSIDE: [], Side.INSIDE: []}
        self.hosts = {
            Peer.CLIENT: _Host(Peer.CLIENT, Side.OUTSIDE, rng.getrandbits(32), rng.getrandbits(32)),
            Peer.SERVER: _Host(Peer.SERVER, Side.INSIDE, rng.getrandbits(32), rng.getrandbits(32)),
        }
        # ISN randomization: a constant offset per direction between the sides.
        client_isn, server_isn = self.hosts[Peer.CLIENT].isn, self.hosts[Peer.SERVER].isn
        self.isn = {
            (Peer.CLIENT, Side.OUTSIDE): client_isn,
            (Peer.CLIENT, Side.INSIDE): (client_isn + rng.getrandbits(32)) % SEQ_MOD,
            (Peer.SERVER, Side.INSIDE): server_isn,
            (Peer.SERVER, Side.OUTSIDE): (server_isn + rng.getrandbits(32)) % SEQ_MOD,
        }
        self.dirs = {Peer.CLIENT: _Direction(), Peer.SERVER: _Direction()}
        """Keyed by the sender of the direction."""
        self.base_delay = {
            (hop, toward): rng.randint(*bounds)
            for hop, bounds in (
                ("outside", topo.outside_link_us),
                ("firewall", topo.firewall_us),
                ("inside", topo.inside_link_us),
            )
            for toward in Peer
        }
        self.last_arrival: dict[tuple[str, Peer], int] = {}
        self.reset_at: int | None = None
        self.heap: list[tuple[int, int, Callable[[int], None]]] = []
        self.tick = 0
        self.next_write = 0
        self.sent_at: dict[int, int] = {}
        self.arrived_at: dict[int, int] = {}
        self.chunk_write: dict[int, tuple[int, bool]] = {}
        """pid of a data packet -> (write index, is the write's last segment)."""

    # -- scheduling --

    def at(self, t: int, action: Callable[[int], None]) -> None:
        self.tick += 1
        heapq.heappush(self.heap, (t, self.tick, action))

    def run(self) -> None:
        self.at(self.conn.start_us, self.client_syn)
        while self.heap:
            t, _, action = heapq.heappop(self.heap)
            action(t)

    def hop(self, name: str, toward: Peer, t: int, size: int) -> int:
        """When a packet of `size` bytes entering hop `name` at `t` leaves it: a per-direction
        delay plus jitter, first in first out, never closer than its serialization time."""
        key = (name, toward)
        gap = max(1, round(size * WIRE_US_PER_BYTE))
        out = max(
            t + self.base_delay[key] + self.rng.randint(0, self.topo.jitter_us),
            self.last_arrival.get(key, 0) + gap,
        )
        self.last_arrival[key] = out
        return out

    def link_name(self, side: Side) -> str:
        return "outside" if side is Side.OUTSIDE else "inside"

    # -- addressing --

    def addresses(self, side: Side, to: Peer) -> tuple[bytes, bytes, str, str, int, int]:
        """(src_mac, dst_mac, src_ip, dst_ip, sport, dport) of a packet toward `to` on `side`."""
        t = self.topo
        c = self.conn
        if side is Side.OUTSIDE:
            client = (t.client_mac, t.client_ip, c.client_port)
            server = (t.fw_outside_mac, t.server_public_ip, c.server_port)
        else:
            client = (t.fw_inside_mac, t.nat_client_ip, c.nat_port)
            server = (t.server_mac, t.server_ip, c.server_port)
        src, dst = (client, server) if to is Peer.SERVER else (server, client)
        return src[0], dst[0], src[1], dst[1], src[2], dst[2]

    def seq_abs(self, sender: Peer, side: Side, offset: int) -> int:
        return (self.isn[(sender, side)] + 1 + offset) % SEQ_MOD

    def record(
        self,
        side: Side,
        t: int,
        pkt: _Packet,
        *,
        offset: int,
        ack_offset: int | None,
        payload: bytes,
        mss: int | None,
        ttl: int,
        forged: bool = False,
    ) -> None:
        # A forged packet gets the addresses (and the firewall MAC) of the end it impersonates.
        to = Peer.SERVER if pkt.sender is Peer.CLIENT else Peer.CLIENT
        src_mac, dst_mac, src_ip, dst_ip, sport, dport = self.addresses(side, to)
        ack = 0 if ack_offset is None else self.seq_abs(to, side, ack_offset)
        syn = bool(pkt.flags & SYN)
        options = b"" if forged else tcp_options(mss=mss, tsval=pkt.tsval, tsecr=pkt.tsecr, syn=syn)
        self.frames[side].append(
            Frame(
                ts_us=t,
                order=self.order(),
                pid=pkt.pid,
                conn=self.index,
                c2s=pkt.sender is Peer.CLIENT,
                offset=offset,
                src_mac=src_mac,
                dst_mac=dst_mac,
                src_ip=src_ip,
                dst_ip=dst_ip,
                ttl=ttl,
                dont_fragment=not forged,
                sport=sport,
                dport=dport,
                seq=self.seq_abs(pkt.sender, side, offset),
                ack=ack,
                flags=pkt.flags,
                window=pkt.window,
                options=options,
                payload=payload,
                tsval=None if forged else pkt.tsval,
            )
        )

    # -- sending --

    def emit(
        self,
        t: int,
        sender: Peer,
        flags: int,
        payload: bytes = b"",
        chunk: Chunk | None = None,
        write: tuple[int, bool] | None = None,
    ) -> None:
        host = self.hosts[sender]
        syn = bool(flags & SYN)
        pkt = _Packet(
            pid=self.pids(sender.value, t),
            sender=sender,
            flags=flags,
            offset=-1 if syn else host.snd_nxt,
            ack_offset=host.rcv_nxt if flags & ACK else None,
            payload=payload,
            chunk=chunk,
            tsval=host.tsval(t),
            tsecr=host.ts_recent,
            window=SYN_WINDOW if syn else host.window(),
            mss=ENDPOINT_MSS if syn else None,
        )
        if write is not None:
            self.chunk_write[pkt.pid] = write
        if syn:
            host.snd_nxt = 0
        else:
            host.snd_nxt += len(payload) + (1 if flags & FIN else 0)
        if flags & ACK:
            host.unacked = host.unacked_full = 0
            host.delack_armed = False
        self.record(
            host.side,
            t,
            pkt,
            offset=pkt.offset,
            ack_offset=pkt.ack_offset,
            payload=payload,
            mss=pkt.mss,
            ttl=self.topo.endpoint_ttl,
        )
        toward = Peer.SERVER if sender is Peer.CLIENT else Peer.CLIENT
        arrive = self.hop(self.link_name(host.side), toward, t, len(payload))
        self.at(arrive, lambda now: self.firewall(now, pkt))

    def client_syn(self, t: int) -> None:
        self.emit(t, Peer.CLIENT, SYN)

    # -- the firewall --

    def firewall(self, t: int, pkt: _Packet) -> None:
        if self.reset_at is not None:
            return  # the connection is gone: the packet dies here
        if pkt.chunk is not None and pkt.chunk.delivered is None:
            self.forge_resets(t)
            return
        sender = pkt.sender
        receiver = Peer.SERVER if sender is Peer.CLIENT else Peer.CLIENT
        side = self.hosts[receiver].side
        direction = self.dirs[sender]
        reverse = self.dirs[receiver]
        offset = -1 if pkt.flags & SYN else direction.forward[pkt.offset]
        payload = (
            pkt.payload if pkt.chunk is None or pkt.chunk.delivered is None else pkt.chunk.delivered
        )
        end_sender = pkt.offset + len(pkt.payload) + (1 if pkt.flags & FIN else 0)
        end_receiver = offset + len(payload) + (1 if pkt.flags & FIN else 0)
        if not pkt.flags & SYN and end_sender != pkt.offset:
            direction.forward[end_sender] = end_receiver
            direction.back[end_receiver] = end_sender
            direction.high_sender = max(direction.high_sender, end_sender)
            direction.high_receiver = max(direction.high_receiver, end_receiver)
        ack_offset = None if pkt.ack_offset is None else reverse.back[pkt.ack_offset]
        depart = self.hop("firewall", receiver, t, len(payload))
        arrive = self.hop(self.link_name(side), receiver, depart, len(payload))
        mss = None if pkt.mss is None else min(pkt.mss, CLAMPED_MSS)
        self.record(
            side,
            arrive,
            pkt,
            offset=offset,
            ack_offset=ack_offset,
            payload=payload,
            mss=mss,
            ttl=self.topo.endpoint_ttl - 1,
        )
        self.at(arrive, lambda now: self.receive(now, receiver, pkt, len(payload)))

    def forge_resets(self, t: int) -> None:
        """Drop the connection: a RST to each end, each pretending to come from the other."""
        self.reset_at = t
        for victim in (Peer.CLIENT, Peer.SERVER):
            impostor = Peer.SERVER if victim is Peer.CLIENT else Peer.CLIENT
            side = self.hosts[victim].side
            # The impostor's sequence and the victim's acknowledged data, on the victim's side,
            # as far as the firewall forwarded them.
            seq_off = self.dirs[impostor].high_receiver
            ack_off = self.dirs[victim].high_sender
            pkt = _Packet(
                pid=self.pids("firewall", t),
                sender=impostor,
                flags=RST | ACK,
                offset=seq_off,
                ack_offset=ack_off,
                payload=b"",
                chunk=None,
                tsval=0,
                tsecr=0,
                window=0,
                mss=None,
            )
            depart = self.hop("firewall", victim, t, 0)
            arrive = self.hop(self.link_name(side), victim, depart, 0)
            self.record(
                side,
                arrive,
                pkt,
                offset=seq_off,
                ack_offset=ack_off,
                payload=b"",
                mss=None,
                ttl=self.topo.forged_ttl,
                forged=True,
            )
            self.at(arrive, functools.partial(self.on_reset, victim))

    def on_reset(self, victim: Peer, _now: int) -> None:
        self.hosts[victim].closed = True

    # -- receiving --

    def receive(self, t: int, me: Peer, pkt: _Packet, length: int) -> None:
        host = self.hosts[me]
        if host.closed:
            return
        if pkt.flags & SYN:
            host.ts_recent = pkt.tsval
            if me is Peer.SERVER:
                self.at(t + 30, lambda now: self.emit(now, Peer.SERVER, SYN | ACK))
            else:
                host.established_us = t + ACK_TURNAROUND_US
                self.at(t + ACK_TURNAROUND_US, lambda now: self.emit(now, Peer.CLIENT, ACK))
                self.at(t + ACK_TURNAROUND_US, self.schedule_writes)
            return
        if me is Peer.SERVER and host.established_us is None:
            host.established_us = t
            self.schedule_writes(t)
        if length:
            host.rcv_nxt += length
            host.received += length
            host.ts_recent = pkt.tsval
            host.unacked += 1
            if length >= SEGMENT_PAYLOAD:
                host.unacked_full += 1
            if host.unacked_full >= 2:
                self.at(t + ACK_TURNAROUND_US, lambda now: self.ack_if_due(now, me))
            elif not host.delack_armed:
                host.delack_armed = True
                host.delack_token += 1
                token = host.delack_token
                self.at(t + DELAYED_ACK_US, lambda now: self.delayed_ack(now, me, token))
            write = self.chunk_write.get(pkt.pid)
            if write is not None and write[1]:
                self.arrived_at[write[0]] = t
                self.schedule_writes(t)
        if pkt.flags & FIN:
            host.rcv_nxt += 1
            host.ts_recent = pkt.tsval
            if host.fin_sent:
                self.at(t + ACK_TURNAROUND_US, lambda now: self.emit(now, me, ACK))
            else:
                if self.next_write < len(self.dialogue.writes):
                    raise ValueError("the side that closes second must have nothing left to say")
                host.fin_sent = True
                wait = self.rng.randint(80, 300)
                self.at(t + wait, lambda now: self.emit(now, me, FIN | ACK))

    def ack_if_due(self, t: int, me: Peer) -> None:
        host = self.hosts[me]
        if not host.closed and host.unacked:
            self.emit(t, me, ACK)

    def delayed_ack(self, t: int, me: Peer, token: int) -> None:
        host = self.hosts[me]
        if host.delack_armed and host.delack_token == token:
            host.delack_armed = False
            self.ack_if_due(t, me)

    # -- the dialogue --

    def schedule_writes(self, t: int) -> None:
        """Schedule the next write (or the close) once everything before it has happened."""
        writes = self.dialogue.writes
        i = self.next_write
        if i > len(writes):
            return  # the close is already scheduled
        if i < len(writes):
            sender = writes[i].sender
            think = writes[i].think_us
        elif self.dialogue.closer is not None:
            sender = self.dialogue.closer
            think = self.dialogue.close_think_us
        else:
            return
        host = self.hosts[sender]
        if host.established_us is None:
            return
        ready = host.established_us
        for j in range(i):
            done = self.sent_at if writes[j].sender is sender else self.arrived_at
            if j not in done:
                return
            ready = max(ready, done[j])
        self.next_write += 1
        if i < len(writes):
            self.at(ready + think, lambda now: self.do_write(now, i))
        else:
            self.at(ready + think, lambda now: self.close(now, sender))

    def do_write(self, t: int, i: int) -> None:
        write = self.dialogue.writes[i]
        host = self.hosts[write.sender]
        if host.closed:
            return
        if len(write.chunks) > INITIAL_WINDOW:
            raise ValueError("a write must fit in the initial congestion window")
        last = len(write.chunks) - 1
        for k, chunk in enumerate(write.chunks):
            flags = ACK | (PSH if k == last else 0)
            self.emit(t, write.sender, flags, chunk.sent, chunk, (i, k == last))
            if k != last:
                t += max(1, round(len(chunk.sent) * WIRE_US_PER_BYTE)) + 1
        self.sent_at[i] = t
        self.schedule_writes(t)

    def close(self, t: int, sender: Peer) -> None:
        host = self.hosts[sender]
        if host.closed:
            return
        host.fin_sent = True
        self.emit(t, sender, FIN | ACK)


def _gro(frames: list[Frame]) -> list[Frame]:
    """Merge pairs of back-to-back client data segments as the receiving NIC does (GRO)."""
    out: list[Frame] = []
    last_of_conn: dict[int, int] = {}
    merged_into: set[int] = set()
    for frame in frames:
        j = last_of_conn.get(frame.conn)
        if (
            j is not None
            and j not in merged_into
            and frame.c2s
            and frame.payload
            and out[j].c2s
            and len(out[j].payload) == SEGMENT_PAYLOAD
            and not out[j].flags & (PSH | FIN | RST | SYN)
            and not frame.flags & (FIN | RST | SYN)
            and frame.ts_us - out[j].ts_us <= GRO_WINDOW_US
            and frame.seq == (out[j].seq + len(out[j].payload)) % SEQ_MOD
            and frame.tsval == out[j].tsval
            and frame.ack == out[j].ack
            and frame.ttl == out[j].ttl
        ):
            out[j] = replace(
                out[j],
                payload=out[j].payload + frame.payload,
                flags=out[j].flags | frame.flags,
                window=frame.window,
            )
            merged_into.add(j)
            continue
        last_of_conn[frame.conn] = len(out)
        out.append(frame)
    return out


def simulate(
    connections: Sequence[Connection], rng: random.Random, topo: Topology = TOPOLOGY
) -> CapturePair:
    """Play every connection; return the two capture files."""
    sent: list[tuple[str, int, int]] = []

    def new_pid(host: str, t: int) -> int:
        sent.append((host, t, len(sent)))
        return len(sent) - 1

    counter = 0

    def next_order() -> int:
        nonlocal counter
        counter += 1
        return counter

    outside: list[Frame] = []
    inside: list[Frame] = []
    for index, conn in enumerate(connections):
        run = _Run(index, conn, topo, rng, new_pid, next_order)
        run.run()
        outside += run.frames[Side.OUTSIDE]
        inside += run.frames[Side.INSIDE]

    # IP-IDs: one counter per host, in the order the host sent its packets.
    ip_ids: dict[int, int] = {}
    starts = {host: rng.getrandbits(16) for host in ("client", "server", "firewall")}
    for host, _, pid in sorted(sent, key=lambda s: (s[1], s[2])):
        ip_ids[pid] = starts[host]
        starts[host] = (starts[host] + 1) & 0xFFFF

    outside.sort(key=lambda f: (f.ts_us, f.order))
    inside = _gro(sorted(inside, key=lambda f: (f.ts_us, f.order)))
    client_side = pcap_file([(f.ts_us, encode_frame(f, ip_ids[f.pid])) for f in outside])
    server_side = pcap_file(
        [(f.ts_us + topo.clock_offset_us, encode_frame(f, ip_ids[f.pid])) for f in inside]
    )
    return CapturePair(client_side, server_side, _index(outside), _index(inside))


def _index(frames: Sequence[Frame]) -> tuple[FrameInfo, ...]:
    return tuple(
        FrameInfo(n, f.conn, f.c2s, f.offset, len(f.payload), f.flags)
        for n, f in enumerate(frames, start=1)
    )
