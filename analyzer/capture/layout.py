"""The header layouts the capture layer reads, declared once: every field's name, offset, `struct`
format and the specification it comes from.

Each layout is a `Header` table. The offsets are also named constants (`IPV4_TTL`, `TCP_SEQ`,
...), which is what the per-packet code indexes with: a `Final` int is a native constant in the
compiled build, where a look-up in the table would cost a dictionary access per packet. The
tables are built from those constants, the `struct` formats of the readers are built from the
tables (`unpack_format`), and the tests hold the tables against what scapy builds, so a field
is declared in one place. Offsets count from the start of their header; formats are network
byte order, except the pcap record header's, whose order the file header gives.

Values carried in the headers (link types, EtherTypes, protocol numbers, flag bits, option
kinds) are declared next to the code that interprets them (`decode`, `segment`); this module
reads nothing and keeps no state.
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from typing import Final, NamedTuple


class Field(NamedTuple):
    """One field of a header."""

    name: str
    offset: int
    """Bytes from the start of the header."""
    format: str
    """Its `struct` format, without byte order ("B", "H", "I", "6s")."""

    @property
    def width(self) -> int:
        """Bytes the field takes."""
        return struct.calcsize("!" + self.format)


class Header(NamedTuple):
    """A header's layout: its fields in offset order and where they are specified."""

    name: str
    spec: str
    length: int
    """Bytes of the fixed part (options and addresses of variable length excluded)."""
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")


def unpack_format(
    header: Header, names: Collection[str], *, start: int = 0, stop: int | None = None
) -> str:
    """The `struct` format (without byte order) that reads the fields `names` of `header`, in
    offset order, from its byte `start` on, skipping the other bytes; padded up to `stop` when
    given (so that another header's format can follow)."""
    unknown = set(names) - {f.name for f in header.fields}
    if unknown:
        raise KeyError(f"{header.name} has no field(s) {sorted(unknown)}")
    out = []
    pos = start
    for f in header.fields:
        if f.name in names:
            if f.offset < pos:
                raise ValueError(f"{header.name}.{f.name} lies before byte {start}")
            out.append(_skip(f.offset - pos) + f.format)
            pos = f.offset + f.width
    if stop is not None:
        out.append(_skip(stop - pos))
    return "".join(out)


def _skip(n: int) -> str:
    """The `struct` format of `n` pad bytes."""
    return "" if n <= 0 else "x" if n == 1 else f"{n}x"


# ---- pcap packet record header: draft-ietf-opsawg-pcap §5 (byte order: the file header's) ----
PCAP_TS_SEC: Final = 0
PCAP_TS_FRAC: Final = 4
"""Microseconds or nanoseconds, as the file header's magic says."""
PCAP_CAPLEN: Final = 8
PCAP_ORIGLEN: Final = 12
PCAP_RECORD_HEADER_LEN: Final = 16

PCAP_RECORD: Final = Header(
    "pcap record header",
    "draft-ietf-opsawg-pcap §5",
    PCAP_RECORD_HEADER_LEN,
    (
        Field("timestamp_seconds", PCAP_TS_SEC, "I"),
        Field("timestamp_fraction", PCAP_TS_FRAC, "I"),
        Field("captured_length", PCAP_CAPLEN, "I"),
        Field("original_length", PCAP_ORIGLEN, "I"),
    ),
)

# ---- Ethernet II: IEEE 802.3 §3.2.6 ----
MAC_LEN: Final = 6
ETH_DST_OFFSET: Final = 0
ETH_SRC_OFFSET: Final = 6
ETH_TYPE_OFFSET: Final = 12
ETH_HEADER_LEN: Final = 14

ETHERNET: Final = Header(
    "Ethernet II",
    "IEEE 802.3 §3.2.6",
    ETH_HEADER_LEN,
    (
        Field("destination", ETH_DST_OFFSET, "6s"),
        Field("source", ETH_SRC_OFFSET, "6s"),
        Field("ethertype", ETH_TYPE_OFFSET, "H"),
    ),
)

# ---- VLAN tag after its TPID: IEEE 802.1Q §9.6 (802.1ad S-tags alike) ----
VLAN_TCI_OFFSET: Final = 0
VLAN_TYPE_OFFSET: Final = 2
"""The inner EtherType (or the next tag's TPID)."""
VLAN_TAG_LEN: Final = 4

VLAN_TAG: Final = Header(
    "VLAN tag",
    "IEEE 802.1Q §9.6",
    VLAN_TAG_LEN,
    (
        Field("tci", VLAN_TCI_OFFSET, "H"),
        Field("ethertype", VLAN_TYPE_OFFSET, "H"),
    ),
)

# ---- Linux cooked capture v1 and v2: https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html,
# LINKTYPE_LINUX_SLL2.html ----
SLL_ADDR_FIELD_LEN: Final = 8
"""The link-layer address field of both versions; the address length says how much is used."""
SLL_PACKET_TYPE_OFFSET: Final = 0
SLL_ARPHRD_OFFSET: Final = 2
SLL_ADDR_LEN_OFFSET: Final = 4
SLL_ADDR_OFFSET: Final = 6
SLL_PROTOCOL_OFFSET: Final = 14
SLL_HEADER_LEN: Final = 16

LINUX_SLL: Final = Header(
    "Linux cooked v1",
    "tcpdump.org LINKTYPE_LINUX_SLL",
    SLL_HEADER_LEN,
    (
        Field("packet_type", SLL_PACKET_TYPE_OFFSET, "H"),
        Field("arphrd_type", SLL_ARPHRD_OFFSET, "H"),
        Field("address_length", SLL_ADDR_LEN_OFFSET, "H"),
        Field("address", SLL_ADDR_OFFSET, "8s"),
        Field("protocol", SLL_PROTOCOL_OFFSET, "H"),
    ),
)

SLL2_PROTOCOL_OFFSET: Final = 0
SLL2_RESERVED_OFFSET: Final = 2
SLL2_IFINDEX_OFFSET: Final = 4
SLL2_ARPHRD_OFFSET: Final = 8
SLL2_PACKET_TYPE_OFFSET: Final = 10
SLL2_ADDR_LEN_OFFSET: Final = 11
SLL2_ADDR_OFFSET: Final = 12
SLL2_HEADER_LEN: Final = 20

LINUX_SLL2: Final = Header(
    "Linux cooked v2",
    "tcpdump.org LINKTYPE_LINUX_SLL2",
    SLL2_HEADER_LEN,
    (
        Field("protocol", SLL2_PROTOCOL_OFFSET, "H"),
        Field("reserved", SLL2_RESERVED_OFFSET, "H"),
        Field("interface_index", SLL2_IFINDEX_OFFSET, "I"),
        Field("arphrd_type", SLL2_ARPHRD_OFFSET, "H"),
        Field("packet_type", SLL2_PACKET_TYPE_OFFSET, "B"),
        Field("address_length", SLL2_ADDR_LEN_OFFSET, "B"),
        Field("address", SLL2_ADDR_OFFSET, "8s"),
    ),
)

# ---- BSD loopback: https://www.tcpdump.org/linktypes/LINKTYPE_NULL.html (host byte order) and
# LINKTYPE_LOOP.html (network byte order) ----
NULL_FAMILY_OFFSET: Final = 0
NULL_HEADER_LEN: Final = 4

BSD_LOOPBACK: Final = Header(
    "BSD loopback",
    "tcpdump.org LINKTYPE_NULL, LINKTYPE_LOOP",
    NULL_HEADER_LEN,
    (Field("address_family", NULL_FAMILY_OFFSET, "I"),),
)

# ---- IPv4: RFC 791 §3.1 ----
IPV4_VIHL: Final = 0
"""Version (high 4 bits) and header length in 32-bit words (low 4 bits)."""
IPV4_TOS: Final = 1
IPV4_TOTAL_LEN: Final = 2
IPV4_ID: Final = 4
IPV4_FRAG: Final = 6
"""Flags (high 3 bits) and fragment offset in 8-byte units (low 13 bits)."""
IPV4_TTL: Final = 8
IPV4_PROTOCOL: Final = 9
IPV4_CHECKSUM: Final = 10
IPV4_SRC: Final = 12
IPV4_DST: Final = 16
IPV4_ADDR_LEN: Final = 4
IPV4_ADDRS_OFFSET: Final = IPV4_SRC
"""Source then destination address, 4 bytes each."""
IPV4_MIN_HEADER_LEN: Final = 20

IPV4: Final = Header(
    "IPv4",
    "RFC 791 §3.1",
    IPV4_MIN_HEADER_LEN,
    (
        Field("version_ihl", IPV4_VIHL, "B"),
        Field("type_of_service", IPV4_TOS, "B"),
        Field("total_length", IPV4_TOTAL_LEN, "H"),
        Field("identification", IPV4_ID, "H"),
        Field("flags_fragment_offset", IPV4_FRAG, "H"),
        Field("ttl", IPV4_TTL, "B"),
        Field("protocol", IPV4_PROTOCOL, "B"),
        Field("checksum", IPV4_CHECKSUM, "H"),
        Field("source", IPV4_SRC, "I"),
        Field("destination", IPV4_DST, "I"),
    ),
)
IPV4_READ: Final = (
    "version_ihl",
    "total_length",
    "identification",
    "flags_fragment_offset",
    "ttl",
    "protocol",
)
"""The IPv4 fields both readers take before the addresses (type of service and checksum are
skipped)."""

# ---- IPv6: RFC 8200 §3; extension headers §4.3-4.6, AH RFC 4302 §2 ----
IPV6_VTF: Final = 0
"""Version (4 bits), traffic class (8), flow label (20)."""
IPV6_PAYLOAD_LEN: Final = 4
IPV6_NEXT_HEADER: Final = 6
IPV6_HOP_LIMIT: Final = 7
IPV6_SRC: Final = 8
IPV6_DST: Final = 24
IPV6_ADDR_LEN: Final = 16
IPV6_ADDRS_OFFSET: Final = IPV6_SRC
"""Source then destination address, 16 bytes each."""
IPV6_HEADER_LEN: Final = 40

IPV6: Final = Header(
    "IPv6",
    "RFC 8200 §3",
    IPV6_HEADER_LEN,
    (
        Field("version_class_flow", IPV6_VTF, "I"),
        Field("payload_length", IPV6_PAYLOAD_LEN, "H"),
        Field("next_header", IPV6_NEXT_HEADER, "B"),
        Field("hop_limit", IPV6_HOP_LIMIT, "B"),
        Field("source", IPV6_SRC, "16s"),
        Field("destination", IPV6_DST, "16s"),
    ),
)

EXT_NEXT_HEADER: Final = 0
EXT_LENGTH: Final = 1
"""Hop-by-hop, routing and destination options: 8-octet units beyond the first 8; AH: 32-bit
words minus 2."""
EXT_MIN_LEN: Final = 2

IPV6_EXTENSION: Final = Header(
    "IPv6 extension header or AH (their common start)",
    "RFC 8200 §4.3-4.6, RFC 4302 §2",
    EXT_MIN_LEN,
    (
        Field("next_header", EXT_NEXT_HEADER, "B"),
        Field("length", EXT_LENGTH, "B"),
    ),
)

FRAG6_NEXT_HEADER: Final = 0
FRAG6_RESERVED: Final = 1
FRAG6_OFFSET_FLAGS: Final = 2
"""Offset in 8-octet units (high 13 bits), two reserved bits, M flag (low bit)."""
FRAG6_ID: Final = 4
IPV6_FRAGMENT_HEADER_LEN: Final = 8

IPV6_FRAGMENT: Final = Header(
    "IPv6 fragment header",
    "RFC 8200 §4.5",
    IPV6_FRAGMENT_HEADER_LEN,
    (
        Field("next_header", FRAG6_NEXT_HEADER, "B"),
        Field("reserved", FRAG6_RESERVED, "B"),
        Field("offset_flags", FRAG6_OFFSET_FLAGS, "H"),
        Field("identification", FRAG6_ID, "I"),
    ),
)

# ---- TCP: RFC 9293 §3.1; the timestamp option RFC 7323 §3.2 ----
TCP_SPORT: Final = 0
TCP_DPORT: Final = 2
TCP_SEQ: Final = 4
TCP_ACK: Final = 8
TCP_DATA_OFFSET: Final = 12
"""Header length in 32-bit words (high 4 bits), then reserved bits."""
TCP_FLAGS: Final = 13
TCP_WINDOW: Final = 14
TCP_CHECKSUM: Final = 16
TCP_URGENT: Final = 18
TCP_MIN_HEADER_LEN: Final = 20
TCP_PORTS_LEN: Final = 4
"""Source and destination port, side by side: the end of a raw key (`conversation`)."""

TCP: Final = Header(
    "TCP",
    "RFC 9293 §3.1",
    TCP_MIN_HEADER_LEN,
    (
        Field("source_port", TCP_SPORT, "H"),
        Field("destination_port", TCP_DPORT, "H"),
        Field("sequence", TCP_SEQ, "I"),
        Field("acknowledgment", TCP_ACK, "I"),
        Field("data_offset", TCP_DATA_OFFSET, "B"),
        Field("flags", TCP_FLAGS, "B"),
        Field("window", TCP_WINDOW, "H"),
        Field("checksum", TCP_CHECKSUM, "H"),
        Field("urgent_pointer", TCP_URGENT, "H"),
    ),
)

TCPOPT_KIND_OFFSET: Final = 0
TCPOPT_LENGTH_OFFSET: Final = 1
TS_VALUE_OFFSET: Final = 2
TS_ECHO_OFFSET: Final = 6
TCPOPT_TIMESTAMP_LEN: Final = 10

TCP_TIMESTAMP_OPTION: Final = Header(
    "TCP timestamp option",
    "RFC 7323 §3.2",
    TCPOPT_TIMESTAMP_LEN,
    (
        Field("kind", TCPOPT_KIND_OFFSET, "B"),
        Field("length", TCPOPT_LENGTH_OFFSET, "B"),
        Field("tsval", TS_VALUE_OFFSET, "I"),
        Field("tsecr", TS_ECHO_OFFSET, "I"),
    ),
)

HEADERS: Final = (
    PCAP_RECORD,
    ETHERNET,
    VLAN_TAG,
    LINUX_SLL,
    LINUX_SLL2,
    BSD_LOOPBACK,
    IPV4,
    IPV6,
    IPV6_EXTENSION,
    IPV6_FRAGMENT,
    TCP,
    TCP_TIMESTAMP_OPTION,
)
"""Every layout declared here."""
