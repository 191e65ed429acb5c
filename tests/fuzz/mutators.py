"""Structure-aware mutations of capture files: headers, lengths, records, truncation, gzip.

Each mutation takes a random generator and a capture's bytes (pcap or pcapng, not gzip) and
returns mutated bytes, or None when it does not apply (no pcapng block to change in a pcap
file, no TCP header in the chosen frame). `mutate` stacks a few of them on a seed, perhaps
wraps the result in gzip and damages that, and says which oracles the result supports:
`Mutant.prefix` (the file's readable prefix, for a file that was only cut short) and
`Mutant.tellable` (damage any reader can see, for an otherwise intact file). Checksums are not
fixed: nothing in the analyzer verifies them.

Only the fuzzer uses this module; it knows the formats only as far as `layout` does.
"""

from __future__ import annotations

import gzip
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests.fuzz import layout
from tests.fuzz.layout import Layout, Record

Mutation = Callable[[random.Random, bytes, Sequence[bytes]], bytes | None]
"""(rng, data, other seeds for splicing) -> mutated data, or None when not applicable."""

INTERESTING_32 = (
    0,
    1,
    2,
    3,
    4,
    11,
    12,
    15,
    16,
    17,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0xFFFF,
    0x10000,
    0x40000,
    0x40001,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
)
"""Boundary values for 32-bit length and time fields (0x40000: the largest caplen accepted)."""
INTERESTING_16 = (0, 1, 4, 5, 19, 20, 21, 40, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF)
LINK_TYPES = (0, 1, 9, 101, 105, 108, 113, 127, 147, 192, 228, 229, 276, 0xFFFF)


def _pick32(rng: random.Random, current: int) -> int:
    choice = rng.random()
    if choice < 0.5:
        return rng.choice(INTERESTING_32)
    if choice < 0.8:
        return (current + rng.choice((-1, 1)) * rng.choice((1, 2, 4, 8, 100, 1 << 16))) & 0xFFFFFFFF
    return rng.getrandbits(32)


def _pick16(rng: random.Random, current: int) -> int:
    if rng.random() < 0.6:
        return rng.choice(INTERESTING_16)
    if rng.random() < 0.5:
        return (current + rng.choice((-1, 1)) * rng.choice((1, 4, 8, 100))) & 0xFFFF
    return rng.getrandbits(16)


def _put(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    size = struct.calcsize(fmt)
    if offset < 0 or offset + size > len(data):
        return data
    return data[:offset] + struct.pack(fmt, value) + data[offset + size :]


def _get(data: bytes, offset: int, fmt: str) -> int:
    value: int = struct.unpack_from(fmt, data, offset)[0]
    return value


def _layout(data: bytes, fmt: str | None = None) -> Layout | None:
    parsed = layout.parse(data)
    if parsed is None or (fmt is not None and parsed.format != fmt):
        return None
    return parsed


# -- classic pcap ---------------------------------------------------------------------------


def pcap_magic(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """Another magic: the other byte order or resolution, Kuznetzov's, pcapng's, or noise."""
    if _layout(data, "pcap") is None:
        return None
    magics = [*layout.PCAP_MAGICS, b"\x34\xcd\xb2\xa1", b"\x0a\x0d\x0d\x0a", rng.randbytes(4)]
    return rng.choice(magics) + data[4:]


def pcap_version(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    parsed = _layout(data, "pcap")
    if parsed is None:
        return None
    return _put(data, rng.choice((4, 6)), parsed.order + "H", _pick16(rng, 2))


def pcap_snaplen(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    parsed = _layout(data, "pcap")
    if parsed is None:
        return None
    return _put(data, 16, parsed.order + "I", _pick32(rng, _get(data, 16, parsed.order + "I")))


def pcap_linktype(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """Another link type, sometimes with the FCS-length bits of the upper half set."""
    parsed = _layout(data, "pcap")
    if parsed is None:
        return None
    value = rng.choice(LINK_TYPES)
    if rng.random() < 0.3:
        value |= 0x04000000 | rng.randrange(16) << 28
    return _put(data, 20, parsed.order + "I", value)


def _pick_record(rng: random.Random, parsed: Layout) -> Record | None:
    packets = parsed.packets
    return rng.choice(packets) if packets else None


def record_ts(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """A record's seconds or fraction: zero, all ones, a jump, a fraction beyond one second."""
    parsed = _layout(data, "pcap")
    rec = parsed and _pick_record(rng, parsed)
    if not parsed or rec is None:
        return None
    offset = rec.start + rng.choice((0, 4))
    return _put(
        data, offset, parsed.order + "I", _pick32(rng, _get(data, offset, parsed.order + "I"))
    )


def record_lengths(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """caplen against len: caplen above len, zero, past the end of the file, above the largest
    accepted; or the original length below caplen or huge."""
    parsed = _layout(data, "pcap")
    rec = parsed and _pick_record(rng, parsed)
    if not parsed or rec is None:
        return None
    order = parsed.order
    if rng.random() < 0.6:
        caplen = (
            rng.choice(
                (
                    0,
                    1,
                    rec.caplen + 1,
                    rec.caplen - 1,
                    len(data) - rec.data_start + rng.randrange(1, 99),
                    _pick32(rng, rec.caplen),
                )
            )
            & 0xFFFFFFFF
        )
        return _put(data, rec.start + 8, order + "I", caplen)
    return _put(data, rec.start + 12, order + "I", _pick32(rng, rec.caplen))


# -- pcapng ---------------------------------------------------------------------------------


def block_type(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """A block turned into another kind (packet blocks into each other, an IDB, an SHB,
    an unknown type)."""
    parsed = _layout(data, "pcapng")
    if parsed is None or len(parsed.records) < 2:
        return None
    rec = rng.choice(parsed.records[1:])
    new = rng.choice((1, 2, 3, 4, 5, 6, 0x0A0D0D0A, 0x00000BAD, 0x80000001, rng.getrandbits(32)))
    return _put(data, rec.start, rec.order + "I", new)


def block_length(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """A block's leading or trailing total length changed (the two then disagree), or both."""
    parsed = _layout(data, "pcapng")
    if parsed is None:
        return None
    rec = rng.choice(parsed.records)
    total = rec.end - rec.start
    new = (
        rng.choice(
            (
                0,
                4,
                8,
                11,
                12,
                13,
                total - 4,
                total + 4,
                total + 1,
                16 << 20,
                1 << 31,
                _pick32(rng, total),
            )
        )
        & 0xFFFFFFFF
    )
    where = rng.random()
    out = data
    if where < 0.7:
        out = _put(out, rec.start + 4, rec.order + "I", new)
    if where > 0.4:
        out = _put(out, rec.end - 4, rec.order + "I", new)
    return out


def shb_fields(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """A section header's byte-order magic swapped or broken, or its version changed."""
    parsed = _layout(data, "pcapng")
    if parsed is None:
        return None
    sections = [r for r in parsed.records if r.kind == layout.PCAPNG_SHB]
    rec = rng.choice(sections)
    choice = rng.random()
    if choice < 0.4:
        swapped = ">" if rec.order == "<" else "<"
        return _put(data, rec.start + 8, swapped + "I", layout.PCAPNG_BYTE_ORDER_MAGIC)
    if choice < 0.6:
        return _put(data, rec.start + 8, "<I", rng.getrandbits(32))
    return _put(data, rec.start + 12 + rng.choice((0, 2)), rec.order + "H", _pick16(rng, 1))


def idb_fields(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """An interface's link type, snaplen or timestamp options: if_tsresol (any byte, both
    bases), if_tsoffset and if_fcslen where present."""
    parsed = _layout(data, "pcapng")
    if parsed is None:
        return None
    idbs = [r for r in parsed.records if r.kind == layout.PCAPNG_IDB and r.end - r.start >= 20]
    if not idbs:
        return None
    rec = rng.choice(idbs)
    order = rec.order
    options: list[tuple[int, int, int]] = []
    pos = rec.start + 16
    while pos + 4 <= rec.end - 4:
        code, length = struct.unpack_from(order + "HH", data, pos)
        if code == 0:
            break
        options.append((code, pos + 4, length))
        pos += 4 + length + (-length % 4)
    tunable = [o for o in options if o[0] in (9, 13, 14)]
    if tunable and rng.random() < 0.6:
        code, value_at, length = rng.choice(tunable)
        if code == 14 and length >= 8:
            value = rng.choice((0, 1 << 62, -(1 << 62), rng.getrandbits(63) - (1 << 62)))
            return _put(data, value_at, order + "q", value)
        byte = rng.choice((0, 1, 3, 6, 9, 19, 20, 63, 64, 0x7F, 0x80, 0x80 | 20, 0xBF, 0xFF))
        return data[:value_at] + bytes((byte,)) + data[value_at + 1 :]
    if rng.random() < 0.5:
        return _put(data, rec.start + 8, order + "H", rng.choice(LINK_TYPES))
    return _put(data, rec.start + 12, order + "I", _pick32(rng, 0))


def packet_block_fields(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """An EPB/OPB's captured or original length, interface number or timestamp changed."""
    parsed = _layout(data, "pcapng")
    if parsed is None:
        return None
    blocks = [r for r in parsed.records if r.kind in (layout.PCAPNG_EPB, layout.PCAPNG_OPB)]
    if not blocks:
        return None
    rec = rng.choice(blocks)
    order = rec.order
    field = rng.choice(("caplen", "origlen", "iface", "ts_high", "ts_low"))
    if field == "caplen":
        return _put(
            data,
            rec.start + 20,
            order + "I",
            rng.choice(
                (0, rec.caplen + 1, rec.caplen + 4, rec.end - rec.start, _pick32(rng, rec.caplen))
            ),
        )
    if field == "origlen":
        return _put(data, rec.start + 24, order + "I", _pick32(rng, rec.caplen))
    if field == "iface":
        if rec.kind == layout.PCAPNG_OPB:
            return _put(data, rec.start + 8, order + "H", rng.choice((1, 2, 7, 0xFFFF)))
        return _put(data, rec.start + 8, order + "I", rng.choice((1, 2, 7, 0xFFFFFFFF)))
    offset = rec.start + (12 if field == "ts_high" else 16)
    return _put(data, offset, order + "I", _pick32(rng, _get(data, offset, order + "I")))


# -- IP and TCP headers ---------------------------------------------------------------------


def _pick_headers(
    rng: random.Random, data: bytes, want_tcp: bool
) -> tuple[layout.Headers, Record] | None:
    parsed = _layout(data)
    if parsed is None:
        return None
    packets = list(parsed.packets)
    rng.shuffle(packets)
    for rec in packets[:32]:
        found = layout.headers(data, rec)
        if found is not None and (found.tcp is not None or not want_tcp):
            return found, rec
    return None


def ip_fields(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """IPv4 version/IHL, total length, flags and fragment offset, protocol; IPv6 payload length
    and next header."""
    found = _pick_headers(rng, data, want_tcp=False)
    if found is None:
        return None
    hdr, _rec = found
    ip = hdr.ip
    if hdr.version == 6:
        if rng.random() < 0.5:
            return _put(data, ip + 4, ">H", _pick16(rng, _get(data, ip + 4, ">H")))
        return (
            data[: ip + 6]
            + bytes((rng.choice((0, 6, 17, 43, 44, 51, 59, 60, 255)),))
            + data[ip + 7 :]
        )
    field = rng.choice(("ihl", "version", "total", "frag", "frag", "proto"))
    if field == "ihl":
        return data[:ip] + bytes((0x40 | rng.randrange(16),)) + data[ip + 1 :]
    if field == "version":
        return data[:ip] + bytes((rng.randrange(16) << 4 | data[ip] & 0x0F,)) + data[ip + 1 :]
    if field == "total":
        return _put(data, ip + 2, ">H", _pick16(rng, _get(data, ip + 2, ">H")))
    if field == "frag":
        flags = rng.choice((0, 0x2000, 0x4000, 0x6000, 0x8000))
        offset = rng.choice((0, 1, 2, 185, 0x1FFF, rng.randrange(0x2000)))
        return _put(data, ip + 6, ">H", flags | offset)
    return (
        data[: ip + 9]
        + bytes((rng.choice((0, 1, 4, 6, 17, 41, 47, 50, 51, 255)),))
        + data[ip + 10 :]
    )


def tcp_fields(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """TCP data offset, flags, a sequence or acknowledgement jump, ports, or option bytes
    (kinds with lengths 0, 1 and past the header)."""
    found = _pick_headers(rng, data, want_tcp=True)
    if found is None:
        return None
    hdr, _rec = found
    tcp = hdr.tcp
    assert tcp is not None
    field = rng.choice(("doff", "flags", "seq", "ack", "port", "options", "options"))
    if field == "doff":
        return data[: tcp + 12] + bytes((rng.randrange(16) << 4,)) + data[tcp + 13 :]
    if field == "flags":
        flags = rng.choice((0, 0x01, 0x02, 0x04, 0x03, 0x06, 0x07, 0x12, 0x14, 0x29, 0xFF))
        return data[: tcp + 13] + bytes((flags,)) + data[tcp + 14 :]
    if field in ("seq", "ack"):
        offset = tcp + (4 if field == "seq" else 8)
        return _put(data, offset, ">I", _pick32(rng, _get(data, offset, ">I")))
    if field == "port":
        return _put(
            data, tcp + rng.choice((0, 2)), ">H", rng.choice((0, 25, 587, 2525, 80, 465, 0xFFFF))
        )
    doff = (data[tcp + 12] >> 4) * 4
    if doff <= 20:
        doff = 20 + 4 * rng.randrange(1, 11)
        data = data[: tcp + 12] + bytes((doff // 4 << 4,)) + data[tcp + 13 :]
    space = min(doff - 20, hdr.frame_end - tcp - 20)
    if space <= 0:
        return None
    kind = rng.choice((0, 1, 2, 3, 4, 5, 8, 19, 29, 30, 34, 254, 255))
    length = rng.choice((0, 1, 2, 3, 10, 40, 255))
    opts = bytes((kind, length)) + rng.randbytes(max(0, space - 2))
    return data[: tcp + 20] + opts[:space] + data[tcp + 20 + space :]


# -- records, bytes, files ------------------------------------------------------------------


def records(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """Records (pcapng: blocks after the first) duplicated, swapped, or dropped."""
    parsed = _layout(data)
    if parsed is None:
        return None
    recs = list(parsed.records[1:] if parsed.format == "pcapng" else parsed.records)
    if len(recs) < 2:
        return None
    head = data[: recs[0].start]
    tail = data[recs[-1].end :]
    pieces = [data[r.start : r.end] for r in recs]
    i, j = rng.randrange(len(pieces)), rng.randrange(len(pieces))
    choice = rng.random()
    if choice < 0.4:
        for _ in range(rng.choice((1, 1, 2, 50))):
            pieces.insert(j, pieces[i])
    elif choice < 0.8:
        pieces[i], pieces[j] = pieces[j], pieces[i]
    else:
        del pieces[i]
    return head + b"".join(pieces) + tail


def splice(rng: random.Random, data: bytes, others: Sequence[bytes]) -> bytes | None:
    """This file's start joined to another capture's records (at record boundaries when both
    parse, else at random offsets)."""
    if not others:
        return None
    other = rng.choice(others)
    mine, theirs = _layout(data), _layout(other)
    if mine and theirs and mine.records and theirs.records and rng.random() < 0.7:
        cut = rng.choice(mine.records).end
        start = rng.choice(theirs.records).start
        return data[:cut] + other[start:]
    return data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1) :]


def bit_flips(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    if not data:
        return None
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8, 32))):
        pos = rng.randrange(len(out))
        out[pos] ^= 1 << rng.randrange(8)
    return bytes(out)


def byte_runs(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """A run of bytes overwritten with a boundary value, inserted, or deleted."""
    if not data:
        return None
    pos = rng.randrange(len(data))
    size = rng.choice((1, 2, 4, 8, 64))
    choice = rng.random()
    if choice < 0.4:
        return data[:pos] + bytes((rng.choice((0, 0xFF, 0x7F, 0x80)),)) * size + data[pos + size :]
    if choice < 0.7:
        return data[:pos] + rng.randbytes(size) + data[pos:]
    return data[:pos] + data[pos + size :]


def truncate(rng: random.Random, data: bytes, _: Sequence[bytes]) -> bytes | None:
    """Cut the file at a random offset: inside a record's header or frame, or anywhere."""
    if len(data) < 2:
        return None
    parsed = _layout(data)
    if parsed is not None and parsed.records and rng.random() < 0.7:
        rec = rng.choice(parsed.records)
        cut = rng.randrange(rec.start + 1, rec.end)
        return data[:cut]
    return data[: rng.randrange(len(data))]


STRUCTURAL: tuple[tuple[Mutation, float], ...] = (
    (pcap_magic, 0.3),
    (pcap_version, 0.3),
    (pcap_snaplen, 0.5),
    (pcap_linktype, 0.5),
    (record_ts, 1.0),
    (record_lengths, 1.5),
    (block_type, 1.0),
    (block_length, 1.5),
    (shb_fields, 0.7),
    (idb_fields, 1.0),
    (packet_block_fields, 1.5),
    (ip_fields, 2.0),
    (tcp_fields, 2.0),
    (records, 1.0),
    (splice, 0.7),
    (bit_flips, 1.5),
    (byte_runs, 1.0),
    (truncate, 1.5),
)
"""Each mutation and its relative weight."""


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def gzip_damage(rng: random.Random, compressed: bytes) -> tuple[bytes, str]:
    """A gzip stream damaged: its trailer's CRC or length, cut short, or a deflate byte."""
    choice = rng.random()
    if choice < 0.3 and len(compressed) > 8:
        pos = len(compressed) - rng.randrange(1, 9)
        return compressed[:pos] + bytes((compressed[pos] ^ 0xFF,)) + compressed[pos + 1 :], (
            "gzip_trailer"
        )
    if choice < 0.65:
        return compressed[: rng.randrange(len(compressed))], "gzip_cut"
    if choice < 0.85:
        return compressed + rng.randbytes(rng.choice((1, 7, 20))), "gzip_trailing_garbage"
    pos = rng.randrange(10, max(11, len(compressed) - 8))
    return compressed[:pos] + bytes((compressed[pos] ^ 0x55,)) + compressed[pos + 1 :], (
        "gzip_deflate_byte"
    )


@dataclass(frozen=True, slots=True)
class Mutant:
    """One mutated capture and what the oracles may expect of it."""

    data: bytes
    steps: tuple[str, ...]
    """Names of the mutations applied, in order."""
    prefix: bytes | None = None
    """For a seed that was only cut short (perhaps inside gzip): the header and the complete
    records before the cut, which a reader must still see in full."""
    tellable: str | None = None
    """Damage to an otherwise intact file that a reader can see: a cut in the middle of a
    record or block, a gzip stream cut short or with a wrong trailer."""


def mutate(
    rng: random.Random, seed: bytes, others: Sequence[bytes], gz_seed: bool = False
) -> Mutant:
    """Stack one to three mutations on `seed`, perhaps wrap in gzip and damage the wrapping."""
    data = seed
    steps: list[str] = []
    mutations = [m for m, _ in STRUCTURAL]
    weights = [w for _, w in STRUCTURAL]
    count = rng.choice((1, 1, 1, 2, 2, 3)) if rng.random() < 0.92 else 0
    only_gzip = count == 0
    for _ in range(max(count, 0)):
        for _attempt in range(8):
            mutation = rng.choices(mutations, weights)[0]
            out = mutation(rng, data, others)
            if out is not None and out != data:
                data = out
                steps.append(mutation.__name__)
                break
    wrap = gz_seed or only_gzip or rng.random() < 0.1
    prefix: bytes | None = None
    tellable: str | None = None
    if steps == ["truncate"]:
        prefix = layout.readable_prefix(data)
        mid = layout.parse(seed)
        if mid is not None and prefix is not None and len(prefix) < len(data):
            tellable = "cut_mid_record"
    if not wrap:
        return Mutant(data, tuple(steps), prefix, tellable)
    compressed = _gzip(data)
    steps.append("gzip")
    intact = not steps[:-1]
    if rng.random() < (0.5 if intact else 0.2):
        compressed, damage = gzip_damage(rng, compressed)
        steps.append(damage)
        prefix = tellable = None
        if intact and damage == "gzip_cut":
            prefix = layout.readable_prefix(layout.gunzip_prefix(compressed))
            tellable = damage
        elif intact and damage == "gzip_trailer":
            prefix, tellable = seed, damage
        elif intact and damage == "gzip_trailing_garbage":
            prefix = seed
    return Mutant(compressed, tuple(steps), prefix, tellable)
