"""The fuzzer's seeds: the bundled captures, and the same traffic in the other formats we read.

Every `captures/**/*.pcap*` (and any `.gz`) file is a seed, with the other side of its pair as
the intact capture for two-sided runs. Crafted seeds re-write one bundled pair's records with
the byte-exact builders of `tests/capture/craft.py`: big-endian nanosecond pcap, pcapng of two
sections (little- then big-endian) with nanosecond and binary timestamp resolutions and SPB/OPB
blocks, Linux cooked (SLL) and raw IP link types, a gzip-compressed copy; plus the capture
layer's "zoo" file of every link type and block kind. Nothing here mutates anything.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.capture import craft, zoo
from tests.fuzz import layout

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
CRAFT_SOURCE = "clean-starttls"
"""The bundled pair whose records the crafted seeds re-write."""


@dataclass(frozen=True, slots=True)
class Seed:
    """One seed capture."""

    name: str
    """Path under the project root for bundled files, `crafted/<what>` otherwise."""
    data: bytes
    """The capture's bytes, not compressed."""
    other: Path
    """An intact capture to analyse against this one, two-sided."""
    gz: bool = False
    """Mutants of this seed are gzip-compressed."""


def _other_side(path: Path) -> Path:
    for mine, theirs in (("client-side", "server-side"), ("server-side", "client-side")):
        if path.name.startswith(mine):
            candidate = path.with_name(path.name.replace(mine, theirs, 1))
            if candidate.exists():
                return candidate
    return path


def bundled() -> list[Path]:
    """Every capture file under captures/, in a stable order."""
    found = [
        p for p in CAPTURES.rglob("*") if p.is_file() and (".pcap" in p.suffix or p.suffix == ".gz")
    ]
    return sorted(found)


def _records(data: bytes) -> list[tuple[float, bytes, int]]:
    """(timestamp, frame, original length) of each record of a classic pcap file."""
    parsed = layout.parse(data)
    assert parsed is not None and parsed.format == "pcap"
    nano = layout.PCAP_MAGICS[data[:4]][1]
    out = []
    for rec in parsed.records:
        sec, frac, _, orig = struct.unpack_from(parsed.order + "IIII", data, rec.start)
        ts = sec + frac / (1e9 if nano else 1e6)
        out.append((ts, data[rec.data_start : rec.data_start + rec.caplen], orig))
    return out


def _pcapng_two_sections(recs: list[tuple[float, bytes, int]]) -> bytes:
    half = len(recs) // 2
    out = [craft.shb("<"), craft.idb(1, snaplen=262144, tsresol=9), craft.idb(1, tsresol=0x80 | 20)]
    for i, (ts, frame, orig) in enumerate(recs[:half]):
        if i % 7 == 3:
            out.append(craft.opb(frame, round(ts * 1e9)))
        elif i % 5 == 4:
            out.append(craft.epb(frame, round(ts * 2**20), iface=1, origlen=orig))
        else:
            out.append(craft.epb(frame, round(ts * 1e9), origlen=orig))
    out.append(craft.shb(">"))
    out.append(craft.idb(1, order=">", tsresol=6, name=b"eth0"))
    for i, (ts, frame, orig) in enumerate(recs[half:]):
        if i % 9 == 8:
            out.append(craft.spb(frame, order=">"))
        else:
            out.append(craft.epb(frame, round(ts * 1e6), order=">", origlen=orig))
    return b"".join(out)


def _relinked(recs: list[tuple[float, bytes, int]], link_type: int) -> bytes:
    rows = []
    for ts, frame, orig in recs:
        network = frame[14:]
        if link_type == 113:
            linked = craft.sll(network, protocol=struct.unpack_from(">H", frame, 12)[0])
        else:
            linked = network
        rows.append(craft.Rec(linked, ts, orig - len(frame) + len(linked)))
    return craft.pcap(rows, link_type=link_type)


@cache
def seeds() -> tuple[Seed, ...]:
    """Every seed, bundled first, then crafted; the same list on every call."""
    out = [
        Seed(
            str(p.relative_to(ROOT)),
            gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes(),
            _other_side(p),
            gz=p.suffix == ".gz",
        )
        for p in bundled()
    ]
    source = CAPTURES / CRAFT_SOURCE / "client-side.pcap"
    other = _other_side(source)
    recs = _records(source.read_bytes())
    nano_be = craft.pcap([craft.Rec(f, t, o) for t, f, o in recs], order=">", nano=True)
    out += [
        Seed("crafted/pcap-nanosecond-big-endian", nano_be, other),
        Seed("crafted/pcapng-two-sections", _pcapng_two_sections(recs), other),
        Seed("crafted/pcap-linux-cooked", _relinked(recs, 113), other),
        Seed("crafted/pcap-raw-ip", _relinked(recs, 101), other),
        Seed("crafted/pcap-gzip", source.read_bytes(), other, gz=True),
        Seed("crafted/pcapng-zoo", zoo.build(), other),
    ]
    return tuple(out)
