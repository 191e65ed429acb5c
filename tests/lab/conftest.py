"""Fixtures of the real-traffic lab: one lab per test session, each scenario run once.

`lab` builds the namespaces and servers on first use and removes them (and leftovers of earlier
aborted runs) at the end of the session. Without root the lab tests are skipped; as root, a
missing program, module or kernel feature fails them with its name. `lab_run(name)` runs a
scenario on first request and returns the cached `ScenarioRun` after that.
Set SMTPFW_LAB_KEEP=1 to keep the run directory (captures, logs) for inspection.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator

import pytest

from .deps import missing_pieces
from .observed import Observed, observe
from .runner import Lab, ScenarioRun
from .scenarios import BY_NAME

KEEP_ENV = "SMTPFW_LAB_KEEP"


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, iptables, tcpdump)")
    missing = missing_pieces()
    if missing:
        pytest.fail(
            "the lab cannot run; missing: " + "; ".join(missing) + " (see scripts/lab-deps.sh)",
            pytrace=False,
        )
    the_lab = Lab(keep_files=os.environ.get(KEEP_ENV) == "1")
    try:
        the_lab.start()
        yield the_lab
    finally:
        the_lab.stop()
        if the_lab.keep_files:
            print(f"\nlab files kept in {the_lab.base}", file=sys.stderr)


@pytest.fixture(scope="session")
def lab_run(lab: Lab) -> Callable[[str], ScenarioRun]:
    failures: dict[str, BaseException] = {}

    def get(name: str) -> ScenarioRun:
        if name in failures:
            raise failures[name]
        if name not in lab.runs:
            try:
                lab.run(BY_NAME[name])
            except Exception as exc:
                failures[name] = exc
                raise
        return lab.runs[name]

    return get


@pytest.fixture(scope="session")
def observed(lab_run: Callable[[str], ScenarioRun]) -> Callable[[str], Observed]:
    cache: dict[str, Observed] = {}

    def get(name: str) -> Observed:
        if name not in cache:
            cache[name] = observe(lab_run(name))
        return cache[name]

    return get
