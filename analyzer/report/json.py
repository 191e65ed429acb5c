"""Write and read report.json: canonical, stable text so golden files compare byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final, cast

from analyzer.errors import SmtpfwError

from .model import SCHEMA, Report

WRITE_BUFFER: Final = 1 << 20
"""Bytes gathered before each write of a streamed report."""


def dumps(report: Report) -> str:
    # ensure_ascii keeps undecodable captured bytes (surrogates) representable.
    return json.dumps(report, indent=2, ensure_ascii=True) + "\n"


def write(report: Report, path: Path) -> None:
    """The text of `dumps`, written piece by piece as it is encoded: a report of many sessions
    is never held twice (as its model and as one string)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="ascii", buffering=WRITE_BUFFER) as handle:
        json.dump(report, handle, indent=2, ensure_ascii=True)
        handle.write("\n")


def load(path: Path) -> Report:
    """A saved report; a file that is not one is a one-line error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SmtpfwError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SmtpfwError(f"{path}: not a readable JSON report ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise SmtpfwError(f"{path}: not an smtpfw report (schema {SCHEMA} expected)")
    return cast(Report, data)
