"""Captures given the wrong way round are recognised, said, and analysed the right way round."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from analyzer.correlate import SessionPair, estimate_offset, pair_sessions
from analyzer.correlate.orientation import Judgment, Side, judge_orientation
from analyzer.detect import Finding
from analyzer.pipeline import analyze, read_sessions

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"


def _pair_dirs() -> list[Path]:
    found = [
        d
        for d in sorted(CAPTURES.iterdir())
        if (d / "client-side.pcap").exists() and (d / "server-side.pcap").exists()
    ]
    lab = CAPTURES / "lab"
    for d in sorted(lab.iterdir()) if lab.is_dir() else []:
        if list(d.glob("client-side.pcap*")) and list(d.glob("server-side.pcap*")):
            found.append(d)
    return found


DIRS = _pair_dirs()
IDS = [str(d.relative_to(CAPTURES)) for d in DIRS]


def _sides(d: Path) -> tuple[Path, Path]:
    return next(iter(sorted(d.glob("client-side.pcap*")))), next(
        iter(sorted(d.glob("server-side.pcap*")))
    )


def _shape(f: Finding) -> tuple[Any, ...]:
    return (
        f.id,
        str(f.kind),
        str(f.severity),
        str(f.confidence),
        f.sessions,
        f.summary,
        f.cause,
        f.evidence,
        repr(sorted(f.details.items())),
    )


@pytest.mark.parametrize("d", DIRS, ids=IDS)
def test_given_the_right_way_round_nothing_is_swapped(d: Path) -> None:
    client, server = _sides(d)
    analysis = analyze(client_side=client, server_side=server)
    assert analysis.orientation is not None
    assert analysis.orientation.judgment is Judgment.GIVEN
    assert not analysis.sides_swapped
    assert analysis.captures[0].paths == (str(client),)


@pytest.mark.parametrize("d", DIRS, ids=IDS)
def test_given_the_wrong_way_round_the_sides_are_swapped_back(d: Path) -> None:
    client, server = _sides(d)
    right = analyze(client_side=client, server_side=server)
    wrong = analyze(client_side=server, server_side=client)
    assert wrong.orientation is not None
    assert wrong.orientation.judgment is Judgment.SWAPPED
    assert wrong.sides_swapped
    assert wrong.captures[0].paths == (str(client),)
    assert wrong.captures[1].paths == (str(server),)
    assert [_shape(f) for f in wrong.findings] == [_shape(f) for f in right.findings]
    assert [(p.client_side.id, p.server_side.id) for p in wrong.pairs] == [
        (p.client_side.id, p.server_side.id) for p in right.pairs
    ]


def test_keep_orientation_analyses_as_given_but_records_the_judgment() -> None:
    d = CAPTURES / "pix-starttls-masked"
    kept = analyze(
        client_side=d / "server-side.pcap",
        server_side=d / "client-side.pcap",
        keep_orientation=True,
    )
    assert not kept.sides_swapped and kept.keep_orientation
    assert kept.orientation is not None and kept.orientation.swapped
    assert kept.captures[0].paths == (str(d / "server-side.pcap"),)


def _pairs(name: str) -> list[SessionPair]:
    d = CAPTURES / name
    client = read_sessions(d / "client-side.pcap", "client")
    server = read_sessions(d / "server-side.pcap", "server")
    return list(pair_sessions(client, server, estimate_offset(client, server)).pairs)


def _flip(pair: SessionPair) -> SessionPair:
    return replace(pair, client_side=pair.server_side, server_side=pair.client_side)


def _says(pairs: list[SessionPair]) -> dict[str, Side]:
    return {c.signal: c.says for c in judge_orientation(pairs).clues}


@pytest.mark.parametrize(
    ("name", "signals"),
    [
        ("pix-starttls-masked", {"damage_direction", "ttl_distance", "mss_clamp"}),
        ("banner-masked", {"damage_direction"}),
        ("esa-starttls-xxxxxxxx", {"damage_direction"}),
        ("interactive-telnet", {"damage_direction"}),
        ("proxy-token-removed", {"damage_direction"}),
        ("clean-starttls", {"ttl_distance", "mss_clamp", "reply_latency"}),
    ],
)
def test_each_signal_points_the_right_way_both_ways(name: str, signals: set[str]) -> None:
    pairs = _pairs(name)
    right, flipped = _says(pairs), _says([_flip(p) for p in pairs])
    for signal in signals:
        assert right[signal] is Side.GIVEN, signal
        assert flipped[signal] is Side.SWAPPED, signal


def test_undamaged_sessions_say_nothing_about_the_damage_direction() -> None:
    """The look-alike: a clean pair has no damage, so no damage direction."""
    assert "damage_direction" not in _says(_pairs("clean-starttls"))


def test_private_addresses_seen_on_their_own_side_only() -> None:
    pairs = _pairs("clean-starttls")
    assert "nat_address" not in _says(pairs)  # documentation addresses say nothing
    natted = [
        replace(
            p,
            server_side=replace(
                p.server_side,
                flow=replace(
                    p.server_side.flow,
                    server=replace(p.server_side.flow.server, ip="10.1.2.25"),
                ),
            ),
            client_side=replace(
                p.client_side,
                flow=replace(
                    p.client_side.flow,
                    server=replace(p.client_side.flow.server, ip="203.0.114.10"),
                ),
            ),
        )
        for p in pairs
    ]
    assert _says(natted)["nat_address"] is Side.GIVEN
    assert _says([_flip(p) for p in natted])["nat_address"] is Side.SWAPPED


def test_contradicting_signals_leave_the_sides_as_given() -> None:
    """One signal for the swap against the others: conflicting, analysed as given. (An MSS
    that grows on its way through the box: the box would have raised it, which clamping
    never does.)"""
    pairs = _pairs("clean-starttls")
    odd = [
        replace(
            p,
            client_side=replace(p.client_side, flow=replace(p.client_side.flow, mss=(1380, 1460))),
            server_side=replace(p.server_side, flow=replace(p.server_side.flow, mss=(1460, 1380))),
        )
        for p in pairs
    ]
    verdict = judge_orientation(odd)
    assert _says(odd)["mss_clamp"] is Side.SWAPPED
    assert verdict.judgment is Judgment.CONFLICTING and not verdict.swapped


def test_no_pairs_no_judgment() -> None:
    verdict = judge_orientation([])
    assert verdict.judgment is Judgment.UNDECIDED and not verdict.swapped
