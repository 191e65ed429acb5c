"""An output folder that cannot be made is the user's mistake, said in one line (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.cli import main

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "banner-masked" / "client-side.pcap"


def test_out_under_a_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    code = main(["analyze", str(CAPTURE), "--out", str(a_file / "reports")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        f"smtpfw: error: --out {a_file / 'reports'}: cannot make the folder: Not a directory"
    ]


def test_out_that_can_be_made_is_made(tmp_path: Path) -> None:
    out = tmp_path / "new" / "folder"
    assert main(["analyze", str(CAPTURE), "--out", str(out), "--format", "json"]) in (0, 1)
    assert (out / "report.json").is_file()
