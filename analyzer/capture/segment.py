"""The one value the capture layer hands on: a decoded TCP segment with where it was seen.

No parsing here; see `pcap`, `pcapng` and `decode` for how segments are produced.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from analyzer._common import FrameRef

# TCP flag bits, RFC 9293 §3.1.
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20


@dataclass(frozen=True, slots=True)
class Segment:
    """One TCP segment from one frame of a capture."""

    frame: FrameRef
    """Where the frame is (capture, file, 1-based frame number)."""
    ts: float
    """Capture timestamp, seconds since the epoch."""
    src: str
    """Source IP address, text form (IPv4 dotted quad or compressed IPv6)."""
    dst: str
    """Destination IP address, text form."""
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    """TCP flag bits (FIN, SYN, RST, PSH, ACK, URG above)."""
    window: int
    payload: bytes
    """TCP payload as captured (may be shorter than `payload_len` when snaplen cut it)."""
    payload_len: int
    """Payload length the IP header claims; greater than len(payload) when the frame was cut."""
    ttl: int
    """IPv4 TTL or IPv6 hop limit: tells which box emitted the packet."""
    ip_id: int | None
    """IPv4 identification; None for IPv6 (unless a fragment header carries one)."""
    src_mac: bytes | None
    """Ethernet source address (6 bytes) when the link layer has one."""
    tsval: int | None = None
    """TCP timestamp option TSval (RFC 7323), survives NAT and ISN randomization."""
    tsecr: int | None = None
    mss: int | None = None
    """MSS option, on SYN segments."""
    wscale: int | None = None
    """Window scale option, on SYN segments."""


class CaptureAnomaly(enum.StrEnum):
    """Odd things in a capture file or below TCP; counted and reported, never raised."""

    TRUNCATED_RECORD = "truncated_record"
    SNAPLEN_CUT = "snaplen_cut"
    UNKNOWN_LINK_TYPE = "unknown_link_type"
    MALFORMED_PACKET = "malformed_packet"
    IP_FRAGMENT = "ip_fragment"
    FRAGMENT_INCOMPLETE = "fragment_incomplete"
    FILE_GAP = "file_gap"
    FILE_OVERLAP = "file_overlap"
    BAD_BLOCK = "bad_block"
    TIME_WENT_BACKWARDS = "time_went_backwards"
