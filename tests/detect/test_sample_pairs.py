"""What smtpfw finds in each bundled capture pair, stated as the firewall behaviour it proves.

Two captures give `confirmed` findings naming the exact bytes; each capture alone gives the
same kinds from symptoms with a lower confidence, or nothing where one side cannot tell.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from analyzer.detect import Finding
from analyzer.pipeline import analyze
from analyzer.result import Analysis

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def pair(name: str) -> Analysis:
    return analyze(
        client_side=CAPTURES / name / "client-side.pcap",
        server_side=CAPTURES / name / "server-side.pcap",
    )


def one_side(name: str, side: str) -> Analysis:
    return analyze(CAPTURES / name / f"{side}.pcap")


def by_kind(analysis: Analysis) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = defaultdict(list)
    for f in analysis.findings:
        found[str(f.kind)].append(f)
    return found


def sessions_of(findings: list[Finding]) -> set[str]:
    return {f.sessions[0] for f in findings}


# pair → finding kind → client-side sessions it concerns (sessions are tcp.stream numbers).
TWO_SIDED: dict[str, dict[str, set[str]]] = {
    "clean-starttls": {},
    "pix-starttls-masked": {
        "ehlo_keyword_masked": {"client#0", "client#2", "client#3"},
        "tls_downgrade": {"client#0", "client#2", "client#3"},
    },
    "esa-starttls-xxxxxxxx": {
        "ehlo_keyword_masked": {"client#0", "client#2"},
        "command_masked": {"client#0", "client#2"},
        "starttls_rejected": {"client#0", "client#2"},
        "tls_downgrade": {"client#0", "client#2"},
    },
    "banner-masked": {"banner_masked": {"client#0", "client#1"}},
    "pix-dkim-reset": {
        "reset_after_dkim_header": {"client#1", "client#2"},
        "reset_injected": {"client#1", "client#2"},
    },
    "long-header-drop": {
        "header_line_too_long_drop": {"client#1", "client#2"},
        "reset_injected": {"client#1", "client#2"},
    },
    "interactive-telnet": {"interactive_test_artefact": {"client#0"}},
    "proxy-token-removed": {
        "ehlo_keyword_removed": {"client#0", "client#2"},
        "tls_downgrade": {"client#0", "client#2"},
    },
    "old-pix-noop": {
        "banner_masked": {"client#0", "client#1"},
        "command_replaced": {"client#0"},
    },
}


@pytest.mark.parametrize("name", sorted(TWO_SIDED))
def test_two_captures_confirm_exactly_what_the_firewall_did(name: str) -> None:
    analysis = pair(name)
    found = by_kind(analysis)
    assert {k: sessions_of(v) for k, v in found.items()} == TWO_SIDED[name]
    assert all(str(f.confidence) == "confirmed" for f in analysis.findings)
    assert not analysis.findings or all(
        {e.capture for e in f.evidence} >= {"client", "server"}
        for f in analysis.findings
        if str(f.kind) not in ("reset_injected",)
    ), "a two-sided finding shows the bytes from both captures"


def test_every_session_pairs_with_its_counterpart_through_nat() -> None:
    for name in TWO_SIDED:
        analysis = pair(name)
        assert analysis.clock is not None and abs(analysis.clock.offset_s - 37.4) < 0.1
        assert [(p.client_side.id, p.server_side.id) for p in analysis.pairs] == [
            (f"client#{i}", f"server#{i}") for i in range(len(analysis.pairs))
        ]
        assert 2 * len(analysis.pairs) == len(analysis.sessions), name


def test_masked_keywords_are_named_with_their_originals() -> None:
    masked = by_kind(pair("pix-starttls-masked"))["ehlo_keyword_masked"][0].details["masked"]
    assert masked == [
        {"original": "STARTTLS", "mask": "XXXXXXXA"},
        {"original": "SMTPUTF8", "mask": "XXXXXXXB"},
        {"original": "CHUNKING", "mask": "XXXXXXXC"},
    ]


def test_the_esa_500_is_attributed_to_the_server_answering_xxxxxxxx() -> None:
    rejected = by_kind(pair("esa-starttls-xxxxxxxx"))["starttls_rejected"][0].details
    assert rejected["replied_by"] == "server"
    assert rejected["command_arrived_as"] == "XXXXXXXX"
    assert rejected["reply_code"] == 500


def test_resets_are_pinned_on_the_firewall_and_the_last_header_named() -> None:
    found = by_kind(pair("pix-dkim-reset"))
    headers = sorted(f.details["header"] for f in found["reset_after_dkim_header"])
    assert headers == ["DKIM-Signature", "DomainKey-Signature"]
    for finding in found["reset_injected"]:
        resets = finding.details["resets"]
        assert {r["claims_sender"] for r in resets} == {"client", "server"}
        assert all(r["ttl"] == 255 and r["origin_differs"] for r in resets)


def test_the_long_header_rule_is_ruled_in_before_the_dkim_bug() -> None:
    found = by_kind(pair("long-header-drop"))
    assert "reset_after_dkim_header" not in found
    lengths = sorted(f.details["line_length"] for f in found["header_line_too_long_drop"])
    assert lengths == [1162, 1200]


def test_the_tls_downgrade_counts_the_mail_that_crossed_in_cleartext() -> None:
    downgrades = by_kind(pair("esa-starttls-xxxxxxxx"))["tls_downgrade"]
    by_session = {f.sessions[0]: f for f in downgrades}
    assert by_session["client#0"].details["messages_in_cleartext"] == 1
    assert str(by_session["client#0"].severity) == "critical"
    assert by_session["client#2"].details["messages_in_cleartext"] == 0  # it QUIT instead


# (pair, side) → finding kinds and confidences one capture alone gives.
ONE_SIDED: dict[tuple[str, str], set[tuple[str, str]]] = {
    ("clean-starttls", "client-side"): set(),
    ("clean-starttls", "server-side"): set(),
    ("pix-starttls-masked", "client-side"): {
        ("ehlo_keyword_masked", "likely"),
        ("tls_downgrade", "likely"),
    },
    ("pix-starttls-masked", "server-side"): set(),  # the server sees nothing wrong
    ("esa-starttls-xxxxxxxx", "client-side"): {
        ("ehlo_keyword_masked", "likely"),
        ("starttls_rejected", "likely"),
        ("tls_downgrade", "likely"),
    },
    ("esa-starttls-xxxxxxxx", "server-side"): {("command_masked", "likely")},
    ("banner-masked", "client-side"): {("banner_masked", "likely")},
    ("pix-dkim-reset", "client-side"): {
        ("reset_after_dkim_header", "likely"),
        ("reset_injected", "likely"),
    },
    ("pix-dkim-reset", "server-side"): {
        ("reset_after_dkim_header", "likely"),
        ("reset_injected", "likely"),
    },
    ("long-header-drop", "client-side"): {
        ("header_line_too_long_drop", "likely"),
        ("reset_injected", "likely"),
    },
    ("interactive-telnet", "server-side"): {("interactive_test_artefact", "likely")},
    ("interactive-telnet", "client-side"): {("interactive_test_artefact", "likely")},
}


@pytest.mark.parametrize(("name", "side"), sorted(ONE_SIDED))
def test_one_capture_alone_names_the_symptoms_with_honest_confidence(name: str, side: str) -> None:
    analysis = one_side(name, side)
    found = {(str(f.kind), str(f.confidence)) for f in analysis.findings}
    assert found == ONE_SIDED[(name, side)]
