"""Report fixtures: report.json files made by `make_fixtures.py` from simulated capture pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest

from analyzer.report.model import Report

DATA = Path(__file__).resolve().parent / "data"
GOLDEN = Path(__file__).resolve().parent / "golden"
FIXTURES = sorted(p.stem for p in DATA.glob("*.json"))


def load(name: str) -> Report:
    return cast(Report, json.loads((DATA / f"{name}.json").read_text(encoding="ascii")))


@pytest.fixture(params=FIXTURES)
def any_report(request: pytest.FixtureRequest) -> Report:
    return load(request.param)
