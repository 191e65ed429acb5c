"""The reading of a report both renderers share: verdict, alignment of the two transcripts,
checks in Wireshark, timeline."""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest

from analyzer.report import digest
from analyzer.report.digest import C2S, S2C, Index, align, checks, verdict
from analyzer.report.model import Report

from .conftest import load


def test_the_starttls_masking_verdict_counts_connections_messages_and_cleartext() -> None:
    report = load("pix-starttls-masked")
    v = verdict(report)
    assert not v.clean and v.two_sided
    assert (v.connections, v.total_connections, v.messages) == (3, 3, 2)
    assert v.first_ts == 1709630042.25 and v.last_ts == 1709630225.5
    assert "198.51.100.7" in v.hosts and "203.0.113.25:25" in v.hosts and "10.20.0.25:25" in v.hosts
    assert v.impact[0].startswith("2 messages crossed the network in cleartext")
    assert v.severity == "critical" and v.confidence == "confirmed"
    # the downgrade's cause and fix are those of the keyword masking that made it
    assert v.fix_from is not None and v.fix_from["kind"] == "ehlo_keyword_masked"
    assert "allow-tls" in v.remediation
    assert "masks EHLO keywords" in v.cause


def test_a_downgrade_by_a_proxy_gets_the_proxy_fix() -> None:
    report = cast(dict[str, Any], copy.deepcopy(load("pix-starttls-masked")))
    for finding in report["findings"]:
        if finding["kind"] == "ehlo_keyword_masked":
            finding.update(
                kind="ehlo_keyword_removed",
                cause="A proxy removed it.",
                remediation="Configure the proxy to pass STARTTLS.",
            )
        if finding["kind"] == "tls_downgrade":
            finding["details"]["because_of"] = ["ehlo_keyword_removed"]
    v = verdict(cast(Report, report))
    assert v.severity == "critical"
    assert v.cause == "A proxy removed it."
    assert v.remediation == "Configure the proxy to pass STARTTLS."


def test_the_dkim_verdict_says_mail_is_stuck_and_retried() -> None:
    v = verdict(load("pix-dkim-reset"))
    assert v.headline.startswith("Connections were reset in DATA right after the DKIM-Signature")
    assert (v.connections, v.total_connections) == (2, 3)
    assert v.impact[0].startswith("2 messages were cut off in DATA and not delivered")
    assert "attempted 2 times" in v.impact[0]
    assert "7.2(3)" in v.remediation


def test_two_identical_sides_give_a_clean_verdict() -> None:
    v = verdict(load("clean"))
    assert v.clean and v.headline == "No difference between the two sides"
    assert v.happened.startswith(
        "All 2 paired sessions (2024-03-05 09:14:02.250 → "
        "2024-03-05 09:14:32.250 UTC) are byte-identical"
    )


def test_one_capture_gives_symptoms_with_their_confidence() -> None:
    report = load("pix-starttls-masked-client-only")
    v = verdict(report)
    assert not v.two_sided and v.fix_from is not None
    assert v.fix_from["confidence"] == "likely"
    empty = cast(Report, {**report, "findings": []})
    assert verdict(empty).headline == "No symptoms found"


def test_issues_group_findings_by_kind_most_severe_first() -> None:
    groups = digest.issues(load("pix-starttls-masked"))
    assert [(g.kind, g.severity, g.ids) for g in groups] == [
        ("tls_downgrade", "critical", ["F1", "F2", "F6"]),
        ("ehlo_keyword_masked", "high", ["F3", "F4", "F5"]),
        ("banner_masked", "low", ["F7", "F8", "F9"]),
    ]


def test_aligned_transcripts_match_every_line_and_flag_the_masked_ones() -> None:
    report = load("pix-starttls-masked")
    steps = align(report, "client#0", "server#0")
    lines = [s for s in steps if s.kind == "line"]
    assert all(s.client_side is not None and s.server_side is not None for s in lines)
    differing = [s for s in steps if s.differs]
    assert len(differing) == 2  # the banner and the EHLO reply
    ehlo = differing[1]
    assert ehlo.direction == S2C
    assert "XXXXXXXA" in ehlo.client_side["text"]  # type: ignore[index]
    assert "STARTTLS" in ehlo.server_side["text"]  # type: ignore[index]
    assert [s.time for s in steps] == sorted(s.time for s in steps)


def test_a_masked_command_differs_client_to_server() -> None:
    steps = align(load("asa-starttls-command-masked"), "client#0", "server#0")
    (masked,) = [s for s in steps if s.differs]
    assert masked.direction == C2S
    assert (masked.sent or {}).get("text") == "STARTTLS"
    assert (masked.received or {}).get("text") == "XXXXXXXX"


def test_forged_resets_start_at_the_firewall_and_lost_bytes_stop_there() -> None:
    steps = align(load("pix-dkim-reset"), "client#0", "server#0")
    forged = [s for s in steps if s.forged]
    assert {(s.direction, s.client_side is not None) for s in forged} == {(S2C, True), (C2S, False)}
    assert all("never sent it" in s.note and "TTL 255" in s.note for s in forged)
    (lost,) = [s for s in steps if s.kind == "lost"]
    assert lost.direction == C2S and "4705 bytes" in (lost.client_side or {})["text"]
    message = next(s for s in steps if s.kind == "message")
    assert message.differs  # the server never got the whole message


def _removal_report() -> Report:
    """A proxy deleted the STARTTLS line of the EHLO reply: later offsets shift by its length."""

    def line(direction: str, offset: int, text: str, ts: float, frame: int) -> dict[str, Any]:
        return {"direction": direction, "offset": offset, "text": text, "ts": ts, "frame": frame}

    sent_ehlo = "250-mx\n250-STARTTLS\n250 SIZE"
    got_ehlo = "250-mx\n250 SIZE"
    server = [
        line(S2C, 0, "220 mx", 10.0, 1),
        line(C2S, 0, "EHLO c", 10.1, 2),
        line(S2C, 8, sent_ehlo, 10.2, 3),
        line(C2S, 8, "QUIT", 10.3, 4),
        line(S2C, 8 + 32, "221 bye", 10.4, 5),
    ]
    client = [
        line(S2C, 0, "220 mx", 10.0, 1),
        line(C2S, 0, "EHLO c", 10.1, 2),
        line(S2C, 8, got_ehlo, 10.2, 3),
        line(C2S, 8, "QUIT", 10.3, 4),
        line(S2C, 8 + 18, "221 bye", 10.4, 5),
    ]
    return cast(
        Report,
        {
            "schema": "smtpfw.report/1",
            "generator": {},
            "clock_offset_s": 0.0,
            "clock": None,
            "captures": [
                {"id": "client", "role": "client-side", "files": []},
                {"id": "server", "role": "server-side", "files": []},
            ],
            "sessions": [
                {"id": "client#0", "capture": "client"},
                {"id": "server#0", "capture": "server"},
            ],
            "pairs": [
                {
                    "client_side": "client#0",
                    "server_side": "server#0",
                    "end_mismatches": [],
                    "divergences": [
                        {
                            "direction": S2C,
                            "kind": "removal",
                            "sent_offset": 15,
                            "received_offset": 15,
                            "sent_length": 14,
                            "received_length": 0,
                        }
                    ],
                }
            ],
            "findings": [],
            "transcripts": {"client#0": client, "server#0": server},
            "summary": {},
        },
    )


def test_lines_after_a_removal_are_still_matched_by_shifted_offset() -> None:
    steps = align(_removal_report(), "client#0", "server#0")
    assert [s.kind for s in steps].count("lost") == 1
    bye = next(
        s for s in steps if s.kind == "line" and "221" in str((s.client_side or {}).get("text"))
    )
    assert bye.server_side is not None and not bye.differs
    ehlo = next(s for s in steps if "250-mx" in str((s.client_side or {}).get("text")))
    assert ehlo.server_side is not None and ehlo.differs


def test_checks_name_the_file_the_stream_and_the_frames() -> None:
    report = load("pix-dkim-reset")
    finding = next(f for f in report["findings"] if f["id"] == "F1")
    client, server = checks(finding, Index(report))
    assert client.role == "client-side" and client.file.endswith("pix-dkim-reset/client-side.pcap")
    assert client.stream_filter == "tcp.stream eq 0"
    assert client.frame_filter == "frame.number == 13 || frame.number == 18"
    assert server.role == "server-side" and server.frames == (13,)


def test_remediation_text_splits_into_prose_and_configuration() -> None:
    blocks = digest.blocks("Do this:\n    policy-map x\n     class y\nThen `show run`.")
    assert [(b.code, b.text) for b in blocks] == [
        (False, "Do this:"),
        (True, "policy-map x\n class y"),
        (False, "Then `show run`."),
    ]
    assert digest.inline_code("a `b` c `d") == [("a ", False), ("b", True), (" c `d", False)]


def test_the_timeline_is_in_time_order_and_names_who_forged_the_resets() -> None:
    events, left = digest.timeline(load("pix-dkim-reset"))
    assert left == 0
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    texts = [e.text for e in events]
    assert sum("forged: the server never sent it" in t for t in texts) == 2
    assert sum(t.startswith("F1: ") or t.startswith("F2: ") for t in texts) == 2


@pytest.mark.parametrize("key", ["transcripts", "pairs", "clock", "summary", "clock_offset_s"])
def test_a_report_missing_optional_parts_still_reads(key: str) -> None:
    report = cast(dict[str, Any], copy.deepcopy(load("pix-dkim-reset")))
    del report[key]
    for finding in report["findings"]:
        for ev in finding["evidence"]:
            ev["frame"] = ev["ts"] = ev["file"] = None
    v = verdict(cast(Report, report))
    assert not v.clean
    digest.timeline(cast(Report, report))
    for near, far in digest.affected_connections(cast(Report, report), Index(cast(Report, report))):
        align(cast(Report, report), near, far)


def test_findings_the_one_change_does_not_cure_are_named() -> None:
    report = load("captured-lab-dkim-long-line-drop")
    others = digest.other_fixes(report, verdict(report))
    assert [(n, issue.kind) for n, issue in others] == [(3, "header_line_too_long_drop")]
    # harmless (low) findings and the resets of a drop are not listed
    for name in ("pix-starttls-masked", "pix-dkim-reset"):
        assert digest.other_fixes(load(name), verdict(load(name))) == []
