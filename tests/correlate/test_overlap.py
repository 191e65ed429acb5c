"""An operator's mistake never becomes a confirmed diagnosis.

Two captures that are not the two sides of one firewall (another pair's file, the same file
twice, a copy of it) must say so as the verdict, never yield a `confirmed` finding.
"""

from __future__ import annotations

import gzip
import itertools
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from analyzer.correlate import estimate_offset, pair_sessions
from analyzer.correlate.overlap import OverlapKind, corroborated_pairs, judge_overlap
from analyzer.errors import UsageError
from analyzer.pipeline import analyze, read_sessions
from tests.correlate.mutate import Mutation, mutate

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
PAIRS = sorted(
    d.name
    for d in CAPTURES.iterdir()
    if (d / "client-side.pcap").exists() and (d / "server-side.pcap").exists()
)
CROSS = [(a, b) for a, b in itertools.permutations(PAIRS, 2)]


def _confirmed(client: Path, server: Path) -> list[str]:
    analysis = analyze(client_side=client, server_side=server)
    return [f"{f.id} {f.kind}" for f in analysis.findings if str(f.confidence) == "confirmed"]


@pytest.mark.parametrize(("a", "b"), CROSS, ids=[f"{a}+{b}" for a, b in CROSS])
def test_unrelated_captures_never_give_a_confirmed_finding(a: str, b: str) -> None:
    client, server = CAPTURES / a / "client-side.pcap", CAPTURES / b / "server-side.pcap"
    analysis = analyze(client_side=client, server_side=server)
    assert analysis.overlap is not None and not analysis.overlap.proven
    assert not [f for f in analysis.findings if str(f.confidence) == "confirmed"]


@pytest.mark.parametrize(("a", "b"), CROSS, ids=[f"{a}+{b}" for a, b in CROSS])
def test_unrelated_captures_of_the_same_minutes_never_give_a_confirmed_finding(
    a: str, b: str, tmp_path: Path
) -> None:
    """The harder mistake: the wrong file from the same hour, its look-alike sessions (the
    same hosts, EHLO names and probe dialogues) starting within a plausible clock offset."""
    client = CAPTURES / a / "client-side.pcap"
    first_a = read_sessions(client)[0].start_ts
    first_b = read_sessions(CAPTURES / b / "server-side.pcap")[0].start_ts
    server = tmp_path / "server-side.pcap"
    shift = first_a - first_b + 37.0
    mutate(CAPTURES / b / "server-side.pcap", server, Mutation(shift, seed=7, split_segments=False))
    analysis = analyze(client_side=client, server_side=server)
    assert analysis.overlap is not None
    assert analysis.overlap.kind in (OverlapKind.UNPROVEN_OVERLAP, OverlapKind.NO_OVERLAP)
    assert not [f for f in analysis.findings if str(f.confidence) == "confirmed"]


def test_captures_far_apart_in_time_do_not_overlap() -> None:
    analysis = analyze(
        client_side=CAPTURES / "pix-starttls-masked" / "client-side.pcap",
        server_side=CAPTURES / "clean-starttls" / "server-side.pcap",
    )
    assert analysis.overlap is not None
    assert analysis.overlap.kind is OverlapKind.NO_OVERLAP
    assert analysis.findings == [] and analysis.alignments == []
    assert analysis.overlap.reasons


def test_look_alike_pairs_within_a_plausible_offset_are_an_unproven_overlap(
    tmp_path: Path,
) -> None:
    client = CAPTURES / "pix-starttls-masked" / "client-side.pcap"
    other = CAPTURES / "proxy-token-removed" / "server-side.pcap"
    shift = read_sessions(client)[0].start_ts - read_sessions(other)[0].start_ts + 37.0
    server = tmp_path / "server-side.pcap"
    mutate(other, server, Mutation(shift, seed=3, split_segments=False))
    analysis = analyze(client_side=client, server_side=server)
    assert analysis.overlap is not None
    assert analysis.overlap.kind is OverlapKind.UNPROVEN_OVERLAP
    assert analysis.pairs  # the probes look alike ...
    assert analysis.findings  # ... and what differs is still shown,
    assert {str(f.confidence) for f in analysis.findings} <= {"likely", "possible"}
    capped = [f for f in analysis.findings if f.details.get("confidence_capped")]
    assert capped and all(f.details["confidence_capped"] == "unproven_overlap" for f in capped)


def test_the_real_pairs_overlap() -> None:
    for pair in PAIRS:
        analysis = analyze(
            client_side=CAPTURES / pair / "client-side.pcap",
            server_side=CAPTURES / pair / "server-side.pcap",
        )
        assert analysis.overlap is not None and analysis.overlap.proven, pair
        assert analysis.overlap.corroborated == len(analysis.pairs), pair


def test_a_pair_without_tcp_timestamps_is_corroborated_by_its_message_ids(
    tmp_path: Path,
) -> None:
    source = CAPTURES / "pix-starttls-masked"
    client, server = tmp_path / "c.pcap", tmp_path / "s.pcap"
    mutate(source / "client-side.pcap", client, Mutation(0.0, 1, False, strip_timestamps=True))
    mutate(source / "server-side.pcap", server, Mutation(0.0, 2, False, strip_timestamps=True))
    analysis = analyze(client_side=client, server_side=server)
    assert analysis.overlap is not None and analysis.overlap.proven
    assert any(str(f.confidence) == "confirmed" for f in analysis.findings)


def test_look_alike_pairs_are_not_corroborated() -> None:
    """Pairs agreeing only on what look-alike sessions share corroborate nothing."""
    source = CAPTURES / "pix-starttls-masked"
    client = read_sessions(source / "client-side.pcap", "client")
    server = read_sessions(source / "server-side.pcap", "server")
    clock = estimate_offset(client, server)
    pairs = pair_sessions(client, server, clock).pairs
    assert len(corroborated_pairs(pairs)) == len(pairs)
    alike = [
        replace(p, matched_on=("c2s_length", "s2c_length", "helo"), corroborated=False)
        for p in pairs
    ]
    assert corroborated_pairs(alike) == ()
    verdict = judge_overlap(
        client, server, alike, clock, (0.0, 10.0), (37.0, 47.0), corroborated=()
    )
    assert verdict.kind is OverlapKind.UNPROVEN_OVERLAP
    far = judge_overlap(client, server, alike, clock, (0.0, 10.0), (9000.0, 9010.0), ())
    assert far.kind is OverlapKind.NO_OVERLAP


def test_one_file_for_both_sides_is_refused(tmp_path: Path) -> None:
    capture = CAPTURES / "clean-starttls" / "client-side.pcap"
    with pytest.raises(UsageError, match="same capture"):
        analyze(client_side=capture, server_side=capture)
    copy = tmp_path / "inside.pcap"
    shutil.copyfile(capture, copy)
    with pytest.raises(UsageError, match="same capture"):
        analyze(client_side=capture, server_side=copy)


def test_the_same_packets_in_another_file_are_refused(tmp_path: Path) -> None:
    capture = CAPTURES / "clean-starttls" / "server-side.pcap"
    packed = tmp_path / "server-side.pcap.gz"
    packed.write_bytes(gzip.compress(capture.read_bytes()))
    with pytest.raises(UsageError, match="same packets"):
        analyze(client_side=packed, server_side=capture)
