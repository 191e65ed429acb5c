"""The per-packet TCP facts tshark prints with `-T fields`: the column table and one row's parse.

Every TCP segment of the capture becomes one `TcpRow`: where it is, who sent it, its flags and
relative sequence number, what its IP and link headers say about the sender (TTL, IP-ID, MAC),
its TCP options, and Wireshark's own sequence analysis (retransmission, out of order, lost
segment before it). The columns are declared once here; `tshark` runs the pass and `tshark_flow`
keeps the counters. No SMTP here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

AGGREGATOR: Final = ","
"""Separator tshark puts between several occurrences of one field (tunnels: inner and outer IP)."""

FIELDS: Final[tuple[str, ...]] = (
    "frame.number",
    "frame.time_epoch",
    "frame.interface_id",
    "frame.protocols",
    "tcp.stream",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "tcp.seq",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "tcp.len",
    "ip.ttl",
    "ipv6.hlim",
    "ip.id",
    "eth.src",
    "tcp.options.timestamp.tsval",
    "tcp.options.mss_val",
    "tcp.analysis.retransmission",
    "tcp.analysis.out_of_order",
    "tcp.analysis.lost_segment",
)
"""Columns of the fields pass, in order. `tcp.seq` is relative (0 = the SYN, 1 = the first byte
after it, or the first byte seen when the handshake was not captured)."""

DISPLAY_FILTER: Final = "tcp && !icmp && !icmpv6"
"""Segments of real connections; TCP headers quoted inside ICMP errors are not segments."""


def fields_arguments() -> list[str]:
    """The tshark arguments that print one tab-separated `FIELDS` row per TCP segment."""
    args = ["-T", "fields", "-E", "occurrence=a", "-E", f"aggregator={AGGREGATOR}"]
    for name in FIELDS:
        args += ["-e", name]
    return args


@dataclass(frozen=True, slots=True)
class TcpRow:
    """One TCP segment as tshark's fields pass describes it."""

    frame_no: int
    """Frame number in the file tshark read (the merged file for a rotation set)."""
    ts: float
    interface: int
    """pcapng interface id: tells which file of a merged rotation set the frame came from."""
    stream: int
    """Wireshark's `tcp.stream` index."""
    src: str
    dst: str
    sport: int
    dport: int
    flags: int
    """TCP flag bits, as in `analyzer.capture.segment`."""
    seq: int
    """Relative sequence number."""
    seq_raw: int
    ack_raw: int
    length: int
    """TCP payload length."""
    ttl: int
    ip_id: int | None
    mac: bytes | None
    tsval: int | None
    mss: int | None
    retransmission: bool
    out_of_order: bool
    lost_segment: bool
    """Wireshark saw a hole before this segment ("previous segment not captured")."""


def _last(value: str) -> str:
    return value.rsplit(AGGREGATOR, 1)[-1]


def _first(value: str) -> str:
    return value.split(AGGREGATOR, 1)[0]


def _int(value: str, base: int = 10) -> int | None:
    value = _last(value)
    if not value:
        return None
    try:
        return int(value, base)
    except ValueError:
        return None


def _inner_is_ipv6(protocols: str) -> bool:
    """With both IPv4 and IPv6 headers (a tunnel), the one nearest TCP carries the segment."""
    layers = protocols.split(":")
    for layer in reversed(layers[: layers.index("tcp")] if "tcp" in layers else layers):
        if layer in ("ip", "ipv6"):
            return layer == "ipv6"
    return False


def parse_row(line: str) -> TcpRow | None:
    """One line of the fields pass, or None when it is not a usable TCP segment."""
    cols = line.rstrip("\n").split("\t")
    if len(cols) != len(FIELDS):
        return None
    (
        number,
        epoch,
        interface,
        protocols,
        stream,
        ip_src,
        ip_dst,
        ip6_src,
        ip6_dst,
        sport,
        dport,
        flags,
        seq,
        seq_raw,
        ack_raw,
        length,
        ttl,
        hlim,
        ip_id,
        eth_src,
        tsval,
        mss,
        retrans,
        ooo,
        lost,
    ) = cols
    frame_no = _int(number)
    stream_no = _int(stream)
    if frame_no is None or stream_no is None:
        return None
    v6 = bool(ip6_src) and (not ip_src or _inner_is_ipv6(protocols))
    src = _last(ip6_src if v6 else ip_src)
    dst = _last(ip6_dst if v6 else ip_dst)
    mac_text = _first(eth_src)
    try:
        mac = bytes.fromhex(mac_text.replace(":", "")) if mac_text else None
    except ValueError:
        mac = None
    try:
        ts = float(epoch)
    except ValueError:
        ts = 0.0
    return TcpRow(
        frame_no=frame_no,
        ts=ts,
        interface=_int(interface) or 0,
        stream=stream_no,
        src=src,
        dst=dst,
        sport=_int(sport) or 0,
        dport=_int(dport) or 0,
        flags=(_int(flags, 16) or 0) & 0xFF,
        seq=_int(seq) or 0,
        seq_raw=_int(seq_raw) or 0,
        ack_raw=_int(ack_raw) or 0,
        length=_int(length) or 0,
        ttl=(_int(hlim) if v6 else _int(ttl)) or 0,
        ip_id=None if v6 else _int(ip_id, 16),
        mac=mac,
        tsval=_int(tsval),
        mss=_int(mss),
        retransmission=bool(retrans),
        out_of_order=bool(ooo),
        lost_segment=bool(lost),
    )
