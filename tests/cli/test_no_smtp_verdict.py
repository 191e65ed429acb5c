"""A capture without SMTP is never given a green "No symptoms found": nothing was judged.

The verdict says what the capture held instead (packets, TCP connections and their ports,
non-TCP packets such as UDP), in every output. A capture with no packets at all (a zero-byte
file, a pcap header alone) is unusable input: exit 2, the reason on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from analyzer.cli import main
from tests import craft

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
HTTP = [
    ("c", b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"),
    ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
]


def _web_and_dns(path: Path) -> Path:
    web = craft.connection(HTTP, server=("203.0.113.80", 80))
    dns = Ether() / IP(src="198.51.100.7", dst="192.0.2.53") / UDP(sport=5353, dport=53)
    query = dns / DNS(rd=1, qd=DNSQR(qname="example.org"))
    query.time = 1.7e9 + 0.5
    return craft.write(path, web, [query])


def _analyze(capture: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["analyze", str(capture), "--out", str(out), "--format", "json,md,html"])
    said = capsys.readouterr()
    return code, said.out, said.err


def test_a_capture_without_smtp_says_nothing_was_judged_and_what_it_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _analyze(_web_and_dns(tmp_path / "web.pcap"), tmp_path / "out", capsys)
    assert code == 0
    assert "verdict: No SMTP sessions in this capture: nothing to judge" in out
    assert "No symptoms found" not in out
    assert "1 TCP connection, to port 80 (1), 1 non-TCP packet" in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdict"]["kind"] == "no_smtp"
    traffic = report["captures"][0]["traffic"]
    assert traffic["tcp_connections"] == 1
    assert traffic["server_ports"] == {"80": 1}
    assert traffic["non_tcp"] == 1, "UDP is counted as non-TCP"
    for name in ("report.md", "report.html"):
        text = (tmp_path / "out" / name).read_text()
        assert "No SMTP sessions in this capture: nothing to judge" in text, name
        assert "No symptoms found" not in text, name


def test_a_capture_with_smtp_and_no_damage_is_still_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _analyze(CAPTURES / "clean-starttls" / "client-side.pcap", tmp_path, capsys)
    assert code == 0
    assert "verdict: No symptoms found" in out
    assert json.loads((tmp_path / "report.json").read_text())["verdict"]["kind"] == "clean"


def test_a_zero_byte_file_is_unusable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    code, out, err = _analyze(empty, tmp_path / "out", capsys)
    assert code == 2
    assert f"smtpfw: error: {empty}: empty file (0 bytes): nothing to analyse" in err
    assert "No symptoms found" not in out


def test_a_capture_with_a_header_and_no_packet_is_unusable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header_only = tmp_path / "header.pcap"
    whole = (CAPTURES / "clean-starttls" / "client-side.pcap").read_bytes()
    header_only.write_bytes(whole[:24])
    code, _, err = _analyze(header_only, tmp_path / "out", capsys)
    assert code == 2
    assert "the capture holds no packets: nothing to analyse" in err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sessions_says_on_stderr_that_a_capture_holds_no_smtp(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    workers: str,
) -> None:
    monkeypatch.setenv("SMTPFW_WORKERS", workers)
    capture = _web_and_dns(tmp_path / "web.pcap")
    assert main(["sessions", str(capture)]) == 0
    said = capsys.readouterr()
    assert said.out.endswith("0 SMTP session(s)\n")
    assert said.err == (
        f"smtpfw: note: {capture}: no SMTP sessions in this capture, nothing to judge "
        "(9 packets, 1 TCP connection, 1 non-TCP packet)\n"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sessions_names_a_capture_cut_short_and_lists_what_was_readable(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    workers: str,
) -> None:
    monkeypatch.setenv("SMTPFW_WORKERS", workers)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((CAPTURES / "clean-starttls" / "client-side.pcap").read_bytes()[:-7])
    assert main(["sessions", str(cut)]) == 0
    said = capsys.readouterr()
    assert said.out.endswith("3 SMTP session(s)\n")
    assert said.err == (
        f"smtpfw: warning: {cut}: cut short in the middle of a record (1); "
        "the results cover the readable part\n"
    )


def test_unanswered_mail_port_attempts_are_named_in_the_no_smtp_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    syns = []
    for n in range(5):
        syn = Ether() / IP(src="198.51.100.7", dst="203.0.113.9") / TCP(sport=40000 + n, dport=25)
        syn.time = 1.7e9 + n
        syns.append(syn)
    capture = craft.write(tmp_path / "syns.pcap", syns)
    code, out, _ = _analyze(capture, tmp_path / "out", capsys)
    assert code == 0
    assert "verdict: No SMTP sessions in this capture: nothing to judge" in out
    assert (
        "5 TCP connections, to port 25 (5) (of them 5 mail-port attempts without a payload "
        "byte, 5 never answered)" in out
    )
