"""A short fuzzing campaign with a fixed seed: every failure must be a known open bucket.

`make fuzz N=...` runs longer campaigns. A new bucket fails this test; save its reproducer
with `python -m tests.fuzz -n N --seed S --save`.
"""

from __future__ import annotations

from tests.fuzz import buckets, campaign

SMOKE_CASES = 150
SMOKE_SEED = 13


def test_smoke_campaign_finds_only_known_buckets() -> None:
    import analyzer.cli
    import analyzer.report  # noqa: F401 - imported once, before the children fork

    outcome = campaign.run(SMOKE_CASES, SMOKE_SEED, jobs=2, all_targets=False)
    assert outcome.cases == SMOKE_CASES
    known = buckets.known_open(buckets.load())
    new = {
        name: (b.first.seed if b.first else "", b.first.steps if b.first else (), b.failure)
        for name, b in outcome.buckets.items()
        if name not in known
    }
    assert not new, f"new failure buckets: {new}"
