"""Pair the sessions of a client-side capture with those of a server-side capture.

Addresses, ports and sequence numbers change across a NAT firewall, so five-tuples are never
used alone. What survives the box is scored (`signals`): start time after the clock offset,
the rhythm of each session's commands and replies, the client's TCP timestamp value, the IPv4
IP-ID sequences, equal TLS ciphertext tails, per-direction byte counts (in-place masking keeps
lengths), the client SYN's layout, EHLO name, envelope and Message-IDs. Pairs are then chosen as
one global minimum-cost assignment (`assign`): the set of one-to-one pairs with the greatest
total score, so that one session taking a look-alike's partner cannot leave that look-alike
with a wrong one. Each pair says how sure it is:

- `margin`: its score less the best alternative either of its sessions had (another candidate
  partner, or staying unpaired at `MIN_SCORE`); `ambiguous` when below `AMBIGUOUS_MARGIN`,
  unless the only alternative is staying unpaired and the pair is corroborated;
- `corroborated`: shown to be one connection, by a connection-identity signal (client TSval,
  client or server IP-ID sequence, TLS ciphertext tail), by a Message-ID one session in each
  capture carries (|offset| <= `MESSAGE_ID_OFFSET_S`), or by a clock that is plausible
  (|offset| <= `PLAUSIBLE_SKEW_S`), that the pair agrees with, and that either identity
  signals gave or `MANY_AGREEING_PAIRS` pairs agree on. The overlap verdict uses this rule.

Findings of a pair that is ambiguous or not corroborated are capped at `likely` (`detect`).
This module does not compare payload bytes (see `align`) nor estimate the clock (`clock`).
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from analyzer.session.model import SmtpSession

from .assign import assign
from .clock import IDENTITY_METHODS, ClockEstimate
from .signals import (
    IDENTITY_SIGNALS,
    Profile,
    ip_ids_shared,
    lengths_close,
    profile,
    rhythm,
    same_tail,
)

WINDOW_S = 30.0
"""Candidates must start within this many seconds of each other once the offset is applied."""
NEAREST = 48
"""Closest-in-time candidates scored per session, besides exact TSval/IP-ID/Message-ID matches."""
MIN_SCORE = 4.0
"""Below this a candidate is not a pair: the sessions are reported unmatched instead."""

# Feature weights: a feature that a firewall cannot change weighs most.
W_TSVAL = 10.0
W_IP_ID = 10.0
W_MESSAGE_ID = 6.0
W_LENGTH = 3.0
W_LENGTH_CLOSE = 1.0
W_HELO = 2.0
W_ENVELOPE = 2.0
W_SYN_LAYOUT = 1.0
W_TIME = 4.0
TIME_SCALE_S = 0.5
"""A start-time difference of this many seconds halves the time score."""
W_RHYTHM = 4.0
RHYTHM_SCALE_S = 0.01
"""The dialogue's rhythm (`signals.rhythm`): a spread of this many seconds between the two
sides' line times halves the rhythm score. Sessions that look alike in every other way (a list
run) still differ in when each of their lines crossed."""
W_TAIL = 6.0

AMBIGUOUS_MARGIN: Final = 1.0
"""A pair whose score beats the best alternative of either session by less than this is
ambiguous: a quarter of what exact start-time agreement alone scores, less than any single
content feature. Two sessions that differ only by jitter in their start times are ambiguous."""
PLAUSIBLE_SKEW_S: Final = 600.0
"""Two capture hosts' clocks disagree by seconds, at worst minutes (no NTP): an offset beyond
ten minutes is not trusted to corroborate a pair (the same message retried a day later)."""
MANY_AGREEING_PAIRS: Final = 10
"""Pairs that must agree on a plausible offset before it corroborates them: a handful of
look-alike sessions can line up by chance, ten cannot."""
AGREEMENT_S: Final = 1.0
"""How far (seconds) a pair's start may be from the estimated offset and still agree with it."""
MESSAGE_ID_OFFSET_S: Final = 900.0
"""The largest clock offset under which a Message-ID that one session on each side carries
corroborates their pair. The same message retried by the sender's queue (Postfix retries after
300 s, then doubling) in a capture of other minutes carries the same Message-ID: the bound keeps
another day's attempt from corroborating, not a retry minutes away, which only a TCP timestamp
tells apart."""


@dataclass(frozen=True, slots=True)
class SessionPair:
    """The same SMTP connection seen in both captures."""

    client_side: SmtpSession
    server_side: SmtpSession
    score: float
    matched_on: tuple[str, ...]
    """Features that agreed ('tcp_timestamp', 'ip_id', 'message_id', 'c2s_length', …)."""
    time_delta_s: float
    """Server-side start minus client-side start, minus the estimated clock offset."""
    margin: float = 0.0
    """Score less the best alternative of either session (another partner, or `MIN_SCORE`)."""
    ambiguous: bool = False
    """`margin` below `AMBIGUOUS_MARGIN`: another pairing is nearly as good."""
    corroborated: bool = False
    """Shown to be one connection (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class Pairing:
    pairs: tuple[SessionPair, ...]
    client_only: tuple[SmtpSession, ...]
    server_only: tuple[SmtpSession, ...]


def _score(
    client: Profile, server: Profile, cs: SmtpSession, ss: SmtpSession, delta_s: float
) -> tuple[float, tuple[str, ...]]:
    total = W_TIME * TIME_SCALE_S / (TIME_SCALE_S + abs(delta_s))
    matched: list[str] = []
    beat = rhythm(client, server)
    if beat is not None:
        spread = beat[0]
        total += W_RHYTHM * RHYTHM_SCALE_S / (RHYTHM_SCALE_S + spread)
        if spread < RHYTHM_SCALE_S:
            matched.append("rhythm")
    if client.tsval is not None and server.tsval is not None:
        if client.tsval == server.tsval:
            total += W_TSVAL
            matched.append("tcp_timestamp")
        else:
            total -= W_TSVAL
    if ip_ids_shared(client, server):
        total += W_IP_ID
        matched.append("ip_id")
    if same_tail(cs, ss):
        total += W_TAIL
        matched.append("stream_tail")
    for name, a, b in (
        ("c2s_length", client.c2s_length, server.c2s_length),
        ("s2c_length", client.s2c_length, server.s2c_length),
    ):
        if a == b and a > 0:
            total += W_LENGTH
            matched.append(name)
        elif lengths_close(a, b):
            total += W_LENGTH_CLOSE
    if client.syn_layout is not None and client.syn_layout == server.syn_layout:
        total += W_SYN_LAYOUT
        matched.append("syn_layout")
    if client.helo is not None and server.helo is not None:
        if client.helo == server.helo:
            total += W_HELO
            matched.append("helo")
        else:
            total -= W_HELO
    if client.message_ids and server.message_ids:
        if client.message_ids & server.message_ids:
            total += W_MESSAGE_ID
            matched.append("message_id")
        else:
            total -= W_MESSAGE_ID
    if client.envelope and server.envelope:
        if client.envelope == server.envelope:
            total += W_ENVELOPE
            matched.append("envelope")
        elif client.envelope[0][0] != server.envelope[0][0]:
            total -= W_ENVELOPE
    return total, tuple(matched)


def score(
    client: SmtpSession, server: SmtpSession, delta_s: float, offset_s: float = 0.0
) -> tuple[float, tuple[str, ...]]:
    """How strongly two sessions look like one connection, and which features agreed
    (`offset_s` is not needed any more: the rhythm is measured without a clock)."""
    return _score(profile(client), profile(server), client, server, delta_s)


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


Candidate = tuple[float, tuple[str, ...], float]
"""(score, matched features, time delta) of one client-side / server-side pairing."""


def _candidates(
    client: Sequence[SmtpSession],
    cp: Sequence[Profile],
    ordered: Sequence[SmtpSession],
    sp: Sequence[Profile],
    clock: ClockEstimate,
) -> dict[tuple[int, int], Candidate]:
    """Every scored candidate, keyed by (client index, server index in `ordered`).

    Each client-side session is scored against the server-side sessions that share its TSval,
    an IP-ID or a Message-ID few sessions carry, and against the `NEAREST` closest in time:
    linear work even with thousands of concurrent sessions between the same two hosts.
    """
    reference = client[0].start_ts if client else 0.0
    starts = [p.start for p in sp]
    by_tsval: dict[int, list[int]] = defaultdict(list)
    by_ip_id: dict[int, list[int]] = defaultdict(list)
    by_message_id: dict[str, list[int]] = defaultdict(list)
    for si, p in enumerate(sp):
        if p.tsval is not None:
            by_tsval[p.tsval].append(si)
        for ip_id in p.ip_ids[0]:
            by_ip_id[ip_id].append(si)
        for mid in p.message_ids:
            by_message_id[mid].append(si)
    found: dict[tuple[int, int], Candidate] = {}
    for ci, c in enumerate(cp):
        expected = c.start + clock.at(c.start, reference)
        indices = set(_nearest(starts, expected, NEAREST))
        if c.tsval is not None:
            indices.update(by_tsval.get(c.tsval, ()))
        for ip_id in c.ip_ids[0]:
            indices.update(by_ip_id.get(ip_id, ()))
        for mid in c.message_ids:
            carriers = by_message_id.get(mid, ())
            if len(carriers) <= NEAREST:
                indices.update(carriers)
        for si in indices:
            delta = starts[si] - expected
            if abs(delta) > WINDOW_S:
                continue
            value, matched = _score(c, sp[si], client[ci], ordered[si], delta)
            found[ci, si] = (value, matched, delta)
    return found


def _identity(matched: tuple[str, ...], client: SmtpSession, server: SmtpSession) -> bool:
    """A signal that belongs to one connection and no other: the client's TSval, its IP-ID
    sequence, or equal tails of TLS ciphertext (a plaintext tail such as `221 Bye` is the same
    in every session and proves nothing)."""
    if "stream_tail" in matched and not (any(client.tls_bytes) and any(server.tls_bytes)):
        matched = tuple(m for m in matched if m != "stream_tail")
    return bool(IDENTITY_SIGNALS.intersection(matched))


def _corroborated(
    pair: tuple[SmtpSession, SmtpSession],
    profiles: tuple[Profile, Profile],
    matched: tuple[str, ...],
    delta: float,
    clock: ClockEstimate,
    agreeing: int,
    unique_ids: tuple[Counter[str], Counter[str]],
) -> bool:
    """The one rule that says a pair is shown to be one connection (DOMAIN.md: pairing)."""
    client, server = pair
    if _identity(matched, client, server):
        return True
    if "message_id" in matched and abs(clock.offset_s) <= MESSAGE_ID_OFFSET_S:
        shared = profiles[0].message_ids & profiles[1].message_ids
        if any(unique_ids[0][m] == 1 and unique_ids[1][m] == 1 for m in shared):
            return True
    if clock.method in ("given", "none") or abs(clock.offset_s) > PLAUSIBLE_SKEW_S:
        return False
    if abs(delta) > AGREEMENT_S:
        return False
    return clock.method in IDENTITY_METHODS or agreeing >= MANY_AGREEING_PAIRS


def pair_sessions(
    client: Sequence[SmtpSession], server: Sequence[SmtpSession], clock: ClockEstimate
) -> Pairing:
    """The global best one-to-one pairing, each pair with its margin and corroboration."""
    ordered = sorted(server, key=lambda s: s.start_ts)
    cp = [profile(s) for s in client]
    sp = [profile(s) for s in ordered]
    found = _candidates(client, cp, ordered, sp, clock)
    chosen = assign([(ci, si, v[0]) for (ci, si), v in found.items() if v[0] >= MIN_SCORE])
    # The best alternative of each session: its best candidate other than its partner.
    best_c: dict[int, list[tuple[float, int]]] = defaultdict(list)
    best_s: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for (ci, si), (value, _, _) in found.items():
        best_c[ci].append((value, si))
        best_s[si].append((value, ci))
    agreeing = sum(1 for ci, si in chosen if abs(found[ci, si][2]) <= AGREEMENT_S)
    unique_ids = (
        Counter(m for p in cp for m in p.message_ids),
        Counter(m for p in sp for m in p.message_ids),
    )
    pairs: list[SessionPair] = []
    for ci, si in chosen:
        value, matched, delta = found[ci, si]
        corroborated = _corroborated(
            (client[ci], ordered[si]), (cp[ci], sp[si]), matched, delta, clock, agreeing, unique_ids
        )
        partners = [v for v, other in best_c[ci] if other != si] + [
            v for v, other in best_s[si] if other != ci
        ]
        rival = max([*partners, MIN_SCORE])
        margin = round(value - rival, 3)
        # Ambiguity is a competing partner. A pair whose only rival is staying unpaired is no
        # less one connection for scoring little: whether it is one is corroboration's
        # question, and an uncorroborated pair is capped all the same.
        contested = rival > MIN_SCORE or not corroborated
        pairs.append(
            SessionPair(
                client[ci],
                ordered[si],
                round(value, 3),
                matched,
                delta,
                margin=margin,
                ambiguous=contested and margin < AMBIGUOUS_MARGIN,
                corroborated=corroborated,
            )
        )
    pairs.sort(key=lambda p: (p.client_side.start_ts, p.client_side.flow.index))
    used_c = {ci for ci, _ in chosen}
    used_s = {si for _, si in chosen}
    return Pairing(
        pairs=tuple(pairs),
        client_only=tuple(c for i, c in enumerate(client) if i not in used_c),
        server_only=tuple(s for i, s in enumerate(ordered) if i not in used_s),
    )
