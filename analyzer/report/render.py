"""Pick the renderer for a format and write the file. Renderers only format the report model."""

from __future__ import annotations

from pathlib import Path

from analyzer.errors import UsageError

from .json import dumps
from .json import write as write_json
from .model import Report


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return dumps(report)
    if fmt == "md":
        from .markdown import render_markdown

        return render_markdown(report)
    if fmt == "html":
        from .html import render_html

        return render_html(report)
    raise UsageError(f"unknown report format {fmt!r}")


def write(report: Report, fmt: str, path: Path) -> None:
    if fmt == "json":
        write_json(report, path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report, fmt), encoding="utf-8", errors="surrogateescape")
