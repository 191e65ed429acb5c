"""A damaged capture is never passed over in silence: the CLI names the file and the damage.

A file cut short still yields every readable session (the report is written); a file from
which nothing could be read is unusable input (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer.cli import main

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_a_capture_cut_mid_record_is_named_and_still_analysed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = (CAPTURES / "banner-masked" / "client-side.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[:-7])
    code = main(["analyze", str(cut), "--out", str(tmp_path / "out"), "--format", "json"])
    err = capsys.readouterr().err
    assert code in (0, 1)
    assert f"smtpfw: warning: {cut}: cut short in the middle of a record" in err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["sessions"], "the readable part is analysed"
    assert report["captures"][0]["anomalies"]["truncated_record"] == 1


def test_a_capture_with_nothing_readable_is_unusable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = (CAPTURES / "banner-masked" / "client-side.pcap").read_bytes()
    header_and_a_bit = tmp_path / "stub.pcap"
    header_and_a_bit.write_bytes(whole[: 24 + 10])  # the file header, then part of a record header
    code = main(["analyze", str(header_and_a_bit), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        f"smtpfw: error: {header_and_a_bit}: nothing readable: "
        "cut short in the middle of a record (1)"
    ]


def test_a_capture_cut_short_is_stated_in_every_report_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = (CAPTURES / "banner-masked" / "client-side.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[:-7])
    out = tmp_path / "out"
    main(["analyze", str(cut), "--out", str(out), "--format", "json,md,html"])
    said = "is damaged: cut short in the middle of a record (1). The results cover only"
    assert said in capsys.readouterr().out
    for name in ("report.md", "report.html"):
        assert said in (out / name).read_text(), name
    rendered = tmp_path / "again"
    main(["report", str(out / "report.json"), "--out", str(rendered), "--format", "md"])
    assert said in (rendered / "report.md").read_text()
