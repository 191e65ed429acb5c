"""The index page of a folder analysis: one row per capture pair, linking to its report.

Formats what each report already says (counts, worst severity, finding kinds); computes nothing.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from analyzer.text import markdown_cell

from .model import Report

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


def _worst(report: Report) -> str:
    present = {f["severity"] for f in report["findings"]}
    return next((s for s in SEVERITY_ORDER if s in present), "none")


def _kinds(report: Report) -> str:
    return ", ".join(sorted({f["kind"] for f in report["findings"]})) or "no difference"


def _markdown(done: Sequence[tuple[str, Report]], formats: Sequence[str]) -> str:
    link = "report.md" if "md" in formats else "report.json"
    rows = [
        "# smtpfw — capture pairs",
        "",
        "| pair | sessions | pairs | findings | worst | kinds |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, report in done:
        rows.append(
            f"| [{markdown_cell(name)}]({quote(name)}/{link}) "
            f"| {len(report['sessions'])} | {len(report['pairs'])} | {len(report['findings'])} "
            f"| {_worst(report)} | {markdown_cell(_kinds(report))} |"
        )
    return "\n".join(rows) + "\n"


_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#1d232a}
table{border-collapse:collapse;width:100%}th,td{padding:.4rem .6rem;border-bottom:1px solid #ddd;
text-align:left}th{background:#f3f5f7}td.n{text-align:right}
.sev{font-weight:600;border-radius:.3rem;padding:.05rem .45rem;color:#fff}
.critical{background:#a4161a}.high{background:#d9480f}.medium{background:#e6a700;color:#222}
.low{background:#4c6ef5}.info{background:#868e96}.none{background:#2b8a3e}
"""


def _html(done: Sequence[tuple[str, Report]], formats: Sequence[str]) -> str:
    link = next(f"report.{fmt}" for fmt in ("html", "md", "json") if fmt in formats)
    body = []
    for name, report in done:
        worst = _worst(report)
        body.append(
            "<tr>"
            f'<td><a href="{html.escape(quote(name), quote=True)}/{link}">'
            f"{html.escape(name)}</a></td>"
            f'<td class="n">{len(report["sessions"])}</td>'
            f'<td class="n">{len(report["pairs"])}</td>'
            f'<td class="n">{len(report["findings"])}</td>'
            f'<td><span class="sev {worst}">{worst}</span></td>'
            f"<td>{html.escape(_kinds(report))}</td>"
            "</tr>"
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>smtpfw — capture pairs</title>"
        f"<style>{_STYLE}</style></head><body><h1>smtpfw — capture pairs</h1>"
        "<table><thead><tr><th>pair</th><th>sessions</th><th>pairs</th><th>findings</th>"
        "<th>worst</th><th>kinds</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></body></html>\n"
    )


def write_index(
    done: Sequence[tuple[str, Report]], out_root: Path, formats: Sequence[str]
) -> list[Path]:
    out_root.mkdir(parents=True, exist_ok=True)
    written = []
    if "html" in formats:
        path = out_root / "index.html"
        path.write_text(_html(done, formats), encoding="utf-8", errors="surrogateescape")
        written.append(path)
    md = out_root / "index.md"
    md.write_text(_markdown(done, formats), encoding="utf-8", errors="surrogateescape")
    written.append(md)
    return written
