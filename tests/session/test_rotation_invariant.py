"""A capture cut into a rotation set anywhere (as `tcpdump -C/-W` would) gives the same sessions.

The files are named so that name order is not time order (a wrapped ring buffer); smtpfw must
order them by their first packet and join connections that span files.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import read_sessions
from analyzer.session.export import session_dict

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT / "captures" / "esa-starttls-xxxxxxxx" / "client-side.pcap",
    ROOT / "captures" / "pix-dkim-reset" / "server-side.pcap",
]
PCAP_HEADER = 24
RECORD_HEADER = struct.Struct("<IIII")
"""pcap record header (little-endian files, as the samples are): ts_sec, ts_usec, incl, orig."""


def records(path: Path) -> tuple[bytes, list[bytes]]:
    data = path.read_bytes()
    header, pos, out = data[:PCAP_HEADER], PCAP_HEADER, []
    while pos < len(data):
        incl = RECORD_HEADER.unpack_from(data, pos)[2]
        out.append(data[pos : pos + RECORD_HEADER.size + incl])
        pos += RECORD_HEADER.size + incl
    return header, out


def comparable(path_or_paths: Any) -> list[dict[str, Any]]:
    sessions = [session_dict(s) for s in read_sessions(path_or_paths)]
    for s in sessions:
        for t in s["transactions"]:
            t.pop("frame")  # frame numbers restart in every file, as in Wireshark
    return sessions


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    source=st.sampled_from(SOURCES),
    cuts=st.sets(st.integers(1, 10_000), max_size=6),
    seed=st.integers(0, 1000),
)
def test_any_rotation_split_gives_the_sessions_of_the_whole_file(
    source: Path, cuts: set[int], seed: int, tmp_path_factory: Any
) -> None:
    header, recs = records(source)
    points = sorted({c % len(recs) for c in cuts} - {0})
    pieces = [recs[a:b] for a, b in zip([0, *points], [*points, len(recs)], strict=True)]
    folder = tmp_path_factory.mktemp("ring")
    names = [f"ring.pcap{i}" for i in range(len(pieces))]
    random.Random(seed).shuffle(names)  # wrapped ring buffer: names say nothing about time
    files = []
    for name, piece in zip(names, pieces, strict=True):
        path = folder / name
        path.write_bytes(header + b"".join(piece))
        files.append(path)
    assert comparable(sorted(files)) == comparable(source)
