"""Pair the sessions of a client-side capture with those of a server-side capture.

Addresses, ports and sequence numbers change across a NAT firewall, so five-tuples are never
used alone. What survives the box is scored: start time after the clock offset, the client's
TCP timestamp value, per-direction byte counts (in-place masking keeps lengths), EHLO name,
envelope and Message-IDs. Pairs are assigned greedily from the highest score down; each session
pairs at most once. This module does not compare payload bytes (see `align`).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from analyzer.session.model import SmtpSession

from .clock import ClockEstimate, _stream_lengths

WINDOW_S = 30.0
"""Candidates must start within this many seconds of each other once the offset is applied."""
NEAREST = 48
"""Closest-in-time candidates scored per session, besides exact TSval/Message-ID matches."""
MIN_SCORE = 4.0
"""Below this a candidate is not a pair: the sessions are reported unmatched instead."""

# Feature weights: a feature that a firewall cannot change weighs most.
W_TSVAL = 10.0
W_MESSAGE_ID = 6.0
W_LENGTH = 3.0
W_LENGTH_CLOSE = 1.0
W_HELO = 2.0
W_ENVELOPE = 2.0
W_TIME = 4.0
TIME_SCALE_S = 0.5
"""A start-time difference of this many seconds halves the time score."""
W_RHYTHM = 4.0
RHYTHM_SCALE_S = 0.01
"""The dialogue's rhythm: a median difference of this many seconds between the two sides'
times of the same commands and replies halves the rhythm score. Sessions that look alike in
every other way (a newsletter run) still differ in when each of their lines crossed."""
RHYTHM_LINES = 8
W_TAIL = 6.0
TAIL_BYTES = 64
"""The last bytes of a direction: after STARTTLS they are ciphertext, unique to one connection
and never touched by the box, so equal tails tell apart sessions that look alike otherwise."""


@dataclass(frozen=True, slots=True)
class SessionPair:
    """The same SMTP connection seen in both captures."""

    client_side: SmtpSession
    server_side: SmtpSession
    score: float
    matched_on: tuple[str, ...]
    """Features that agreed ('tcp_timestamp', 'message_id', 'c2s_length', …)."""
    time_delta_s: float
    """Server-side start minus client-side start, minus the estimated clock offset."""


@dataclass(frozen=True, slots=True)
class Pairing:
    pairs: tuple[SessionPair, ...]
    client_only: tuple[SmtpSession, ...]
    server_only: tuple[SmtpSession, ...]


def _envelope(session: SmtpSession) -> tuple[tuple[str | None, tuple[str, ...]], ...]:
    return tuple((t.mail_from, t.rcpt_to) for t in session.transactions)


def _message_ids(session: SmtpSession) -> frozenset[str]:
    return frozenset(t.message_id for t in session.transactions if t.message_id)


def _close(a: int, b: int) -> bool:
    return a > 0 and b > 0 and abs(a - b) <= max(64, 0.05 * max(a, b))


def _rhythm(client: SmtpSession, server: SmtpSession, offset_s: float) -> float | None:
    """Median time difference of the sessions' first lines, once the clock offset is applied."""
    diffs = [
        abs(s.ts - offset_s - c.ts)
        for c, s in zip(client.lines[:RHYTHM_LINES], server.lines[:RHYTHM_LINES], strict=False)
        if c.direction is s.direction
    ]
    if len(diffs) < 2:
        return None
    diffs.sort()
    return diffs[len(diffs) // 2]


def _same_tail(client: SmtpSession, server: SmtpSession) -> bool:
    """Both captures end a direction with the same bytes (only when both kept their streams)."""
    if client.streams is None or server.streams is None:
        return False
    for c, s in (
        (client.streams.client_to_server, server.streams.client_to_server),
        (client.streams.server_to_client, server.streams.server_to_client),
    ):
        if c.truncated or s.truncated or len(c.data) < TAIL_BYTES or len(s.data) < TAIL_BYTES:
            continue
        if c.data[-TAIL_BYTES:] == s.data[-TAIL_BYTES:]:
            return True
    return False


def score(
    client: SmtpSession, server: SmtpSession, delta_s: float, offset_s: float = 0.0
) -> tuple[float, tuple[str, ...]]:
    """How strongly two sessions look like one connection, and which features agreed."""
    total = W_TIME * TIME_SCALE_S / (TIME_SCALE_S + abs(delta_s))
    matched: list[str] = []
    rhythm = _rhythm(client, server, offset_s)
    if rhythm is not None:
        total += W_RHYTHM * RHYTHM_SCALE_S / (RHYTHM_SCALE_S + rhythm)
        if rhythm < RHYTHM_SCALE_S:
            matched.append("rhythm")
    c_ts, s_ts = client.flow.client_tsval, server.flow.client_tsval
    if c_ts is not None and s_ts is not None and client.flow.handshake_seen:
        if c_ts == s_ts:
            total += W_TSVAL
            matched.append("tcp_timestamp")
        else:
            total -= W_TSVAL
    if _same_tail(client, server):
        total += W_TAIL
        matched.append("stream_tail")
    c_len, s_len = _stream_lengths(client), _stream_lengths(server)
    for name, a, b in (("c2s_length", c_len[0], s_len[0]), ("s2c_length", c_len[1], s_len[1])):
        if a == b and a > 0:
            total += W_LENGTH
            matched.append(name)
        elif _close(a, b):
            total += W_LENGTH_CLOSE
    if client.helo is not None and server.helo is not None:
        if client.helo == server.helo:
            total += W_HELO
            matched.append("helo")
        else:
            total -= W_HELO
    c_ids, s_ids = _message_ids(client), _message_ids(server)
    if c_ids and s_ids:
        if c_ids & s_ids:
            total += W_MESSAGE_ID
            matched.append("message_id")
        else:
            total -= W_MESSAGE_ID
    c_env, s_env = _envelope(client), _envelope(server)
    if c_env and s_env:
        if c_env == s_env:
            total += W_ENVELOPE
            matched.append("envelope")
        elif c_env[0][0] != s_env[0][0]:
            total -= W_ENVELOPE
    return total, tuple(matched)


def _nearest(starts: list[float], expected: float, limit: int) -> list[int]:
    """Indices of up to `limit` sessions starting closest to `expected`, within the window."""
    right = bisect.bisect_left(starts, expected)
    left = right - 1
    found: list[int] = []
    while len(found) < limit:
        go_left = left >= 0 and expected - starts[left] <= WINDOW_S
        go_right = right < len(starts) and starts[right] - expected <= WINDOW_S
        if go_left and (not go_right or expected - starts[left] <= starts[right] - expected):
            found.append(left)
            left -= 1
        elif go_right:
            found.append(right)
            right += 1
        else:
            break
    return found


def pair_sessions(
    client: Sequence[SmtpSession], server: Sequence[SmtpSession], clock: ClockEstimate
) -> Pairing:
    """Greedy one-to-one assignment of the best-scoring candidate pairs.

    Each client-side session is scored against the server-side sessions that share its TCP
    timestamp or a Message-ID, and against the `NEAREST` closest in time: linear work even with
    thousands of concurrent sessions between the same two hosts.
    """
    reference = client[0].start_ts if client else 0.0
    ordered = sorted(server, key=lambda s: s.start_ts)
    starts = [s.start_ts for s in ordered]
    by_tsval: dict[int, list[int]] = defaultdict(list)
    by_message_id: dict[str, list[int]] = defaultdict(list)
    for si, s in enumerate(ordered):
        if s.flow.client_tsval is not None:
            by_tsval[s.flow.client_tsval].append(si)
        for mid in _message_ids(s):
            by_message_id[mid].append(si)
    candidates: list[tuple[float, int, int, tuple[str, ...], float]] = []
    for ci, c in enumerate(client):
        expected = c.start_ts + clock.at(c.start_ts, reference)
        indices = set(_nearest(starts, expected, NEAREST))
        if c.flow.client_tsval is not None:
            indices.update(by_tsval.get(c.flow.client_tsval, ()))
        for mid in _message_ids(c):
            indices.update(by_message_id.get(mid, ()))
        for si in indices:
            delta = starts[si] - expected
            if abs(delta) > WINDOW_S:
                continue
            value, matched = score(c, ordered[si], delta, clock.at(c.start_ts, reference))
            if value >= MIN_SCORE:
                candidates.append((value, ci, si, matched, delta))
    candidates.sort(key=lambda c: (-c[0], abs(c[4]), c[1], c[2]))
    used_c: set[int] = set()
    used_s: set[int] = set()
    pairs: list[SessionPair] = []
    for value, ci, si, matched, delta in candidates:
        if ci in used_c or si in used_s:
            continue
        used_c.add(ci)
        used_s.add(si)
        pairs.append(SessionPair(client[ci], ordered[si], round(value, 3), matched, delta))
    pairs.sort(key=lambda p: (p.client_side.start_ts, p.client_side.flow.index))
    return Pairing(
        pairs=tuple(pairs),
        client_only=tuple(c for i, c in enumerate(client) if i not in used_c),
        server_only=tuple(s for i, s in enumerate(ordered) if i not in used_s),
    )
