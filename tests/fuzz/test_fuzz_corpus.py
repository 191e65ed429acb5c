"""Every fuzz reproducer in corpus/ runs as a regression test.

A case expected "ok" must give no failure at all. A case expected "open:<bucket>" is a known
failure nobody has fixed yet: it is reported as xfail while it still fails in that bucket, and
the test fails (so that the manifest gets updated) when it no longer does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz import buckets
from tests.fuzz.cases import evaluate

ENTRIES = buckets.load()


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.file for e in ENTRIES])
def test_corpus_case(entry: buckets.Entry, tmp_path: Path) -> None:
    import analyzer.cli
    import analyzer.report  # noqa: F401 - imported once, before the children fork

    found = {f.bucket for f in evaluate(entry.case(), tmp_path)}
    expected = entry.open_bucket
    if expected is None:
        assert not found, f"{entry.file}: {sorted(found)}"
        return
    unknown = found - buckets.known_open(ENTRIES)
    assert not unknown, f"{entry.file}: new failure bucket(s) {sorted(unknown)}"
    if expected in found:
        pytest.xfail(f"known open failure {expected}: {entry.note}")
    pytest.fail(
        f"{entry.file} no longer fails as {expected} (now: {sorted(found) or 'no failure'}): "
        f'if it was fixed, set its expected to "ok" in {buckets.MANIFEST}'
    )
