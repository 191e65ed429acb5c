"""The `smtpfw` command as an engineer uses it: exit codes, one-line errors, safe output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.cli import main
from tests import craft

ROOT = Path(__file__).resolve().parents[2]
PAIR = ROOT / "captures" / "pix-starttls-masked"
CLEAN = ROOT / "captures" / "clean-starttls"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analyzer", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_a_file_that_is_not_a_capture_is_one_line_naming_it_and_exit_2(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.pcap"
    bogus.write_text("these are my notes, not a capture\n")
    result = run("sessions", str(bogus))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert str(bogus) in result.stderr and "Traceback" not in result.stderr


def test_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    result = run("analyze", str(tmp_path / "nope.pcap"), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "nope.pcap" in result.stderr and "Traceback" not in result.stderr


def test_readable_files_are_still_reported_when_another_is_bad(tmp_path: Path) -> None:
    bogus = tmp_path / "bad.pcap"
    bogus.write_bytes(b"\x00" * 64)
    result = run("sessions", str(PAIR / "client-side.pcap"), str(bogus))
    assert result.returncode == 2
    assert "4 SMTP session(s)" in result.stdout
    assert "bad.pcap" in result.stderr


def test_bad_arguments_are_exit_2_without_usage_dump(tmp_path: Path) -> None:
    result = run("analyze", "--client-side", str(PAIR / "client-side.pcap"), "--format", "pdf")
    assert result.returncode == 2
    assert result.stderr.startswith("smtpfw: error:")


def test_analyze_exit_status_says_whether_the_firewall_changed_anything(tmp_path: Path) -> None:
    clean = main(
        [
            "analyze",
            "--client-side",
            str(CLEAN / "client-side.pcap"),
            "--server-side",
            str(CLEAN / "server-side.pcap"),
            "--out",
            str(tmp_path / "c"),
        ]
    )
    tampered = main(
        [
            "analyze",
            "--client-side",
            str(PAIR / "client-side.pcap"),
            "--server-side",
            str(PAIR / "server-side.pcap"),
            "--out",
            str(tmp_path / "t"),
        ]
    )
    assert (clean, tampered) == (0, 1)
    report = json.loads((tmp_path / "t" / "report.json").read_text())
    assert report["schema"] == "smtpfw.report/1"
    assert {p.name for p in (tmp_path / "t").iterdir()} == {
        "report.json",
        "report.md",
        "report.html",
    }


def test_a_given_time_offset_overrides_the_estimate(tmp_path: Path) -> None:
    main(
        [
            "analyze",
            "--client-side",
            str(PAIR / "client-side.pcap"),
            "--server-side",
            str(PAIR / "server-side.pcap"),
            "--out",
            str(tmp_path),
            "--format",
            "json",
            "--time-offset",
            "37.4",
        ]
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["clock_offset_s"] == 37.4 and report["clock"]["method"] == "given"
    assert len(report["pairs"]) == 4


def test_a_saved_report_re_renders_without_the_captures(tmp_path: Path) -> None:
    main(
        [
            "analyze",
            "--client-side",
            str(PAIR / "client-side.pcap"),
            "--server-side",
            str(PAIR / "server-side.pcap"),
            "--out",
            str(tmp_path),
            "--format",
            "json",
        ]
    )
    assert main(["report", str(tmp_path / "report.json"), "--format", "md,html"]) == 0
    assert "XXXXXXXA" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "report.html").read_text().startswith("<!")


def test_a_folder_of_pairs_gives_one_report_each_and_an_index(tmp_path: Path) -> None:
    code = main(
        ["analyze", str(ROOT / "captures"), "--out", str(tmp_path), "--format", "json,html"]
    )
    assert code == 1
    pairs = sorted(p.parent.name for p in tmp_path.glob("*/report.json"))
    assert "pix-starttls-masked" in pairs and "clean-starttls" in pairs
    index = (tmp_path / "index.html").read_text()
    assert all(f'href="{name}/report.html"' in index for name in pairs)


def test_captured_control_characters_never_reach_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = craft.write(
        tmp_path / "evil.pcap",
        craft.connection(
            [
                ("s", b"220 \x1b[2J\x1b]0;owned\x07 ESMTP\r\n"),
                ("c", b"EHLO \x1b[31mred\r\n"),
                ("s", b"250 ok\r\n"),
                ("c", b"QUIT\r\n"),
                ("s", b"221 bye\r\n"),
            ]
        ),
    )
    assert main(["sessions", str(capture)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J" in out


def test_auth_secrets_are_never_printed_or_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = b"AGFsaWNlAGh1bnRlcjI="  # \0alice\0hunter2
    capture = craft.write(
        tmp_path / "auth.pcap",
        craft.connection(
            [
                ("s", b"220 mx ESMTP\r\n"),
                ("c", b"EHLO c\r\n"),
                ("s", b"250-mx\r\n250 AUTH PLAIN LOGIN\r\n"),
                ("c", b"AUTH PLAIN " + secret + b"\r\n"),
                ("s", b"235 ok\r\n"),
                ("c", b"AUTH LOGIN\r\n"),
                ("s", b"334 VXNlcm5hbWU6\r\n"),
                ("c", b"YWxpY2U=\r\n"),
                ("s", b"334 UGFzc3dvcmQ6\r\n"),
                ("c", b"aHVudGVyMg==\r\n"),
                ("s", b"235 ok\r\n"),
                ("c", b"QUIT\r\n"),
                ("s", b"221 bye\r\n"),
            ]
        ),
    )
    main(["sessions", "--json", str(capture)])
    main(["analyze", str(capture), "--out", str(tmp_path / "r")])
    printed = capsys.readouterr().out
    written = "".join(p.read_text() for p in (tmp_path / "r").iterdir())
    for text in (printed, written):
        for needle in ("AGFsaWNlAGh1bnRlcjI", "YWxpY2U", "aHVudGVyMg", "hunter2"):
            assert needle not in text
    assert '"auth_mechanism": "PLAIN"' in printed
