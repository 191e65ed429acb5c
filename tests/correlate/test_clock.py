"""The clock estimate: keys seen twice in one capture do not vote; start times alone align two
captures, with a drift."""

from __future__ import annotations

import numpy as np

from analyzer.correlate.clock import (
    _from_start_times,
    _key_message_id,
    _unique_votes,
)
from analyzer.correlate.signals import Profile


def _p(start: float, *ids: str) -> Profile:
    return Profile(
        start, 100, 100, "mx", frozenset(ids), (), None, (frozenset(), frozenset()), None, (), ()
    )


def test_a_relay_hop_message_id_does_not_vote() -> None:
    # The client-side capture saw <hop@x> twice (in and out of a relay), 30 ms apart.
    client = [_p(10.0, "<a@x>"), _p(20.0, "<hop@x>"), _p(20.03, "<hop@x>"), _p(30.0, "<b@x>")]
    server = [_p(47.0, "<a@x>"), _p(57.0, "<hop@x>"), _p(67.0, "<b@x>")]
    votes = _unique_votes(client, server, _key_message_id)
    assert sorted(v[1] for v in votes) == [37.0, 37.0]


def test_start_times_alone_give_offset_and_drift() -> None:
    rng = np.random.default_rng(5)
    starts = np.sort(rng.uniform(0, 3600, 80)) + 1_700_000_000
    offset, ppm = 93.2, 50.0
    server_starts = starts + offset + (starts - starts[0]) * ppm * 1e-6 + rng.uniform(0, 0.002, 80)
    est = _from_start_times([_p(float(t)) for t in starts], [_p(float(t)) for t in server_starts])
    assert est.method == "start_times"
    assert abs(est.at(float(starts[0]), float(starts[0])) - offset) < 0.005
    assert est.drift_ppm is not None and abs(est.drift_ppm - ppm) < 5
    assert est.support >= 10
