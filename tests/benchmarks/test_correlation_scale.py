"""Two-sided correlation keeps pairing right when hundreds of sessions share the same two hosts.

A capture pair of 300 concurrent sessions (3% tampered) between one client MTA and one server,
through NAT, ISN randomization and a clock offset, is written by `benchmarks/pairs.py` with and
without TCP timestamps; `analyze` must pair every session with its true counterpart, give every
tampered session exactly the findings its tampering implies, and flag no untampered session.
The same holds for a newsletter run without timestamps (`--bulk`: one body for everyone, so
stream lengths collide and only Message-IDs and the timing of each line tell sessions apart).
The generator's own promises are checked here too, with a small reader of its own (struct only):
valid checksums, `tcp.stream` order, identical TSvals across the firewall, and bytes that differ
between the captures only where the firewall tampered.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.pipeline import analyze
from analyzer.result import Analysis

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SESSIONS = 300
TAMPERED = 0.03
SEED = 7
BULK_SESSIONS = 100
"""A newsletter run fails at this size already; a small one keeps the suite fast."""
BULK_TAMPERED = 0.05
"""Five tampered sessions: one of each mix."""


def _load(name: str) -> ModuleType:
    module_name = f"smtpfw_bench_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


pairs = _load("pairs")
scale = _load("correlate_scale")


@dataclass(frozen=True, slots=True)
class Run:
    truth: dict[str, Any]
    analysis: Analysis
    folder: Path
    bulk: bool


@pytest.fixture(
    scope="module",
    params=[
        (True, False, SESSIONS, TAMPERED),
        (False, False, SESSIONS, TAMPERED),
        (False, True, BULK_SESSIONS, BULK_TAMPERED),
    ],
    ids=["timestamps", "no-timestamps", "bulk-no-timestamps"],
)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    timestamps, bulk, sessions, tampered = request.param
    folder = tmp_path_factory.mktemp("pairs")
    opts = pairs.Options(
        sessions=sessions, tampered=tampered, seed=SEED, timestamps=timestamps, bulk=bulk
    )
    truth = pairs.generate(folder, opts)
    analysis = analyze(
        client_side=folder / pairs.CLIENT_SIDE, server_side=folder / pairs.SERVER_SIDE
    )
    return Run(truth, analysis, folder, bulk)


def _shown(failures: tuple[Any, ...]) -> str:
    return "\n".join(f"{f.client_id} → {f.peer} (true {f.server_id}): {f.note}" for f in failures)


# --- the analyzer at scale ------------------------------------------------------------------------


def test_every_session_pairs_with_its_true_counterpart(run: Run) -> None:
    result = scale.check(run.truth, run.analysis)
    wrong = result.of("mispaired") + result.of("unmatched")
    assert not wrong, _shown(wrong)
    assert result.paired_correctly == run.truth["options"]["sessions"]


def test_every_tampered_session_has_the_findings_its_tampering_implies(run: Run) -> None:
    result = scale.check(run.truth, run.analysis)
    options = run.truth["options"]
    assert result.tampered == round(options["sessions"] * options["tampered"])
    missed = result.of("missed")
    assert not missed, "\n".join(f"{f.client_id} {f.tampering}: {f.found}" for f in missed)


def test_no_untampered_session_is_flagged(run: Run) -> None:
    result = scale.check(run.truth, run.analysis)
    flagged = result.of("false_flag")
    assert not flagged, "\n".join(
        f"{f.client_id} {f.tampering}: expected {f.expected}, found {f.found}" for f in flagged
    )


def test_the_clock_offset_is_found_within_a_millisecond(run: Run) -> None:
    assert run.analysis.clock is not None
    transit_s = (
        sum(pairs.OUTSIDE_LINK_US) + sum(pairs.FIREWALL_US) + sum(pairs.INSIDE_LINK_US)
    ) / 2e6
    expected = run.truth["options"]["clock_offset_s"] + transit_s
    assert abs(run.analysis.clock.offset_s - expected) < 0.001


# --- the check itself ---------------------------------------------------------------------------


def test_the_check_reports_a_swapped_pair_a_missed_finding_and_a_false_flag(run: Run) -> None:
    baseline = scale.check(run.truth, run.analysis)
    wrong = {f.client_id for f in baseline.failures}
    truth = json.loads(json.dumps(run.truth))
    right = [s for s in truth["sessions"] if f"client#{s['client_stream']}" not in wrong]
    clean = [s for s in right if not s["tampering"]]
    tampered = next(s for s in right if s["tampering"] == ["banner_masked"])
    first, second = clean[0], clean[1]
    first["server_stream"], second["server_stream"] = (
        second["server_stream"],
        first["server_stream"],
    )
    clean[2]["tampering"] = ["dkim_reset"]
    tampered["tampering"] = None
    result = scale.check(truth, run.analysis)
    new = set(result.failures) - set(baseline.failures)

    def ids(problem: str) -> set[str]:
        return {f.client_id for f in new if f.problem == problem}

    assert ids("mispaired") == {
        f"client#{first['client_stream']}",
        f"client#{second['client_stream']}",
    }
    assert ids("missed") == {f"client#{clean[2]['client_stream']}"}
    assert ids("false_flag") == {f"client#{tampered['client_stream']}"}
    assert not result.ok


def test_the_expected_findings_cover_every_tampering_the_generator_makes() -> None:
    assert set(scale.EXPECTED_FINDINGS) == {str(t) for t in pairs.Tampering}
    assert scale.expected_kinds(None) == frozenset()
    assert scale.expected_kinds(["banner_masked", "ehlo_starttls_masked"]) == {
        "banner_masked",
        "ehlo_keyword_masked",
        "tls_downgrade",
    }


def test_every_tampering_mix_appears_in_the_test_pair(run: Run) -> None:
    seen = {tuple(s["tampering"]) for s in run.truth["sessions"] if s["tampering"]}
    assert seen == {tuple(str(t) for t in mix) for mix in pairs.TAMPERING_MIX}


# --- the generator keeps its promises ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    ts_us: int
    src: bytes
    ttl: int
    sport: int
    dport: int
    seq: int
    flags: int
    tsval: int | None
    payload: bytes


def _fold(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _tsval(options: bytes) -> int | None:
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        length = options[i + 1]
        if kind == 8:
            return int(struct.unpack_from("!I", options, i + 2)[0])
        i += length
    return None


def read_frames(path: Path) -> list[Frame]:
    """Every frame of a classic pcap of Ethernet/IPv4/TCP; asserts both checksums of each."""
    data = path.read_bytes()
    assert struct.unpack_from("<IHHiIII", data)[0] == 0xA1B2C3D4
    frames: list[Frame] = []
    pos = 24
    while pos < len(data):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", data, pos)
        frame = data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        assert _fold(ip[:ihl]) == 0xFFFF, "IPv4 header checksum"
        src, dst = ip[12:16], ip[16:20]
        tcp = ip[ihl:total]
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
        assert _fold(pseudo + tcp) == 0xFFFF, "TCP checksum"
        sport, dport, seq, _, off, flags = struct.unpack_from("!HHIIBB", tcp)
        header = (off >> 4) * 4
        frames.append(
            Frame(
                sec * 1_000_000 + usec,
                src,
                ip[8],
                sport,
                dport,
                seq,
                flags,
                _tsval(tcp[20:header]),
                tcp[header:],
            )
        )
    return frames


@dataclass
class Conn:
    first: int
    """Position of the connection's first frame in the capture."""
    syn_first: bool
    syn_tsval: int | None = None
    isn: dict[bool, int] = field(default_factory=dict)
    pieces: dict[bool, list[tuple[int, bytes]]] = field(default_factory=lambda: defaultdict(list))
    forged_rsts: int = 0

    def stream(self, from_client: bool) -> bytes:
        """One direction's bytes, asserting the segments tile it without holes or overlaps."""
        out = b""
        for offset, payload in sorted(self.pieces[from_client]):
            assert offset == len(out), "a hole or an overlap in the stream"
            out += payload
        return out


def connections(frames: list[Frame]) -> dict[int, Conn]:
    """Connections by client port (the side of the SMTP port is the server)."""
    conns: dict[int, Conn] = {}
    for n, f in enumerate(frames):
        from_client = f.dport == pairs.SMTP_PORT
        port = f.sport if from_client else f.dport
        conn = conns.get(port)
        if conn is None:
            conn = conns[port] = Conn(n, bool(f.flags & pairs.SYN) and from_client)
        if f.flags & pairs.SYN:
            conn.isn[from_client] = f.seq
            if from_client:
                conn.syn_tsval = f.tsval
            continue
        if f.ttl == pairs.FORGED_TTL:
            conn.forged_rsts += 1
        if f.payload:
            offset = (f.seq - conn.isn[from_client] - 1) % (1 << 32)
            conn.pieces[from_client].append((offset, f.payload))
    return conns


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sessions=st.integers(1, 16),
    tampered=st.sampled_from([0.0, 0.25, 1.0]),
    seed=st.integers(0, 2**16),
    timestamps=st.booleans(),
    bulk=st.booleans(),
)
def test_the_generator_writes_what_its_ground_truth_says(
    tmp_path: Path, sessions: int, tampered: float, seed: int, timestamps: bool, bulk: bool
) -> None:
    folder = tmp_path / f"{sessions}-{tampered}-{seed}-{timestamps}-{bulk}"
    opts = pairs.Options(
        sessions=sessions, tampered=tampered, seed=seed, timestamps=timestamps, bulk=bulk
    )
    truth = pairs.generate(folder, opts)
    outside = connections(read_frames(folder / pairs.CLIENT_SIDE))
    inside = connections(read_frames(folder / pairs.SERVER_SIDE))
    assert len(outside) == len(inside) == len(truth["sessions"]) == sessions
    by_first_out = sorted(outside, key=lambda p: outside[p].first)
    by_first_in = sorted(inside, key=lambda p: inside[p].first)
    for s in truth["sessions"]:
        out_port = int(s["client"].rsplit(":", 1)[1])
        in_port = int(s["client_inside"].rsplit(":", 1)[1])
        a, b = outside[out_port], inside[in_port]
        # tcp.stream numbers connections in order of their first frame; each starts with a SYN.
        assert by_first_out.index(out_port) == s["client_stream"]
        assert by_first_in.index(in_port) == s["server_stream"]
        assert a.syn_first and b.syn_first
        # The firewall randomizes ISNs but passes the client's TSval untouched.
        assert a.isn[True] != b.isn[True] and a.isn[False] != b.isn[False]
        if timestamps:
            assert a.syn_tsval is not None and a.syn_tsval == b.syn_tsval
        else:
            assert a.syn_tsval is None and b.syn_tsval is None
        sent, received = a.stream(True), b.stream(True)
        served, shown = b.stream(False), a.stream(False)
        kinds = set(s["tampering"] or ())
        if not kinds:
            assert (sent, served) == (received, shown)
            assert a.forged_rsts == b.forged_rsts == 0
        if "dkim_reset" in kinds:
            assert len(received) < len(sent) and sent.startswith(received)
            assert received.endswith(b"\r\n") and b"DKIM-Signature:" in received
            assert a.forged_rsts == b.forged_rsts == 1
        else:
            assert len(received) == len(sent)
        if "banner_masked" in kinds:
            assert served.startswith(b"220 mx.example.net") and shown.startswith(b"220 ****")
        if "ehlo_starttls_masked" in kinds:
            assert b"250-STARTTLS" in served and b"250-XXXXXXXA" in shown
            assert b"MAIL FROM:" in sent  # the message went in cleartext
        if "starttls_command_masked" in kinds:
            assert b"STARTTLS\r\n" in sent and b"XXXXXXXX\r\n" in received
            assert b"500 5.5.2 Error: command not recognized" in served
        if bulk:
            assert len(s["message_ids"]) == 1
        for mid in s["message_ids"]:
            if not s["tls"] and "dkim_reset" not in kinds:
                assert mid.encode() in sent and mid.encode() in received
