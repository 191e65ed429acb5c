"""smtpfw's analysis of the lab's capture pairs reports what the box really did, and only that.

Each scenario declares the finding kinds that must appear, those that may, those that would be
a misdiagnosis, and which clients were tampered with; these tests hold `analyzer.analyze` to it.
They skip while `analyzer.analyze` cannot be imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from . import addresses as A
from .observed import Observed
from .pcapread import Connection
from .runner import ScenarioRun
from .scenarios import SCENARIOS, Kind

pytestmark = pytest.mark.lab

Runs = Callable[[str], ScenarioRun]
Obs = Callable[[str], Observed]

ALL = [s.name for s in SCENARIOS]
TAMPERED = [s.name for s in SCENARIOS if s.tampered_clients]
RESETS = [s.name for s in SCENARIOS if s.resets_by == "middlebox"]
CONFIRMED = "confirmed"


def _analyze() -> Callable[..., Any]:
    try:
        analyze = getattr(importlib.import_module("analyzer"), "analyze", None)
    except ImportError:
        analyze = None
    if not callable(analyze):
        pytest.skip("analyzer.analyze is not available yet")
    return cast(Callable[..., Any], analyze)


_results: dict[str, Any] = {}


def _result(lab_run: Runs, name: str) -> Any:
    analyze = _analyze()
    if name not in _results:
        run = lab_run(name)
        _results[name] = analyze(client_side=[run.client_side], server_side=[run.server_side])
    return _results[name]


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def _kinds(result: Any) -> set[str]:
    return {_value(f.kind) for f in result.findings}


def _sessions_of(result: Any, finding: Any) -> Iterator[Any]:
    by_id = {_value(getattr(s, "id", s)): s for s in result.sessions}
    for ref in finding.sessions:
        yield by_id.get(_value(getattr(ref, "id", ref)), ref)


def _client_address(session: Any) -> str | None:
    client = getattr(session, "client", None)
    if client is None:
        return None
    if isinstance(client, tuple):
        return str(client[0])
    text = str(client)
    return text.rsplit(":", 1)[0] if ":" in text else text


@pytest.mark.parametrize("name", ALL)
def test_analysis_reports_what_the_box_did_and_nothing_else(lab_run: Runs, name: str) -> None:
    result = _result(lab_run, name)
    sc = lab_run(name).scenario
    kinds = _kinds(result)
    if sc.expect_clean:
        assert list(result.findings) == []
        return
    assert {str(k) for k in sc.expected_kinds} <= kinds
    assert kinds <= {str(k) for k in sc.expected_kinds | sc.tolerated_kinds}
    assert not kinds & {str(k) for k in sc.forbidden_kinds}


@pytest.mark.parametrize("name", ALL)
def test_every_session_is_paired_across_the_two_captures(lab_run: Runs, name: str) -> None:
    result = _result(lab_run, name)
    assert len(list(result.pairs)) == len(lab_run(name).scenario.clients)


def _endpoint(c: Connection) -> str:
    return f"{c.client}:{c.client_port}"


@pytest.mark.parametrize("name", ALL)
def test_every_session_is_paired_with_its_real_partner(
    lab_run: Runs, observed: Obs, name: str
) -> None:
    """The partner recorded by the boxes themselves: conntrack's NAT table, the proxy's log."""
    result = _result(lab_run, name)
    truth = {_endpoint(p.client_side): _endpoint(p.server_side) for p in observed(name).pairs}
    assert len(truth) == len(lab_run(name).scenario.clients)
    found = {str(p.client_side.client): str(p.server_side.client) for p in result.pairs}
    wrong = {c: (s, truth.get(c)) for c, s in found.items() if truth.get(c) != s}
    assert wrong == {}, f"{len(wrong)} of {len(found)} pairs wrong"
    assert found.keys() == truth.keys()


@pytest.mark.parametrize("name", TAMPERED)
def test_two_sided_findings_are_confirmed(lab_run: Runs, name: str) -> None:
    result = _result(lab_run, name)
    expected = {str(k) for k in lab_run(name).scenario.expected_kinds}
    for finding in result.findings:
        if _value(finding.kind) in expected:
            assert _value(finding.confidence) == CONFIRMED, _value(finding.kind)
            assert list(finding.evidence), _value(finding.kind)


@pytest.mark.parametrize("name", TAMPERED)
def test_findings_name_the_sessions_of_tampered_clients_only(lab_run: Runs, name: str) -> None:
    result = _result(lab_run, name)
    sc = lab_run(name).scenario
    named = {
        address
        for finding in result.findings
        for session in _sessions_of(result, finding)
        if (address := _client_address(session)) in A.CLIENT_ADDRESSES
    }
    assert named == set(sc.tampered_clients)


@pytest.mark.parametrize("name", RESETS)
def test_resets_are_attributed_to_the_middlebox(lab_run: Runs, name: str) -> None:
    result = _result(lab_run, name)
    injected = [f for f in result.findings if _value(f.kind) == Kind.RESET_INJECTED]
    assert injected
    assert all(_value(f.confidence) == CONFIRMED for f in injected)
