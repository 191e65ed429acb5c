"""Real-stack traffic: who wrote each reply and reset, and what each capture alone can tell.

The two-sided analysis must say that the server itself answered the masked `XXXXXXXX` (Postfix
and aiosmtpd word it differently) and that the resets came from the box. Each capture alone must
name the symptoms with `likely`/`possible` confidence, never `confirmed`, and clean runs nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from analyzer import analyze
from analyzer.result import Analysis

from .runner import ScenarioRun
from .scenarios import SCENARIOS

pytestmark = pytest.mark.lab

Runs = Callable[[str], ScenarioRun]


def _kinds(analysis: Analysis) -> set[str]:
    return {str(f.kind) for f in analysis.findings}


@pytest.mark.parametrize("name", ["starttls-command-masked", "starttls-command-masked-aiosmtpd"])
def test_the_reply_to_the_masked_starttls_is_the_servers_own(lab_run: Runs, name: str) -> None:
    run = lab_run(name)
    analysis = analyze(client_side=[run.client_side], server_side=[run.server_side])
    rejected = [f for f in analysis.findings if str(f.kind) == "starttls_rejected"]
    assert rejected
    for finding in rejected:
        assert finding.details["replied_by"] == "server"
        assert finding.details["command_arrived_as"] == "XXXXXXXX"
        assert 500 <= finding.details["reply_code"] < 600


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS if s.resets_by == "middlebox"])
def test_each_forged_reset_claims_an_endpoint_that_never_sent_it(lab_run: Runs, name: str) -> None:
    run = lab_run(name)
    analysis = analyze(client_side=[run.client_side], server_side=[run.server_side])
    for finding in (f for f in analysis.findings if str(f.kind) == "reset_injected"):
        resets = finding.details["resets"]
        assert {r["claims_sender"] for r in resets} == {"client", "server"}
        assert all(r["origin_differs"] for r in resets)


# scenario → side → kinds that capture alone must show (it may show more, never `confirmed`).
ONE_SIDED: dict[str, dict[str, set[str]]] = {
    "clean-postfix": {"client-side": set(), "server-side": set()},
    "clean-aiosmtpd": {"client-side": set(), "server-side": set()},
    "ehlo-masked": {"client-side": {"ehlo_keyword_masked", "tls_downgrade"}},
    "starttls-command-masked": {
        "client-side": {"starttls_rejected", "tls_downgrade"},
        "server-side": {"command_masked"},
    },
    "starttls-command-masked-aiosmtpd": {
        "client-side": {"starttls_rejected", "tls_downgrade"},
        "server-side": {"command_masked"},
    },
    "pix-combination": {"client-side": {"banner_masked", "ehlo_keyword_masked"}},
    "dkim-reset": {
        "client-side": {"reset_after_dkim_header"},
        "server-side": {"reset_after_dkim_header"},
    },
    "long-header-drop": {
        "client-side": {"header_line_too_long_drop"},
        "server-side": {"header_line_too_long_drop"},
    },
    "telnet-artefact": {
        "client-side": {"interactive_test_artefact"},
        "server-side": {"interactive_test_artefact"},
    },
}


@pytest.mark.parametrize(
    ("name", "side"), [(n, s) for n, sides in ONE_SIDED.items() for s in sides]
)
def test_one_capture_alone_names_the_symptoms(lab_run: Runs, name: str, side: str) -> None:
    run = lab_run(name)
    path = run.client_side if side == "client-side" else run.server_side
    analysis = analyze(path)
    expected = ONE_SIDED[name][side]
    if not expected:
        assert analysis.findings == []
        return
    assert expected <= _kinds(analysis)
    assert all(str(f.confidence) in ("likely", "possible") for f in analysis.findings)
    if name == "long-header-drop":
        assert "reset_after_dkim_header" not in _kinds(analysis)
