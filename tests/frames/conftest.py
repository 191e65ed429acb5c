"""Analyses of the bundled captures, made once per test session (each takes well under a second)."""

from __future__ import annotations

from pathlib import Path

import pytest

import analyzer
from analyzer import Analysis

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
SAMPLES = sorted(
    p.name
    for p in CAPTURES.iterdir()
    if (p / "client-side.pcap").is_file() and (p / "server-side.pcap").is_file() and p.name != "lab"
)
ROTATION = sorted((CAPTURES / "rotation").glob("relay.pcap*"))


def pair(name: str) -> Analysis:
    folder = CAPTURES / name
    return analyzer.analyze(
        client_side=folder / "client-side.pcap", server_side=folder / "server-side.pcap"
    )


@pytest.fixture(scope="session")
def pairs() -> dict[str, Analysis]:
    """Every sample pair, analysed on both sides."""
    return {name: pair(name) for name in SAMPLES}


@pytest.fixture(scope="session")
def masked() -> Analysis:
    return pair("pix-starttls-masked")


@pytest.fixture(scope="session")
def rotation() -> Analysis:
    """The ring buffer of captures/rotation read as one capture."""
    return analyzer.analyze(ROTATION)
