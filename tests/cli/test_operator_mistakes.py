"""What `smtpfw analyze` does with an operator's mistakes: it says so, plainly, and never turns
one into a confirmed diagnosis."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from scapy.layers.l2 import CookedLinux, Ether
from scapy.utils import rdpcap, wrpcap

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
PAIR = CAPTURES / "pix-starttls-masked"
OTHER = CAPTURES / "clean-starttls"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analyzer", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def _report(out: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((out / "report.json").read_text())
    return data


# -- two files given positionally --------------------------------------------------------------


def test_the_two_sides_given_as_one_capture_are_refused(tmp_path: Path) -> None:
    result = run(
        "analyze",
        str(PAIR / "client-side.pcap"),
        str(PAIR / "server-side.pcap"),
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--client-side" in result.stderr and "--server-side" in result.stderr
    assert not (tmp_path / "report.json").exists()


def test_a_ring_buffer_given_as_files_is_one_capture(tmp_path: Path) -> None:
    files = sorted(str(p) for p in (CAPTURES / "rotation").glob("relay.pcap*"))
    result = run("analyze", *files, "--out", str(tmp_path), "--format", "json")
    assert result.returncode == 1, result.stderr
    assert len(_report(tmp_path)["captures"]) == 1  # type: ignore[arg-type]


def test_one_capture_cut_in_two_is_one_rotation_set(tmp_path: Path) -> None:
    packets = rdpcap(str(PAIR / "client-side.pcap"))
    half = len(packets) // 2
    first, second = tmp_path / "a.pcap", tmp_path / "b.pcap"
    wrpcap(str(first), packets[:half])
    wrpcap(str(second), packets[half:])
    whole = run("analyze", str(PAIR / "client-side.pcap"), "--out", str(tmp_path / "w"))
    cut = run("analyze", str(second), str(first), "--out", str(tmp_path / "c"))
    assert cut.returncode == whole.returncode == 1, cut.stderr
    kinds = [f["kind"] for f in _report(tmp_path / "c")["findings"]]  # type: ignore[attr-defined]
    assert kinds == [f["kind"] for f in _report(tmp_path / "w")["findings"]]  # type: ignore[attr-defined]


def test_files_of_another_link_type_are_not_one_rotation_set(tmp_path: Path) -> None:
    packets = rdpcap(str(PAIR / "client-side.pcap"))
    half = len(packets) // 2
    first, second = tmp_path / "a.pcap", tmp_path / "b.pcap"
    wrpcap(str(first), packets[:half])
    cooked = []
    for pkt in packets[half:]:
        new = CookedLinux(proto=0x0800) / pkt[Ether].payload
        new.time = pkt.time
        cooked.append(new)
    wrpcap(str(second), cooked)
    result = run("analyze", str(first), str(second), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "--client-side" in result.stderr and "interface" in result.stderr


# -- the same capture for both sides ------------------------------------------------------------


def test_the_same_file_for_both_sides_is_exit_2_in_one_line(tmp_path: Path) -> None:
    capture = str(PAIR / "client-side.pcap")
    result = run(
        "analyze", "--client-side", capture, "--server-side", capture, "--out", str(tmp_path)
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "same capture" in result.stderr
    copy = tmp_path / "copy.pcap"
    shutil.copyfile(capture, copy)
    result = run(
        "analyze", "--client-side", capture, "--server-side", str(copy), "--out", str(tmp_path)
    )
    assert result.returncode == 2 and "same capture" in result.stderr


# -- captures that do not overlap ---------------------------------------------------------------


def test_captures_that_do_not_overlap_say_so_and_exit_2(tmp_path: Path) -> None:
    result = run(
        "analyze",
        "--client-side",
        str(PAIR / "client-side.pcap"),
        "--server-side",
        str(OTHER / "server-side.pcap"),
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 2
    assert "verdict: These captures do not overlap" in result.stdout
    report = _report(tmp_path)
    assert report["verdict"]["kind"] == "no_overlap"  # type: ignore[index]
    assert report["verdict"]["reasons"]  # type: ignore[index]
    assert report["findings"] == [] and report["pairs"] == []
    assert all(s["peer"] is None for s in report["sessions"])  # type: ignore[attr-defined]
    markdown = (tmp_path / "report.md").read_text()
    assert markdown.startswith("# SMTP incident report: These captures do not overlap")
    html = (tmp_path / "report.html").read_text()
    assert "These captures do not overlap" in html.split('id="verdict"', 1)[1][:400]


# -- the sides swapped --------------------------------------------------------------------------


def test_swapped_sides_are_said_first_and_analysed_the_right_way_round(tmp_path: Path) -> None:
    client, server = str(PAIR / "client-side.pcap"), str(PAIR / "server-side.pcap")
    right = run(
        "analyze", "--client-side", client, "--server-side", server, "--out", str(tmp_path / "r")
    )
    wrong = run(
        "analyze", "--client-side", server, "--server-side", client, "--out", str(tmp_path / "w")
    )
    assert wrong.returncode == right.returncode == 1
    assert wrong.stdout.startswith("note: The captures were given the wrong way round")
    assert not right.stdout.startswith("note:")
    r, w = _report(tmp_path / "r"), _report(tmp_path / "w")
    assert w["orientation"]["swapped"] is True  # type: ignore[index]
    assert w["orientation"]["given"] == {"client_side": [server], "server_side": [client]}  # type: ignore[index]
    assert w["orientation"]["used"] == {"client_side": [client], "server_side": [server]}  # type: ignore[index]
    assert w["orientation"]["evidence"]  # type: ignore[index]
    assert r["orientation"]["swapped"] is False  # type: ignore[index]
    assert w["findings"] == r["findings"] and w["verdict"] == r["verdict"]
    markdown = (tmp_path / "w" / "report.md").read_text().split("## Verdict", 1)[0]
    assert "given the wrong way round" in markdown
    html = (tmp_path / "w" / "report.html").read_text().split('id="verdict"', 1)[0]
    assert "given the wrong way round" in html


def test_keep_orientation_analyses_the_sides_as_given(tmp_path: Path) -> None:
    client, server = str(PAIR / "client-side.pcap"), str(PAIR / "server-side.pcap")
    kept = run(
        "analyze",
        "--client-side",
        server,
        "--server-side",
        client,
        "--keep-orientation",
        "--out",
        str(tmp_path),
    )
    report = _report(tmp_path)
    assert report["orientation"]["swapped"] is False  # type: ignore[index]
    assert report["orientation"]["kept"] is True  # type: ignore[index]
    assert report["orientation"]["judgment"] == "swapped"  # type: ignore[index]
    assert kept.stdout.startswith("note: The captures look given the wrong way round")
