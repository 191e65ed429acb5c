"""Reading a capture frees each session's memory as the session closes, and leaves the garbage
collector as it found it.

While a capture is read the cyclic collector runs rarely (`pipeline.YOUNG_COLLECTION_THRESHOLD`),
so memory stays flat only if a closed session leaves no reference cycle behind.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyzer import read_sessions
from analyzer.smtp import SmtpObserver

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted((ROOT / "captures").glob("*/*-side.pcap*")) + sorted(
    (ROOT / "captures" / "lab").glob("*/*-side.pcap*")
)


@pytest.fixture
def garbage_kept() -> Iterator[list[object]]:
    """Everything the collector finds unreachable while the test runs (kept, not freed)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_the_bundled_captures_hold_starttls_sessions() -> None:
    sessions = [s for path in CAPTURES for s in read_sessions(path)]
    assert len(CAPTURES) > 20
    assert any(s.starttls.established for s in sessions)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_read_session_leaves_no_reference_cycle_behind(
    path: Path, garbage_kept: list[object]
) -> None:
    sessions = read_sessions(path)
    assert sessions
    del sessions
    gc.collect()
    left = [o for o in garbage_kept if type(o).__module__.startswith("analyzer")]
    assert left == []
    assert not any(isinstance(o, SmtpObserver) for o in garbage_kept)


def test_reading_leaves_the_collector_thresholds_as_they_were() -> None:
    before = gc.get_threshold()
    read_sessions(CAPTURES[0])
    assert gc.get_threshold() == before
