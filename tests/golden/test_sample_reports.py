"""Every bundled capture pair gives the reviewed report.json, byte for byte.

A change in what smtpfw finds shows up here as a diff of the golden file. To accept a reviewed
change: `SMTPFW_UPDATE_GOLDEN=1 pytest tests/golden` and read the diff before committing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from analyzer.pipeline import analyze
from analyzer.report import build_report, dumps, write

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
GOLDEN = Path(__file__).resolve().parent / "reports"
UPDATE = bool(os.environ.get("SMTPFW_UPDATE_GOLDEN"))


def _pairs() -> list[str]:
    return (
        sorted(
            d.name
            for d in CAPTURES.iterdir()
            if (d / "client-side.pcap").exists() and (d / "server-side.pcap").exists()
        )
        if CAPTURES.is_dir()
        else []
    )


PAIRS = _pairs()


def _report(pair: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(ROOT)  # paths in the report are as given: relative to the project
    analysis = analyze(
        client_side=f"captures/{pair}/client-side.pcap",
        server_side=f"captures/{pair}/server-side.pcap",
    )
    report = build_report(analysis)
    report["generator"]["version"] = "golden"
    return dumps(report)


@pytest.mark.parametrize("pair", PAIRS)
def test_report_matches_reviewed_golden(
    pair: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = _report(pair, monkeypatch)
    golden = GOLDEN / f"{pair}.json"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden report for {pair}: run with SMTPFW_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="ascii")
    # report.json as the CLI writes it (streamed to the file) is the same text
    written = tmp_path / "report.json"
    write(json.loads(text), written)
    assert written.read_bytes() == golden.read_bytes()


MARKDOWN = Path(__file__).resolve().parent / "markdown"


@pytest.mark.parametrize("pair", PAIRS)
def test_markdown_report_matches_reviewed_golden(
    pair: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analyzer.report.markdown import render_markdown

    text = render_markdown(json.loads(_report(pair, monkeypatch)))
    golden = MARKDOWN / f"{pair}.md"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden Markdown for {pair}: run with SMTPFW_UPDATE_GOLDEN=1"
    assert text == golden.read_text()
