"""A list run pairs right and reports nothing: identical messages, random NAT ports, no TCP
timestamps, an unknown clock offset and start jitter. Also the assignment is global."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.correlate.assign import assign
from analyzer.pipeline import analyze

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _pairs() -> ModuleType:
    name = "smtpfw_bench_pairs"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / "pairs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(min_value=0, max_value=2**16),
    offset=st.floats(min_value=-300, max_value=300, allow_nan=False),
    spread=st.floats(min_value=0.5, max_value=5.0),
    sessions=st.integers(min_value=5, max_value=40),
)
def test_clean_list_run_pairs_every_session_and_reports_nothing(
    seed: int, offset: float, spread: float, sessions: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pairs = _pairs()
    folder = tmp_path_factory.mktemp("bulk")
    opts = pairs.Options(
        sessions=sessions,
        tampered=0.0,
        seed=seed,
        timestamps=False,
        clock_offset_s=offset,
        spread_s=spread,
        bulk=True,
        same_message=True,
    )
    truth = pairs.generate(folder, opts)
    analysis = analyze(
        client_side=folder / truth["files"]["client_side"],
        server_side=folder / truth["files"]["server_side"],
    )
    expected = {
        (f"client#{s['client_stream']}", f"server#{s['server_stream']}") for s in truth["sessions"]
    }
    assert {(p.client_side.id, p.server_side.id) for p in analysis.pairs} == expected
    assert analysis.findings == []
    assert all(p.corroborated and not p.ambiguous for p in analysis.pairs)


def test_global_assignment_beats_greedy() -> None:
    # Greedy takes (0, 0) at 10 first and leaves row 1 with nothing; the optimum is 9 + 9.
    edges = [(0, 0, 10.0), (0, 1, 9.0), (1, 0, 9.0)]
    assert assign(edges) == [(0, 1), (1, 0)]


def test_assignment_leaves_sessions_unpaired_rather_than_forcing_them() -> None:
    assert assign([(0, 0, 5.0), (1, 0, 4.0), (2, 2, 1.0)]) == [(0, 0), (2, 2)]
