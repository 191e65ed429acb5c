"""AUTH credentials reach no output: reports, DataFrames, the Analysis (pickle, repr, the raw
streams kept for two-sided comparison), whatever the mechanism and whether or not a firewall
masked the AUTH verb."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.utils import wrpcap

from analyzer import analyze
from analyzer.cli import EXIT_FINDINGS, EXIT_OK, main
from analyzer.flows.record import StreamPair
from analyzer.session.model import SmtpSession
from tests.detect.transcripts import Item, packets

from .dialogues import (
    PLAIN_TOKEN,
    UNRECOGNIZED,
    analysis_leaks,
    cram_md5,
    dialogue,
    login,
    login_initial,
    plain_after_challenge,
    plain_initial,
    report_leaks,
)

EXCHANGES: dict[str, Callable[[bytes], list[Item]]] = {
    "plain_initial": plain_initial,
    "plain_after_challenge": plain_after_challenge,
    "login": login,
    "login_initial": login_initial,
    "cram_md5": cram_md5,
}
VERBS = (b"AUTH", b"XXXX", b"****")
WROTE_REPORT = (EXIT_OK, EXIT_FINDINGS)


def write(path: Path, items: list[Item], *, start: float = 1.7e9) -> Path:
    wrpcap(str(path), packets(items, start=start))
    return path


def _only(sessions: list[SmtpSession]) -> SmtpSession:
    (session,) = sessions
    return session


def _client_lines(session: SmtpSession) -> list[str]:
    return [line.text for line in session.lines if line.verb is not None]


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: v.decode())
@pytest.mark.parametrize("exchange", sorted(EXCHANGES))
def test_one_capture_holds_no_secret(tmp_path: Path, exchange: str, verb: bytes) -> None:
    capture = write(tmp_path / "one.pcap", dialogue(EXCHANGES[exchange](verb)))
    analysis = analyze(capture)
    session = _only(analysis.sessions)
    assert session.transactions, "the message after AUTH is still read"
    assert analysis_leaks(analysis) == []
    out = tmp_path / "report"
    code = main(["analyze", str(capture), "--out", str(out), "--format", "json,md,html"])
    assert code in WROTE_REPORT
    assert {p.suffix for p in out.iterdir()} >= {".json", ".md", ".html"}
    assert report_leaks(out) == []


@pytest.mark.parametrize("exchange", sorted(EXCHANGES))
def test_two_captures_hold_no_secret(tmp_path: Path, exchange: str) -> None:
    items = dialogue(EXCHANGES[exchange](b"AUTH"))
    client = write(tmp_path / "client.pcap", items)
    server = write(tmp_path / "server.pcap", items, start=1.7e9 + 0.002)
    analysis = analyze(client_side=client, server_side=server)
    assert analysis.alignments, "the two captures pair"
    assert analysis_leaks(analysis) == []
    out = tmp_path / "report"
    code = main(
        ["analyze", "--client-side", str(client), "--server-side", str(server), "--out", str(out)]
    )
    assert code in WROTE_REPORT
    assert report_leaks(out) == []


def test_masked_auth_between_two_captures(tmp_path: Path) -> None:
    """A PIX that does not allow AUTH writes X's over the verb: the masking is still found,
    the credential that crossed it appears nowhere, and the kept streams keep every offset."""
    client = write(tmp_path / "client.pcap", dialogue(plain_initial(b"AUTH", UNRECOGNIZED)))
    server = write(
        tmp_path / "server.pcap",
        dialogue(plain_initial(b"XXXX", UNRECOGNIZED)),
        start=1.7e9 + 0.002,
    )
    analysis = analyze(client_side=client, server_side=server)
    masked = [f for f in analysis.findings if str(f.kind) == "command_masked"]
    assert [(f.details["original"], f.details["mask"]) for f in masked] == [("AUTH", "XXXX")]
    assert analysis_leaks(analysis) == []
    out = tmp_path / "report"
    code = main(
        ["analyze", "--client-side", str(client), "--server-side", str(server), "--out", str(out)]
    )
    assert code in WROTE_REPORT
    assert report_leaks(out) == []
    for session in analysis.sessions:
        verb = _client_lines(session)[1].split(" ")[0]
        streams = session.streams
        assert isinstance(streams, StreamPair)
        sent = bytes(streams.client_to_server.data)
        line = f"{verb} PLAIN ".encode() + b"*" * len(PLAIN_TOKEN) + b"\r\n"
        assert line in sent, "the credential is blanked in place, byte for byte"
        assert len(sent) == streams.client_to_server.length


def test_what_follows_auth_is_kept(tmp_path: Path) -> None:
    """Only the credential goes: the mechanism, the commands and the message stay."""
    capture = write(tmp_path / "one.pcap", dialogue(login_initial(b"XXXX")))
    session = _only(analyze(capture).sessions)
    assert _client_lines(session) == [
        "EHLO client.example.net",
        "XXXX LOGIN",
        "MAIL FROM:<a@example.net>",
        "RCPT TO:<b@example.org>",
        "DATA",
        "QUIT",
    ]
    assert [t.mail_from for t in session.transactions] == ["a@example.net"]
