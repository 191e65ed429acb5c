"""Estimate how far the server-side capture's clock is from the client-side one.

The two capture hosts rarely agree on the time (seconds to minutes, sometimes drifting). The
strongest evidence is a session recognised on both sides by something only one connection has:
the client's TCP timestamp value (RFC 7323 TSval, untouched by NAT and sequence randomisation)
or its IPv4 IP-ID sequence. Then a Message-ID, then the EHLO name with both stream lengths. A key
votes only when exactly one session has it in each capture: a Message-ID seen in two sessions
of one capture (a relay hop, the same message in and out) or a fingerprint a list run repeats
would pull the estimate toward the wrong pairs. Offsets of the pairs that vote are clustered;
the densest cluster wins, and a drift is fitted when the pairs span enough time.

When no key is unique (a list run through a proxy: one message, no timestamps, IP-IDs
rewritten), the start times themselves are aligned as two point processes: the offset at which
the most client-side starts find a server-side start, found on a coarse histogram of all start
differences (by FFT cross-correlation), refined on ever narrower windows and fitted with a
drift on the mutually nearest starts. Its support counts only the sessions whose partner is
the sole candidate near the expected time, so a dense run does not look well supported.

This module only estimates; pairing is in `match`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from analyzer.session.model import SmtpSession

from .signals import IPID_MIN_SHARED, Profile, profile, stream_lengths

BIN_S = 0.5
"""Width of an offset histogram bin, seconds."""
MAX_VOTES = 200_000
"""Candidate pairs considered at most when voting (bounded work on large captures)."""
MIN_UNIQUE_VOTES = 3
"""Fingerprint votes (EHLO name and lengths, which many sessions share) need this many."""
MIN_DRIFT_SPAN_S = 60.0
"""Pairs must span at least this much client-side time before a drift is reported."""
MAX_HISTOGRAM_BINS = 1 << 22
"""Bins of the start-time cross-correlation at most; wider bins beyond (captures of days)."""
MODE_WINDOW_S = 0.25
"""Width of the window of start differences the coarse lag is refined to (wide enough for a
drift of 50 ppm over an hour)."""
MATCH_TOLERANCES_S = (0.25, 0.05)
"""A start agrees with the clock when within this of it: first the refined lag, then the line
fitted to the first agreements (transit through a box and capture timestamp noise are
milliseconds)."""
ISOLATION_S = 0.5
"""A start-time agreement counts as support only when no other start lies within this of the
expected time on the other side."""
MAX_DIFFERENCES = 2_000_000
"""Start differences examined at most when refining (clients sampled evenly beyond)."""

IDENTITY_METHODS = frozenset({"tcp_timestamps", "ip_id"})
"""Methods whose votes come from connection-identity signals."""


@dataclass(frozen=True, slots=True)
class ClockEstimate:
    offset_s: float
    """Server-side clock minus client-side clock, seconds (as report.json's clock_offset_s)."""
    method: str
    """'tcp_timestamps', 'ip_id', 'message_id', 'fingerprint', 'start_times', 'first_session',
    'given' or 'none'."""
    support: int
    """How many session pairs agreed on this offset."""
    drift_ppm: float | None = None
    """Change of the offset per second of capture time, in parts per million, when measurable."""
    reference_ts: float | None = None
    """Client-side time at which the offset is `offset_s` (drift is applied from there); None:
    the first client-side session's start."""

    def at(self, client_ts: float, reference_ts: float) -> float:
        """The offset at client-side time `client_ts` (drift applied from `reference_ts`, or
        from this estimate's own reference when it has one)."""
        if self.drift_ppm is None:
            return self.offset_s
        ref = self.reference_ts if self.reference_ts is not None else reference_ts
        return self.offset_s + (client_ts - ref) * self.drift_ppm * 1e-6


# Kept under its old name for callers outside this package.
_stream_lengths = stream_lengths

ProfileKey = Callable[[Profile], Hashable | None]


def _key_tsval(p: Profile) -> Hashable | None:
    return p.tsval


def _key_message_id(p: Profile) -> Hashable | None:
    return tuple(sorted(p.message_ids)) or None


def _key_fingerprint(p: Profile) -> Hashable | None:
    return (p.helo, p.c2s_length, p.s2c_length)


Vote = tuple[float, float]
"""(client-side start, server-side start minus client-side start)."""


def _unique_votes(
    client: Sequence[Profile], server: Sequence[Profile], keyfn: ProfileKey
) -> list[Vote]:
    """Votes of keys that exactly one session has in each capture. A key two sessions of one
    capture share never votes (a relay hop carries one Message-ID in and out)."""
    count: list[dict[Hashable, int]] = [defaultdict(int), defaultdict(int)]
    first: dict[Hashable, Profile] = {}
    for side, profiles in enumerate((client, server)):
        for p in profiles:
            k = keyfn(p)
            if k is not None:
                count[side][k] += 1
                if side == 1:
                    first[k] = p
    votes: list[Vote] = []
    for c in client:
        k = keyfn(c)
        if k is not None and count[0][k] == 1 and count[1].get(k) == 1:
            votes.append((c.start, first[k].start - c.start))
    return votes


def _ip_id_votes(client: Sequence[Profile], server: Sequence[Profile]) -> list[Vote]:
    """Votes of sessions whose client IP-ID sequence one server-side session shares, and no
    other session of either capture."""
    by_value: dict[int, list[int]] = defaultdict(list)
    for si, s in enumerate(server):
        for value in s.ip_ids[0]:
            by_value[value].append(si)
    found: dict[int, list[int]] = {}
    claimed: dict[int, int] = defaultdict(int)
    for ci, c in enumerate(client):
        hits: dict[int, int] = defaultdict(int)
        for value in c.ip_ids[0]:
            for si in by_value.get(value, ()):
                hits[si] += 1
        matches = [si for si, n in hits.items() if n >= IPID_MIN_SHARED]
        found[ci] = matches
        for si in matches:
            claimed[si] += 1
    return [
        (client[ci].start, server[m[0]].start - client[ci].start)
        for ci, m in found.items()
        if len(m) == 1 and claimed[m[0]] == 1
    ]


def _densest(votes: list[Vote]) -> tuple[float, list[Vote]]:
    """The offset at the centre of the densest bin, and the votes within a bin of it."""
    bins: dict[int, int] = defaultdict(int)
    for _, offset in votes:
        bins[round(offset / BIN_S)] += 1
    best = max(bins, key=lambda b: (bins[b] + bins.get(b - 1, 0) + bins.get(b + 1, 0), -abs(b)))
    centre = best * BIN_S
    near = [v for v in votes if abs(v[1] - centre) <= BIN_S * 1.5]
    return statistics.median(v[1] for v in near), near


def _line_fit(near: Sequence[Vote]) -> tuple[float, float] | None:
    """Least-squares (offset at the mean time, slope) of the votes, when they span enough."""
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
    return mean_y - slope * mean_x, slope


def _from_votes(method: str, votes: list[Vote], reference: float) -> ClockEstimate:
    offset, near = _densest(votes)
    fit = _line_fit(near)
    if fit is None:
        return ClockEstimate(offset, method, len(near))
    intercept, slope = fit
    return ClockEstimate(intercept + slope * reference, method, len(near), slope * 1e6, reference)


# --- Start times as two point processes --------------------------------------------------------


def _coarse_lag(c: np.ndarray, s: np.ndarray) -> float:
    """The lag (server start - client start) with the most start pairs within a bin, by FFT
    cross-correlation of the two binned start series."""
    lo = float(min(c[0], s[0]))
    span = float(max(c[-1], s[-1])) - lo
    width = max(BIN_S, span * 2 / MAX_HISTOGRAM_BINS)
    size = int(span / width) + 2
    hc = np.bincount(((c - lo) / width).astype(np.int64), minlength=size).astype(float)
    hs = np.bincount(((s - lo) / width).astype(np.int64), minlength=size).astype(float)
    n = 1 << int(2 * size - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(hs, n) * np.conj(np.fft.rfft(hc, n)), n)
    # Lag k bins (server later) sits at index k, lag -k at n - k; sum neighbouring bins so that
    # a cluster split by a bin edge still counts whole.
    lags = np.concatenate((corr[n - size + 1 :], corr[:size]))
    smooth = lags + np.roll(lags, 1) + np.roll(lags, -1)
    best = int(np.argmax(np.round(smooth, 6)))
    return (best - (size - 1)) * width


def _differences(c: np.ndarray, s: np.ndarray, lag: float, half: float) -> np.ndarray:
    """Every server start minus client start within `half` of `lag`."""
    left = np.searchsorted(s, c + lag - half, side="left")
    right = np.searchsorted(s, c + lag + half, side="right")
    counts = right - left
    total = int(counts.sum())
    if total > MAX_DIFFERENCES:
        step = int(np.ceil(total / MAX_DIFFERENCES))
        keep = np.arange(0, len(c), step)
        c, left, counts = c[keep], left[keep], counts[keep]
        total = int(counts.sum())
    if total == 0:
        return np.empty(0)
    owner = np.repeat(np.arange(len(c)), counts)
    starts = np.repeat(left - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    index = starts + np.arange(total)
    found: np.ndarray = s[index] - c[owner]
    return found


def _mode(diffs: np.ndarray, lag: float, width: float) -> float:
    """The median of the differences in the window of `width` that holds the most of them
    (`lag` when there are none)."""
    if diffs.size == 0:
        return lag
    ordered = np.sort(diffs)
    ends = np.searchsorted(ordered, ordered + width, side="right")
    counts = ends - np.arange(ordered.size)
    best = int(np.argmax(counts))
    inside = ordered[best : ends[best]]
    return float(np.median(inside))


def _nearest_votes(
    c: np.ndarray, s: np.ndarray, offset_of: Callable[[np.ndarray], np.ndarray], tol: float
) -> tuple[list[Vote], int]:
    """Mutually nearest (client, server) starts within `tol` of the clock, as votes; and how
    many of them have no other start within `ISOLATION_S` of the expected time on either side."""
    expected = c + offset_of(c)
    right = np.clip(np.searchsorted(s, expected), 1, len(s) - 1) if len(s) > 1 else None
    if right is None:
        nearest = np.zeros(len(c), dtype=np.int64)
    else:
        left = right - 1
        nearest = np.where(np.abs(s[left] - expected) <= np.abs(s[right] - expected), left, right)
    error = s[nearest] - expected
    votes: list[Vote] = []
    isolated = 0
    back = s - offset_of(s)  # server starts on the client clock (drift small: one step)
    for ci in np.flatnonzero(np.abs(error) <= tol).tolist():
        si = int(nearest[ci])
        # Mutual: this client start is the nearest to the server start's expected time.
        k = int(np.searchsorted(c, back[si]))
        cands = [j for j in (k - 1, k) if 0 <= j < len(c)]
        if min(cands, key=lambda j: abs(c[j] - back[si])) != ci:
            continue
        votes.append((float(c[ci]), float(s[si] - c[ci])))
        near_s = np.searchsorted(s, [expected[ci] - ISOLATION_S, expected[ci] + ISOLATION_S])
        near_c = np.searchsorted(c, [c[ci] - ISOLATION_S, c[ci] + ISOLATION_S])
        if near_s[1] - near_s[0] == 1 and near_c[1] - near_c[0] == 1:
            isolated += 1
    return votes, isolated


def _from_start_times(client: Sequence[Profile], server: Sequence[Profile]) -> ClockEstimate:
    c = np.sort(np.array([p.start for p in client], dtype=float))
    s = np.sort(np.array([p.start for p in server], dtype=float))
    lag = _coarse_lag(c, s)
    lag = _mode(_differences(c, s, lag, BIN_S * 1.5), lag, MODE_WINDOW_S)
    reference = float(c[0])
    offset, slope = lag, 0.0

    def clock(t: np.ndarray) -> np.ndarray:
        return offset + (t - reference) * slope

    isolated = 0
    for tol in MATCH_TOLERANCES_S:
        votes, isolated = _nearest_votes(c, s, clock, tol)
        if not votes:
            break
        fit = _line_fit(votes)
        if fit is None:
            offset, slope = statistics.median(v[1] for v in votes), 0.0
        else:
            offset, slope = fit[0] + fit[1] * reference, fit[1]
    drift = slope * 1e6 if slope else None
    return ClockEstimate(
        offset, "start_times", isolated, drift, reference if drift is not None else None
    )


def estimate_offset(client: Sequence[SmtpSession], server: Sequence[SmtpSession]) -> ClockEstimate:
    """Estimate the clock offset from the strongest evidence available."""
    if not client or not server:
        return ClockEstimate(0.0, "none", 0)
    cp = [profile(x) for x in client]
    sp = [profile(x) for x in server]
    reference = client[0].start_ts
    keyed: tuple[tuple[str, ProfileKey | None, int], ...] = (
        ("tcp_timestamps", _key_tsval, 1),
        ("ip_id", None, 1),
        ("message_id", _key_message_id, 1),
        ("fingerprint", _key_fingerprint, MIN_UNIQUE_VOTES),
    )
    for method, key, least in keyed:
        votes = _ip_id_votes(cp, sp) if key is None else _unique_votes(cp, sp, key)
        if len(votes) >= least:
            return _from_votes(method, votes[:MAX_VOTES], reference)
    if len(cp) == 1 or len(sp) == 1:
        # Nothing in common but time, and no pattern to align: assume the first sessions
        # correspond.
        return ClockEstimate(server[0].start_ts - client[0].start_ts, "first_session", 1)
    return _from_start_times(cp, sp)
