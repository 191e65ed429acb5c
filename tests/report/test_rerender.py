"""`smtpfw report report.json --format md,html` re-renders a saved analysis from the file alone."""

from __future__ import annotations

from pathlib import Path

from analyzer.cli import main
from analyzer.report.html import render_html
from analyzer.report.markdown import render_markdown

from .conftest import DATA, load


def test_the_report_command_writes_what_the_renderers_make(tmp_path: Path) -> None:
    source = DATA / "pix-dkim-reset.json"
    assert main(["report", str(source), "--format", "md,html", "--out", str(tmp_path)]) == 0
    report = load("pix-dkim-reset")
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == render_markdown(report)
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == render_html(report)


def test_a_hostile_report_is_written_as_valid_utf8(tmp_path: Path) -> None:
    source = DATA / "hostile.json"
    assert main(["report", str(source), "--format", "md,html", "--out", str(tmp_path)]) == 0
    for name in ("report.md", "report.html"):
        (tmp_path / name).read_bytes().decode("utf-8")  # strict: no lone surrogate escaped out
