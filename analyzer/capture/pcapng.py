"""The pcapng file format: sections, interfaces and packet blocks.

Handles several sections (each Section Header Block may switch byte order and resets the
interface list), several interfaces per section (each with its own link type, snaplen,
`if_tsresol` as a power of 10 or 2, `if_tsoffset` and `if_fcslen`), and the three packet blocks:
Enhanced (EPB), Simple (SPB: interface 0, no timestamp) and the obsolete Packet Block (OPB).
Other blocks (name resolution, statistics, secrets, custom, ...) are skipped. A block whose
length is impossible ends the file with a BAD_BLOCK note in the tally; a file that ends
mid-block ends with TRUNCATED_RECORD. Never raises on content. Does not decode frames.

Layout: draft-ietf-opsawg-pcapng §3.1 (block structure), §4.1 SHB, §4.2 IDB, §4.3 EPB,
§4.4 SPB, Appendix A (obsolete Packet Block).
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Final, NamedTuple

from analyzer.capture.records import FileTally, RecordSink, T
from analyzer.capture.segment import CaptureAnomaly
from analyzer.capture.source import ChunkReader
from analyzer.errors import CaptureError

BT_SHB: Final = 0x0A0D0D0A
"""Section Header Block type; a palindrome, so readable before the byte order is known."""
BT_IDB: Final = 0x00000001
BT_OPB: Final = 0x00000002
BT_SPB: Final = 0x00000003
BT_EPB: Final = 0x00000006

BYTE_ORDER_MAGIC: Final = 0x1A2B3C4D
SUPPORTED_MAJOR_VERSION: Final = 1

BLOCK_HEADER_LEN: Final = 8
"""block type(4), block total length(4)."""
MIN_BLOCK_LEN: Final = 12
"""Header plus the trailing copy of the total length."""
MAX_BLOCK_LEN: Final = 16 * 1024 * 1024
"""A longer block is taken as damage (it also bounds the memory one block may take)."""

MAX_INTERFACES = 65536
"""Interfaces per section kept; more is taken as damage (it bounds the interface table)."""

SHB_MIN_LEN: Final = 28
"""header(8) byte-order magic(4) major(2) minor(2) section length(8) trailer(4)."""
IDB_MIN_LEN: Final = 20
"""header(8) link type(2) reserved(2) snaplen(4) trailer(4)."""
EPB_MIN_LEN: Final = 32
"""header(8) interface(4) ts high(4) ts low(4) caplen(4) origlen(4) trailer(4)."""
OPB_MIN_LEN: Final = 32
"""header(8) interface(2) drops(2) ts high(4) ts low(4) caplen(4) origlen(4) trailer(4)."""
SPB_MIN_LEN: Final = 16
"""header(8) origlen(4) trailer(4)."""
PACKET_FIELDS_LEN: Final = 20
"""Fixed fields before the packet data in EPB and OPB."""

OPT_ENDOFOPT: Final = 0
OPT_IF_TSRESOL: Final = 9
"""1 byte: high bit clear → 10^-n s, set → 2^-n s (§4.2)."""
OPT_IF_FCSLEN: Final = 13
"""1 byte: FCS bytes at the end of each frame of this interface."""
OPT_IF_TSOFFSET: Final = 14
"""8 bytes signed: seconds to add to every timestamp of this interface."""
DEFAULT_TS_UNITS: Final = 1_000_000
"""Timestamp units per second without if_tsresol: microseconds."""


class Interface(NamedTuple):
    """What a packet block needs from its Interface Description Block."""

    link_type: int
    units_per_sec: int
    offset: int
    fcs_len: int
    snaplen: int


_exact_quotient: Final[Callable[[int, int], float]] = operator.truediv
"""`a / b` for two ints, correctly rounded as Python divides them: a compiled `/` would first
round a nanosecond tick count (beyond 2**53) to a float, and could differ in the last digit."""


def section_byte_order(magic: bytes) -> str | None:
    """struct byte-order character for an SHB byte-order magic, or None if it is not one."""
    if magic == struct.pack("<I", BYTE_ORDER_MAGIC):
        return "<"
    if magic == struct.pack(">I", BYTE_ORDER_MAGIC):
        return ">"
    return None


def check_first_section(head: bytes, path: Path) -> None:
    """Raise CaptureError unless `head` starts with a usable Section Header Block."""
    if len(head) < 16:
        raise CaptureError(path, f"pcapng section header cut short ({len(head)} bytes)")
    order = section_byte_order(head[8:12])
    if order is None:
        raise CaptureError(
            path, f"pcapng section header has bad byte-order magic 0x{head[8:12].hex()}"
        )
    major, minor = struct.unpack_from(order + "HH", head, 12)
    if major != SUPPORTED_MAJOR_VERSION:
        raise CaptureError(path, f"unsupported pcapng version {major}.{minor}")


def _options(buf: bytes, pos: int, end: int, order: str) -> Iterator[tuple[int, bytes]]:
    """(code, value) of each option in `buf[pos:end]`; stops quietly at a damaged one."""
    head = struct.Struct(order + "HH")
    while pos + 4 <= end:
        code, length = head.unpack_from(buf, pos)
        if code == OPT_ENDOFOPT:
            return
        pos += 4
        if pos + length > end:
            return
        yield code, buf[pos : pos + length]
        pos += (length + 3) & ~3


def _interface(buf: bytes, body: int, bend: int, order: str) -> Interface:
    link_type, _reserved, snaplen = struct.unpack_from(order + "HHI", buf, body)
    units = DEFAULT_TS_UNITS
    offset = 0
    fcs = 0
    for code, value in _options(buf, body + 8, bend, order):
        if code == OPT_IF_TSRESOL and len(value) >= 1:
            exponent = value[0] & 0x7F
            units = 2**exponent if value[0] & 0x80 else 10**exponent
        elif code == OPT_IF_TSOFFSET and len(value) >= 8:
            (offset,) = struct.unpack_from(order + "q", value, 0)
        elif code == OPT_IF_FCSLEN and len(value) >= 1:
            fcs = value[0]
    return Interface(link_type, units, offset, fcs, snaplen)


class _Unpackers(NamedTuple):
    u32: Callable[[bytes, int], tuple[int]]
    header: Callable[[bytes, int], tuple[int, int]]
    epb: Callable[[bytes, int], tuple[int, int, int, int, int]]
    opb: Callable[[bytes, int], tuple[int, int, int, int, int, int]]


def _unpackers(order: str) -> _Unpackers:
    return _Unpackers(
        struct.Struct(order + "I").unpack_from,
        struct.Struct(order + "II").unpack_from,
        struct.Struct(order + "IIIII").unpack_from,
        struct.Struct(order + "HHIIII").unpack_from,
    )


def read_records(
    chunks: ChunkReader,
    buf: bytes,
    sink: RecordSink[T],
    tally: FileTally,
) -> Generator[T, None, None]:
    """Hand every packet of every section to `sink`, yielding what it returns.

    `buf` holds the bytes read so far, starting with the first Section Header Block (already
    checked by `check_first_section`).
    """
    tally.format = "pcapng"
    order = "<"
    u32, unpack_header, unpack_epb, unpack_opb = _unpackers(order)
    interfaces: list[Interface] = []
    first_idb = True
    pos = 0
    n = len(buf)
    frame = 0
    first: float | None = None
    prev = lowest = highest = 0.0
    try:
        while True:
            if n - pos < MIN_BLOCK_LEN:
                buf = chunks.refill(buf, pos, MIN_BLOCK_LEN)
                pos = 0
                n = len(buf)
                if n < MIN_BLOCK_LEN:
                    if n or chunks.error is not None:
                        tally.stop(
                            CaptureAnomaly.TRUNCATED_RECORD,
                            f"file ends inside a block header after frame {frame}" + _why(chunks),
                        )
                    break
            btype, blen = unpack_header(buf, pos)
            if btype == BT_SHB:
                new_order = section_byte_order(buf[pos + 8 : pos + 12])
                if new_order is None:
                    tally.stop(
                        CaptureAnomaly.BAD_BLOCK,
                        f"section header after frame {frame} has bad byte-order magic; "
                        "rest of file not read",
                    )
                    break
                if new_order != order:
                    order = new_order
                    u32, unpack_header, unpack_epb, unpack_opb = _unpackers(order)
                    btype, blen = unpack_header(buf, pos)
            if blen < MIN_BLOCK_LEN or blen & 3 or blen > MAX_BLOCK_LEN:
                tally.stop(
                    CaptureAnomaly.BAD_BLOCK,
                    f"block of type 0x{btype:08x} after frame {frame} has impossible length "
                    f"{blen}; rest of file not read",
                )
                break
            if n - pos < blen:
                buf = chunks.refill(buf, pos, blen)
                pos = 0
                n = len(buf)
                if n < blen:
                    tally.stop(
                        CaptureAnomaly.TRUNCATED_RECORD,
                        f"file ends inside a block of type 0x{btype:08x} after frame {frame} "
                        f"({n} of {blen} bytes present)" + _why(chunks),
                    )
                    break
            bend = pos + blen - 4
            if u32(buf, bend)[0] != blen:
                tally.stop(
                    CaptureAnomaly.BAD_BLOCK,
                    f"block of type 0x{btype:08x} after frame {frame}: trailing length "
                    f"differs from leading length {blen}; rest of file not read",
                )
                break
            body = pos + BLOCK_HEADER_LEN
            if btype in (BT_EPB, BT_OPB):
                if blen < EPB_MIN_LEN:
                    tally.stop(CaptureAnomaly.BAD_BLOCK, _short(btype, blen, frame))
                    break
                if btype == BT_EPB:
                    iface, hi, lo, caplen, origlen = unpack_epb(buf, body)
                else:
                    iface, _drops, hi, lo, caplen, origlen = unpack_opb(buf, body)
                start = body + PACKET_FIELDS_LEN
                end = start + caplen
                if iface >= len(interfaces) or end > bend:
                    tally.stop(
                        CaptureAnomaly.BAD_BLOCK,
                        f"packet block after frame {frame} names interface {iface} of "
                        f"{len(interfaces)} or claims {caplen} bytes in a {blen}-byte "
                        "block; rest of file not read",
                    )
                    break
                link_type, units, offset, fcs, _snap = interfaces[iface]
                ts = _exact_quotient((hi << 32) | lo, units) + offset
                frame += 1
                if first is None:
                    first = prev = lowest = highest = ts
                    tally.first_ts = ts
                elif ts < prev:
                    tally.backwards += 1
                    if not tally.first_backwards_frame:
                        tally.first_backwards_frame = frame
                    if ts < lowest:
                        lowest = ts
                elif ts > highest:
                    highest = ts
                prev = ts
            elif btype == BT_SPB:
                if blen < SPB_MIN_LEN or not interfaces:
                    tally.stop(
                        CaptureAnomaly.BAD_BLOCK,
                        f"simple packet block after frame {frame} with no interface or "
                        f"length {blen}; rest of file not read",
                    )
                    break
                (origlen,) = u32(buf, body)
                link_type, units, offset, fcs, snap = interfaces[0]
                caplen = min(origlen, bend - body - 4)
                if snap:
                    caplen = min(caplen, snap)
                start = body + 4
                end = start + caplen
                frame += 1
                ts = prev  # an SPB has no timestamp: it keeps the previous one
            else:
                if btype == BT_IDB:
                    if blen < IDB_MIN_LEN:
                        tally.stop(CaptureAnomaly.BAD_BLOCK, _short(btype, blen, frame))
                        break
                    if len(interfaces) >= MAX_INTERFACES:
                        tally.stop(
                            CaptureAnomaly.BAD_BLOCK,
                            f"more than {MAX_INTERFACES} interfaces in one section after frame "
                            f"{frame}; rest of file not read",
                        )
                        break
                    interface = _interface(buf, body, bend, order)
                    interfaces.append(interface)
                    tally.note_link_type(interface.link_type)
                    tally.ts_resolution = min(tally.ts_resolution, 1 / interface.units_per_sec)
                    if first_idb:
                        tally.snaplen = interface.snaplen
                        first_idb = False
                elif btype == BT_SHB:
                    if blen < SHB_MIN_LEN:
                        tally.stop(CaptureAnomaly.BAD_BLOCK, _short(btype, blen, frame))
                        break
                    major = struct.unpack_from(order + "H", buf, body + 4)[0]
                    if major != SUPPORTED_MAJOR_VERSION:
                        tally.stop(
                            CaptureAnomaly.BAD_BLOCK,
                            f"section after frame {frame} has unsupported version {major}; "
                            "rest of file not read",
                        )
                        break
                    interfaces = []
                pos += blen
                continue
            if caplen < origlen:
                tally.snaplen_cut += 1
                if not tally.first_cut_frame:
                    tally.first_cut_frame = frame
            pos += blen
            if fcs:
                end = start + max(0, min(caplen, origlen - fcs))
            out = sink(buf, start, end, ts, link_type, frame)
            if out is not None:
                yield out
    finally:
        tally.note_times(frame, first, prev, lowest, highest)


def _short(btype: int, blen: int, frame: int) -> str:
    return (
        f"block of type 0x{btype:08x} after frame {frame} is too short ({blen} bytes); "
        "rest of file not read"
    )


def _why(chunks: ChunkReader) -> str:
    return f" ({chunks.error})" if chunks.error else ""
