"""A finding is only as sure as the pairing it rests on: ambiguous or uncorroborated pairs give
`likely`, never `confirmed`; a real pair through a 37 s clock skew stays `confirmed`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from analyzer.correlate import estimate_offset, pair_sessions
from analyzer.detect import Confidence
from analyzer.detect.registry import detect_pair
from analyzer.pipeline import analyze
from analyzer.session.model import SmtpSession

from .mutate import Mutation, mutate

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
PAIR = CAPTURES / "pix-starttls-masked"


def test_real_pair_through_clock_skew_is_confirmed() -> None:
    analysis = analyze(client_side=PAIR / "client-side.pcap", server_side=PAIR / "server-side.pcap")
    assert analysis.clock is not None and abs(analysis.clock.offset_s - 37.4) < 1
    assert all(p.corroborated and not p.ambiguous for p in analysis.pairs)
    assert analysis.findings and all(
        f.confidence is Confidence.CONFIRMED for f in analysis.findings
    )


@pytest.mark.parametrize("doubt", [{"ambiguous": True}, {"corroborated": False}])
def test_doubtful_pair_caps_findings_at_likely_and_says_why(doubt: dict[str, bool]) -> None:
    analysis = analyze(client_side=PAIR / "client-side.pcap", server_side=PAIR / "server-side.pcap")
    alignment = next(a for a in analysis.alignments if not a.identical)
    doubtful = replace(alignment, pair=replace(alignment.pair, **doubt))
    findings = detect_pair(doubtful)
    assert findings and all(f.confidence is Confidence.LIKELY for f in findings)
    assert all(f.confidence_note and "pairing" in f.confidence_note for f in findings)
    assert all(f.confidence is Confidence.CONFIRMED for f in detect_pair(alignment))


def test_same_messages_a_day_later_on_other_connections_are_not_confirmed(
    tmp_path: Path,
) -> None:
    # The server side is another day's delivery of the same messages: new connections (their
    # own IP-IDs, no timestamps), so only content and an implausible offset tie them.
    server = tmp_path / "server-side.pcap"
    client = tmp_path / "client-side.pcap"
    mutate(PAIR / "server-side.pcap", server, Mutation(86400.0, 3, False, True, True))
    mutate(PAIR / "client-side.pcap", client, Mutation(0.0, 4, False, True, True))
    analysis = analyze(client_side=client, server_side=server)
    assert all(f.confidence is not Confidence.CONFIRMED for f in analysis.findings)
    sides = [[s for s in analysis.sessions if s.capture_id == c] for c in ("client", "server")]
    clock = estimate_offset(*sides)
    assert clock.method == "message_id" and clock.offset_s > 86000
    pairing = pair_sessions(*sides, clock)
    assert pairing.pairs and not any(p.corroborated for p in pairing.pairs)


def test_indistinguishable_sessions_pair_as_ambiguous() -> None:
    # Two copies of one connection on each side, same times within jitter, IP-IDs unknown.
    analysis = analyze(client_side=PAIR / "client-side.pcap", server_side=PAIR / "server-side.pcap")
    pair = next(p for p in analysis.pairs if p.client_side.transactions)

    def twins(session: SmtpSession, tag: str) -> list[SmtpSession]:
        stats = replace(
            session.stats,
            client_to_server=replace(session.stats.client_to_server, ip_ids=()),
            server_to_client=replace(session.stats.server_to_client, ip_ids=()),
        )
        flow = replace(session.flow, client_tsval=None)
        return [
            replace(
                session,
                id=f"{tag}#{i}",
                start_ts=session.start_ts + i * 1e-4,
                stats=stats,
                flow=flow,
            )
            for i in range(2)
        ]

    client, server = twins(pair.client_side, "client"), twins(pair.server_side, "server")
    pairing = pair_sessions(client, server, estimate_offset(client, server))
    assert len(pairing.pairs) == 2
    assert all(p.ambiguous and p.margin < 1.0 for p in pairing.pairs)


def test_a_lone_corroborated_pair_is_not_ambiguous_however_low_its_margin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every margin counts as small here: what is left to decide is who competes. A lone
    # candidate on each side (a full proxy's one connection) competes only with staying
    # unpaired, and its Message-ID, unique on both sides, says it is one connection.
    from analyzer.correlate import match

    monkeypatch.setattr(match, "AMBIGUOUS_MARGIN", 1e9)
    analysis = analyze(client_side=PAIR / "client-side.pcap", server_side=PAIR / "server-side.pcap")
    pair = next(p for p in analysis.pairs if p.client_side.transactions)
    client, server = [pair.client_side], [pair.server_side]
    (lone,) = pair_sessions(client, server, estimate_offset(client, server)).pairs
    assert lone.corroborated and not lone.ambiguous


def test_a_lone_uncorroborated_pair_stays_ambiguous_when_its_margin_is_low(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from analyzer.correlate import match

    monkeypatch.setattr(match, "AMBIGUOUS_MARGIN", 1e9)
    monkeypatch.setattr(match, "_corroborated", lambda *args: False)
    analysis = analyze(client_side=PAIR / "client-side.pcap", server_side=PAIR / "server-side.pcap")
    pair = next(p for p in analysis.pairs if p.client_side.transactions)
    client, server = [pair.client_side], [pair.server_side]
    (lone,) = pair_sessions(client, server, estimate_offset(client, server)).pairs
    assert lone.ambiguous and not lone.corroborated
