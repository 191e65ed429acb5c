"""Pairing and findings do not depend on what the firewall and capture hosts cannot agree on.

Whatever the clock offset between the capture hosts (±10 minutes), the NAT mapping, the
sequence-number randomisation and the segmentation of the server-side capture, every session
pairs with its counterpart and the findings are the same.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.pipeline import analyze
from analyzer.result import Analysis

from .mutate import Mutation, mutate

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
PAIRS = ["pix-starttls-masked", "esa-starttls-xxxxxxxx", "pix-dkim-reset", "proxy-token-removed"]


def _signature(analysis: Analysis) -> tuple[object, ...]:
    pairs = sorted((p.client_side.id, p.server_side.id) for p in analysis.pairs)
    findings = sorted((str(f.kind), str(f.confidence), f.sessions) for f in analysis.findings)
    return tuple(pairs), tuple(findings)


@pytest.fixture(scope="module")
def baselines() -> dict[str, tuple[object, ...]]:
    return {
        pair: _signature(
            analyze(
                client_side=CAPTURES / pair / "client-side.pcap",
                server_side=CAPTURES / pair / "server-side.pcap",
            )
        )
        for pair in PAIRS
    }


@settings(
    max_examples=16,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    pair=st.sampled_from(PAIRS),
    offset=st.floats(min_value=-600, max_value=600, allow_nan=False),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    split=st.booleans(),
    strip=st.booleans(),
)
def test_pairs_and_findings_survive_clock_nat_isn_and_segmentation(
    pair: str,
    offset: float,
    seed: int,
    split: bool,
    strip: bool,
    baselines: dict[str, tuple[object, ...]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    work = tmp_path_factory.mktemp("mutated")
    server_side = work / "server-side.pcap"
    mutate(CAPTURES / pair / "server-side.pcap", server_side, Mutation(offset, seed, split, strip))
    client_side = work / "client-side.pcap"
    if strip:
        mutate(
            CAPTURES / pair / "client-side.pcap", client_side, Mutation(0.0, seed + 1, False, True)
        )
    else:
        shutil.copy(CAPTURES / pair / "client-side.pcap", client_side)
    analysis = analyze(client_side=client_side, server_side=server_side)
    assert analysis.clock is not None
    assert abs(analysis.clock.offset_s - (37.4 + offset)) < 1.0
    assert (analysis.clock.method == "tcp_timestamps") is not strip
    assert _signature(analysis) == baselines[pair]
