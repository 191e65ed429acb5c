"""One pcapng file holding every link type, header variant and block kind the layer decodes.

Used to compare the capture layer with tshark frame by frame. Three sections (little-endian,
big-endian, little-endian again) with interfaces of different link types and timestamp
resolutions; EPB, SPB and OPB packet blocks; VLAN stacks, IPv4 options and padding, IPv6
extension headers, AH over both, IPv4 and IPv6 fragments (one set reordered, one left
incomplete), a frame cut by snaplen, and non-TCP frames in between.
"""

from __future__ import annotations

from . import craft

BASE = 1_700_000_000


def _v4(seq: int, payload: bytes = b"", **ip: object) -> bytes:
    return craft.ipv4(
        craft.tcp(seq=seq, options=craft.ts_option(seq, 1), payload=payload),
        **ip,  # type: ignore[arg-type]
    )


def _v6(seq: int, payload: bytes = b"", chain: bytes = b"", nh: int = 6) -> bytes:
    return craft.ipv6(chain + craft.tcp(seq=seq, dport=587, payload=payload), nh=nh)


def _frags4(seq: int, size: int, ident: int) -> list[bytes]:
    tcp = craft.tcp(seq=seq, payload=b"F" * 1500)
    parts = [(off, tcp[off : off + size]) for off in range(0, len(tcp), size)]
    return [
        craft.ether(
            craft.ipv4(chunk, ident=ident, frag=(0x2000 if i < len(parts) - 1 else 0) | off // 8)
        )
        for i, (off, chunk) in enumerate(parts)
    ]


def _frags6(seq: int, size: int, ident: int) -> list[bytes]:
    tcp = craft.tcp(seq=seq, dport=587, payload=b"G" * 1400)
    parts = [(off, tcp[off : off + size]) for off in range(0, len(tcp), size)]
    return [
        craft.ether(
            craft.ipv6(craft.frag6(6, off, i < len(parts) - 1, ident) + chunk, nh=44),
            ethertype=craft.ETH_IPV6,
        )
        for i, (off, chunk) in enumerate(parts)
    ]


def build() -> bytes:
    """The zoo file's bytes."""
    out = []
    # Section 1, little-endian: Ethernet (µs), Linux cooked v1 (ns), raw IP (ms, offset).
    out.append(craft.shb("<"))
    out.append(craft.idb(1, snaplen=262144))
    out.append(craft.idb(113, tsresol=9))
    out.append(craft.idb(101, tsresol=3, tsoffset=BASE))

    def eth(frame: bytes, t: float) -> None:
        out.append(craft.epb(frame, round((BASE + t) * 1e6), iface=0))

    eth(craft.ether(_v4(1, b"EHLO zoo\r\n")), 0.0)
    eth(craft.ether(b"\x00" * 28, ethertype=craft.ETH_ARP), 0.1)
    eth(craft.ether(_v4(2, b"vlan"), vlans=((0x8100, 7),)), 0.2)
    eth(craft.ether(_v4(3, b"qinq"), vlans=((0x88A8, 100), (0x8100, 7))), 0.3)
    eth(craft.ether(_v4(4, b"qinq-9100"), vlans=((0x9100, 5), (0x8100, 6))), 0.4)
    eth(craft.ether(_v4(5, b"opts", options=bytes((0x94, 4, 0, 0)) + b"\x01" * 8)), 0.5)
    eth(craft.ether(_v4(6)) + b"\x55" * 6, 0.6)  # padded ACK
    eth(craft.ether(craft.ipv4(b"\x00" * 12, proto=17)), 0.7)  # UDP
    frags = _frags4(7, 512, ident=0x77)
    for i, frame in enumerate([frags[2], frags[0], frags[1], *frags[3:]]):
        eth(frame, 0.8 + i * 0.01)
    eth(_frags4(8, 512, ident=0x78)[0], 0.9)  # never completed
    for i, frame in enumerate(_frags6(9, 512, ident=0x99)):
        eth(frame, 1.0 + i * 0.01)
    eth(craft.ether(_v6(10, b"v6"), ethertype=craft.ETH_IPV6), 1.1)
    chain = craft.ext_header(43) + craft.ext_header(60, units=1) + craft.ext_header(6)
    eth(craft.ether(_v6(11, b"ext", chain, nh=0), ethertype=craft.ETH_IPV6), 1.2)
    ah4 = craft.ipv4(craft.ah_header(6) + craft.tcp(seq=26, payload=b"ah4"), proto=51)
    eth(craft.ether(ah4), 1.25)
    ah6 = _v6(27, b"ah6", craft.ah_header(60) + craft.ext_header(6), nh=51)
    eth(craft.ether(ah6, ethertype=craft.ETH_IPV6), 1.26)
    big = craft.ether(_v4(12, b"S" * 1000))
    out.append(craft.epb(big[:120], round((BASE + 1.3) * 1e6), iface=0, origlen=len(big)))
    out.append(craft.epb(craft.sll(_v4(13, b"sll")), (BASE + 1) * 10**9 + 400_000_000, iface=1))
    out.append(craft.epb(_v4(14, b"raw"), 1500, iface=2))
    out.append(craft.opb(craft.ether(_v4(15, b"opb")), round((BASE + 1.6) * 1e6), iface=0))
    out.append(craft.nrb())
    # Section 2, big-endian: NULL (host order little-endian), LOOP, SLL2, IPv4, IPv6.
    out.append(craft.shb(">"))
    for link_type in (0, 108, 276, 228, 229):
        out.append(craft.idb(link_type, order=">", tsresol=6))

    def be(frame: bytes, iface: int, t: float) -> None:
        out.append(craft.epb(frame, round((BASE + t) * 1e6), iface=iface, order=">"))

    be(craft.null(_v4(16, b"null"), 2, "<"), 0, 2.0)
    be(craft.null(_v6(17, b"null6"), 30, "<"), 0, 2.1)
    be(craft.null(_v6(18, b"loop6"), 24, ">"), 1, 2.2)
    be(craft.sll2(_v6(19, b"sll2"), protocol=craft.ETH_IPV6), 2, 2.3)
    be(_v4(20, b"ipv4"), 3, 2.4)
    be(_v6(21, b"ipv6"), 4, 2.5)
    out.append(craft.isb(">"))
    # Section 3, little-endian again: one Ethernet interface, SPBs between EPBs.
    out.append(craft.shb("<"))
    out.append(craft.idb(1, snaplen=100, tsresol=0x80 | 20))
    out.append(craft.epb(craft.ether(_v4(22, b"binary")), (BASE + 3) << 20))
    out.append(craft.spb(craft.ether(_v4(23, b"spb"))))
    spb_big = craft.ether(_v4(24, b"Z" * 300))
    out.append(craft.spb(spb_big[:100], origlen=len(spb_big)))
    out.append(craft.epb(craft.ether(_v4(25, b"last")), (BASE + 4) << 20))
    return b"".join(out)
