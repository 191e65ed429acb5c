"""Estimate how far the server-side capture's clock is from the client-side one.

The two capture hosts rarely agree on the time (seconds to minutes, sometimes drifting). The
firewall keeps some things intact that let us recognise the same connection on both sides:
the client's TCP timestamp value (RFC 7323 TSval, untouched by NAT and sequence randomisation),
and the EHLO name and byte counts of the dialogue. Offsets of such likely pairs vote; the
densest cluster wins. This module only estimates; pairing is in `match`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from analyzer.session.model import SmtpSession

BIN_S = 0.5
"""Width of an offset histogram bin, seconds."""
MAX_VOTES = 200_000
"""Candidate pairs considered at most when voting (bounded work on large captures)."""
MIN_UNIQUE_VOTES = 3
"""Votes from keys unique on both sides are used alone when there are at least this many."""
MIN_DRIFT_SPAN_S = 60.0
"""Pairs must span at least this much client-side time before a drift is reported."""


@dataclass(frozen=True, slots=True)
class ClockEstimate:
    offset_s: float
    """Server-side clock minus client-side clock, seconds (as report.json's clock_offset_s)."""
    method: str
    """'tcp_timestamps', 'message_id', 'fingerprint', 'ehlo_name', 'given' or 'none'."""
    support: int
    """How many session pairs agreed on this offset."""
    drift_ppm: float | None = None
    """Change of the offset per second of capture time, in parts per million, when measurable."""

    def at(self, client_ts: float, reference_ts: float) -> float:
        """The offset at client-side time `client_ts` (drift applied from `reference_ts`)."""
        if self.drift_ppm is None:
            return self.offset_s
        return self.offset_s + (client_ts - reference_ts) * self.drift_ppm * 1e-6


def _stream_lengths(session: SmtpSession) -> tuple[int, int]:
    c2s, s2c = session.stats.client_to_server, session.stats.server_to_client
    return c2s.bytes + c2s.gap_bytes, s2c.bytes + s2c.gap_bytes


def _key_tsval(session: SmtpSession) -> Hashable | None:
    if session.flow.client_tsval is None or not session.flow.handshake_seen:
        return None
    return session.flow.client_tsval


def _key_message_id(session: SmtpSession) -> Hashable | None:
    ids = tuple(t.message_id for t in session.transactions if t.message_id)
    return ids or None


def _key_fingerprint(session: SmtpSession) -> Hashable | None:
    return (session.helo, *_stream_lengths(session))


def _key_ehlo(session: SmtpSession) -> Hashable | None:
    return session.helo


SessionKey = Callable[[SmtpSession], Hashable | None]


def _votes(
    client: Sequence[SmtpSession], server: Sequence[SmtpSession], keyfn: SessionKey
) -> list[tuple[float, float]]:
    """(client start, offset) for every pair of sessions sharing a key."""
    by_key: dict[Hashable, list[SmtpSession]] = defaultdict(list)
    for s in server:
        k = keyfn(s)
        if k is not None:
            by_key[k].append(s)
    client_count: dict[Hashable, int] = defaultdict(int)
    for c in client:
        k = keyfn(c)
        if k is not None:
            client_count[k] += 1
    votes: list[tuple[float, float]] = []
    unique: list[tuple[float, float]] = []
    for c in client:
        k = keyfn(c)
        if k is None:
            continue
        candidates = by_key.get(k, ())
        if len(candidates) == 1 and client_count[k] == 1:
            unique.append((c.start_ts, candidates[0].start_ts - c.start_ts))
        for s in candidates:
            if len(votes) < MAX_VOTES:
                votes.append((c.start_ts, s.start_ts - c.start_ts))
    # A key one session has on each side is a near-certain pair; where many sessions share a
    # key (a newsletter run), the wrong pairings' votes would drag the median.
    return unique if len(unique) >= MIN_UNIQUE_VOTES else votes


def _densest(votes: list[tuple[float, float]]) -> tuple[float, list[tuple[float, float]]]:
    """The offset at the centre of the densest bin, and the votes within a bin of it."""
    bins: dict[int, int] = defaultdict(int)
    for _, offset in votes:
        bins[round(offset / BIN_S)] += 1
    best = max(bins, key=lambda b: (bins[b] + bins.get(b - 1, 0) + bins.get(b + 1, 0), -abs(b)))
    centre = best * BIN_S
    near = [v for v in votes if abs(v[1] - centre) <= BIN_S * 1.5]
    return statistics.median(v[1] for v in near), near


def _drift_ppm(near: list[tuple[float, float]]) -> float | None:
    if len(near) < 3:
        return None
    xs = [v[0] for v in near]
    if max(xs) - min(xs) < MIN_DRIFT_SPAN_S:
        return None
    mean_x = statistics.fmean(xs)
    mean_y = statistics.fmean(v[1] for v in near)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return None
    slope = sum((x - mean_x) * (v[1] - mean_y) for x, v in zip(xs, near, strict=True)) / sxx
    return slope * 1e6


def estimate_offset(client: Sequence[SmtpSession], server: Sequence[SmtpSession]) -> ClockEstimate:
    """Estimate the clock offset from the strongest evidence available."""
    methods: tuple[tuple[str, SessionKey], ...] = (
        ("tcp_timestamps", _key_tsval),
        ("message_id", _key_message_id),
        ("fingerprint", _key_fingerprint),
        ("ehlo_name", _key_ehlo),
    )
    for method, key in methods:
        votes = _votes(client, server, key)
        if votes:
            offset, near = _densest(votes)
            return ClockEstimate(offset, method, len(near), _drift_ppm(near))
    if client and server:
        # Nothing in common but time: assume the first sessions correspond.
        return ClockEstimate(server[0].start_ts - client[0].start_ts, "first_session", 1)
    return ClockEstimate(0.0, "none", 0)
