"""Where things are in a capture file's bytes, for the mutators and the fuzzer's oracles.

Walks classic pcap records and pcapng blocks of a *well-formed* file (a bundled or crafted seed,
possibly cut short at its end), finds the link, IP and TCP headers of each frame, and rebuilds
the readable prefix of a file cut short: the header and every complete record before the cut.
It trusts the lengths it reads as far as they fit in the file, and stops at the first that does
not; it is not a second capture reader and decides nothing about damage the real one reports.

Layout: draft-ietf-opsawg-pcap §4-5, draft-ietf-opsawg-pcapng §3-4, RFC 791 §3.1, RFC 8200 §3,
RFC 9293 §3.1.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass

PCAP_HEADER_LEN = 24
PCAP_RECORD_HEADER_LEN = 16
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 1
PCAPNG_OPB = 2
PCAPNG_SPB = 3
PCAPNG_EPB = 6
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
GZIP_MAGIC = b"\x1f\x8b"

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}
"""The four classic pcap magics as bytes: byte order and whether timestamps are nanoseconds."""

LINK_HEADER_LEN = {0: 4, 1: 14, 101: 0, 108: 4, 113: 16, 228: 0, 229: 0, 276: 20}
"""Bytes before the network header per link type (NULL, Ethernet, raw, LOOP, SLL, IPv4, IPv6,
SLL2); Ethernet VLAN tags are skipped separately."""
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)


@dataclass(frozen=True, slots=True)
class Record:
    """One packet record (pcap) or packet block (pcapng) of a file."""

    start: int
    """Offset of the record header or block."""
    end: int
    """Offset just past the record or block."""
    data_start: int
    """Offset of the captured frame."""
    caplen: int
    """Bytes of frame captured."""
    link_type: int
    order: str
    """Byte order of the record's header fields ("<" or ">")."""
    kind: int
    """0 for a pcap record, else the pcapng block type."""


@dataclass(frozen=True, slots=True)
class Layout:
    """A file's format, its header length and its records (pcapng: every block)."""

    format: str
    """"pcap" or "pcapng"."""
    order: str
    """Byte order of the file header or first section."""
    header_len: int
    """pcap: the file header; pcapng: 0 (the first section header is a block)."""
    records: tuple[Record, ...]
    """pcap: the packet records; pcapng: every block, packet blocks or not."""
    complete: bool
    """Whether the walk reached the end of the data exactly."""

    @property
    def packets(self) -> tuple[Record, ...]:
        """Records that carry a frame."""
        if self.format == "pcap":
            return self.records
        return tuple(r for r in self.records if r.kind in (PCAPNG_EPB, PCAPNG_SPB, PCAPNG_OPB))


def parse(data: bytes) -> Layout | None:
    """The layout of a pcap or pcapng file (not gzip), or None if its header is not one."""
    if data[:4] in PCAP_MAGICS:
        return _parse_pcap(data)
    if data[:4] == struct.pack("<I", PCAPNG_SHB) and len(data) >= 12:
        return _parse_pcapng(data)
    return None


def _parse_pcap(data: bytes) -> Layout | None:
    if len(data) < PCAP_HEADER_LEN:
        return None
    order, _ = PCAP_MAGICS[data[:4]]
    link_type = struct.unpack_from(order + "I", data, 20)[0] & 0xFFFF
    records: list[Record] = []
    pos = PCAP_HEADER_LEN
    while pos + PCAP_RECORD_HEADER_LEN <= len(data):
        caplen = struct.unpack_from(order + "I", data, pos + 8)[0]
        end = pos + PCAP_RECORD_HEADER_LEN + caplen
        if end > len(data):
            break
        records.append(Record(pos, end, pos + PCAP_RECORD_HEADER_LEN, caplen, link_type, order, 0))
        pos = end
    return Layout("pcap", order, PCAP_HEADER_LEN, tuple(records), pos == len(data))


def _parse_pcapng(data: bytes) -> Layout | None:
    records: list[Record] = []
    order = "<"
    first_order: str | None = None
    links: list[int] = []
    pos = 0
    while pos + 12 <= len(data):
        btype_le = struct.unpack_from("<I", data, pos)[0]
        if btype_le == PCAPNG_SHB:
            if pos + 12 > len(data):
                break
            magic = data[pos + 8 : pos + 12]
            if magic == struct.pack("<I", PCAPNG_BYTE_ORDER_MAGIC):
                order = "<"
            elif magic == struct.pack(">I", PCAPNG_BYTE_ORDER_MAGIC):
                order = ">"
            else:
                break
            links = []
        if first_order is None:
            first_order = order
        btype, blen = struct.unpack_from(order + "II", data, pos)
        if blen < 12 or blen % 4 or pos + blen > len(data):
            break
        end = pos + blen
        data_start, caplen, link = pos + 8, 0, -1
        if btype == PCAPNG_IDB and blen >= 20:
            links.append(struct.unpack_from(order + "H", data, pos + 8)[0])
        elif btype == PCAPNG_EPB and blen >= 32:
            iface, _, _, caplen = struct.unpack_from(order + "IIII", data, pos + 8)
            data_start = pos + 28
            link = links[iface] if iface < len(links) else -1
        elif btype == PCAPNG_OPB and blen >= 32:
            iface = struct.unpack_from(order + "H", data, pos + 8)[0]
            caplen = struct.unpack_from(order + "I", data, pos + 20)[0]
            data_start = pos + 28
            link = links[iface] if iface < len(links) else -1
        elif btype == PCAPNG_SPB and blen >= 16:
            data_start = pos + 12
            caplen = blen - 16
            link = links[0] if links else -1
        caplen = max(0, min(caplen, end - 4 - data_start))
        records.append(Record(pos, end, data_start, caplen, link, order, btype))
        pos = end
    return Layout("pcapng", first_order or "<", 0, tuple(records), pos == len(data))


def readable_prefix(data: bytes) -> bytes | None:
    """The file as far as complete records go: what a reader of `data` cut short must still
    see. For pcapng, complete blocks. None when not even the file header is complete."""
    layout = parse(data)
    if layout is None:
        return None
    if layout.format == "pcap":
        end = layout.records[-1].end if layout.records else layout.header_len
        return data[:end]
    if not layout.records or layout.records[0].kind != PCAPNG_SHB:
        return None
    return data[: layout.records[-1].end]


def gunzip_prefix(data: bytes) -> bytes:
    """As much of a (possibly cut or damaged) gzip stream as decompresses."""
    out = zlib.decompressobj(wbits=31)
    try:
        return out.decompress(data)
    except zlib.error:
        return b""


def maybe_gunzip(data: bytes) -> tuple[bytes, bool]:
    """The capture bytes inside `data` and whether it was gzip (intact: wholly decompressed)."""
    if data[:2] != GZIP_MAGIC:
        return data, False
    try:
        return gzip.decompress(data), True
    except (OSError, EOFError, zlib.error):
        return gunzip_prefix(data), True


@dataclass(frozen=True, slots=True)
class Headers:
    """Offsets (in the file) of one frame's network and transport headers."""

    ip: int
    """Start of the IPv4 or IPv6 header."""
    version: int
    tcp: int | None
    """Start of the TCP header, when the packet is unfragmented TCP and the header fits."""
    frame_end: int


def headers(data: bytes, record: Record) -> Headers | None:
    """Find the IP (and TCP) header of a record's frame; None when it has none we know."""
    skip = LINK_HEADER_LEN.get(record.link_type)
    if skip is None:
        return None
    start, end = record.data_start, record.data_start + record.caplen
    pos = start + skip
    if record.link_type == 1:
        while pos + 4 <= end and struct.unpack_from(">H", data, pos - 2)[0] in VLAN_TPIDS:
            pos += 4
    if pos + 20 > end:
        return None
    version = data[pos] >> 4
    if version == 4:
        ihl = (data[pos] & 0x0F) * 4
        proto = data[pos + 9]
        frag = struct.unpack_from(">H", data, pos + 6)[0] & 0x3FFF
        tcp = pos + ihl if proto == 6 and not frag and ihl >= 20 else None
    elif version == 6:
        tcp = pos + 40 if data[pos + 6] == 6 else None
    else:
        return None
    if tcp is not None and tcp + 20 > end:
        tcp = None
    return Headers(pos, version, tcp, end)
