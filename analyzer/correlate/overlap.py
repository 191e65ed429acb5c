"""Whether two captures saw the same traffic at all: the overlap verdict of a two-sided run.

A two-sided analysis proves something only where the two captures hold the same connections.
An operator can give two captures that do not: two unrelated files (another day, another
pair), or the same traffic twice (one file given for both sides, or a copy of it). This module
says which of these the sessions show:

- `same_traffic`: every session of one capture appears in the other with the same addresses,
  ports, start time and byte counts (a packet seen on two sides of a middlebox is never
  timestamped identically on both): the same capture twice;
- `judge_overlap`: `overlap` when at least one pair is corroborated, `unproven_overlap` when
  sessions pair up but none is corroborated, `no_overlap` when nothing pairs or the captures'
  time spans are further apart than any plausible clock offset.

A pair is corroborated by something that a coincidence between unrelated connections does not
produce: the client's TCP timestamp value (RFC 7323 TSval, 32 bits, which a middlebox that
forwards the connection leaves alone), equal stream tails of TLS ciphertext (unique to one
connection), a Message-ID that one session on each side carries (RFC 5322 §3.6.4: globally
unique) under a clock offset of at most `MESSAGE_ID_OFFSET_S`, or a clock offset of at most
`MAX_PLAUSIBLE_OFFSET_S` on which at least `MIN_AGREEING_PAIRS` pairs agree. Sessions that
merely look alike (a monitoring probe's identical `HELO`/`QUIT` dialogue, the same EHLO name
and sizes) pair up between unrelated captures and corroborate nothing. This module does not
read files and decides no finding's confidence (the pipeline caps it on this verdict).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from analyzer.session.model import SmtpSession

from .clock import ClockEstimate
from .match import SessionPair

MAX_PLAUSIBLE_OFFSET_S: Final = 600.0
"""Two capture hosts' clocks disagree by seconds, at worst minutes (no NTP). An offset beyond
ten minutes, estimated from look-alike sessions only, is two unrelated captures."""
MIN_AGREEING_PAIRS: Final = 10
"""Pairs that must agree on a plausible clock offset before the offset alone corroborates them:
a handful of look-alike sessions can line up by chance, ten cannot."""
MESSAGE_ID_OFFSET_S: Final = 900.0
"""The largest clock offset under which a Message-ID that one session on each side carries
corroborates their pair. The same message retried by the sender's queue (Postfix retries after
300 s, then doubling) in a capture of other minutes carries the same Message-ID: the bound keeps
another day's attempt from corroborating, not a retry minutes away, which only a TCP timestamp
tells apart."""
AGREEMENT_S: Final = 1.0
"""How far (seconds) a pair's start may be from the estimated offset and still agree with it."""


class OverlapKind(enum.StrEnum):
    """The overlap verdict's kinds (report.json `verdict.kind` for the two non-proven ones)."""

    OVERLAP = "overlap"
    UNPROVEN_OVERLAP = "unproven_overlap"
    NO_OVERLAP = "no_overlap"


@dataclass(frozen=True, slots=True)
class Overlap:
    """How far two captures are shown to hold the same connections."""

    kind: OverlapKind
    corroborated: int
    """Pairs corroborated by a TSval, a TLS tail, a unique Message-ID or an agreed offset."""
    pairs: int
    reasons: tuple[str, ...]
    """Plain sentences saying why, for the report."""

    @property
    def proven(self) -> bool:
        return self.kind is OverlapKind.OVERLAP


def _tls_tail(pair: SessionPair) -> bool:
    """Equal stream tails, where the tail is TLS ciphertext on both sides."""
    return (
        "stream_tail" in pair.matched_on
        and any(pair.client_side.tls_bytes)
        and any(pair.server_side.tls_bytes)
    )


def _clock_agrees(pairs: Sequence[SessionPair], clock: ClockEstimate) -> bool:
    """The clock offset is plausible and at least `MIN_AGREEING_PAIRS` pairs agree on it."""
    if clock.method == "given":
        return False
    if abs(clock.offset_s) > MAX_PLAUSIBLE_OFFSET_S:
        return False
    agreeing = sum(1 for p in pairs if abs(p.time_delta_s) <= AGREEMENT_S)
    return agreeing >= MIN_AGREEING_PAIRS


def _message_ids(sessions: Sequence[SmtpSession]) -> Counter[str]:
    return Counter(t.message_id for s in sessions for t in s.transactions if t.message_id)


def _unique_message_id(
    pair: SessionPair, clock: ClockEstimate, client_ids: Counter[str], server_ids: Counter[str]
) -> bool:
    """The pair shares a Message-ID that no other session of either capture carries, and the
    clock offset is plausible."""
    if "message_id" not in pair.matched_on or abs(clock.offset_s) > MESSAGE_ID_OFFSET_S:
        return False
    shared = {t.message_id for t in pair.client_side.transactions if t.message_id} & {
        t.message_id for t in pair.server_side.transactions if t.message_id
    }
    return any(client_ids[m] == 1 and server_ids[m] == 1 for m in shared)


def corroborated_pairs(
    pairs: Sequence[SessionPair],
    clock: ClockEstimate,
    client: Sequence[SmtpSession] = (),
    server: Sequence[SmtpSession] = (),
) -> tuple[SessionPair, ...]:
    """The pairs shown to be one connection (see the module docstring); `client` and `server`
    are every session of each capture, for the uniqueness of Message-IDs."""
    agrees = _clock_agrees(pairs, clock)
    client_ids, server_ids = _message_ids(client), _message_ids(server)
    return tuple(
        p
        for p in pairs
        if "tcp_timestamp" in p.matched_on
        or _tls_tail(p)
        or _unique_message_id(p, clock, client_ids, server_ids)
        or (agrees and abs(p.time_delta_s) <= AGREEMENT_S)
    )


def _key(session: SmtpSession) -> tuple[object, ...]:
    stats = session.stats
    return (
        session.flow.client,
        session.flow.server,
        round(session.start_ts, 6),
        stats.client_to_server.bytes,
        stats.server_to_client.bytes,
    )


def same_traffic(client: Sequence[SmtpSession], server: Sequence[SmtpSession]) -> bool:
    """Both captures hold the same sessions, to the microsecond: one capture given twice."""
    if not client or len(client) != len(server):
        return False
    return sorted(map(_key, client), key=repr) == sorted(map(_key, server), key=repr)


def _apart(
    client_span: tuple[float, float] | None, server_span: tuple[float, float] | None
) -> float | None:
    """Seconds between the two captures' time spans (0 when they intersect)."""
    if client_span is None or server_span is None:
        return None
    return max(0.0, client_span[0] - server_span[1], server_span[0] - client_span[1])


def judge_overlap(
    client: Sequence[SmtpSession],
    server: Sequence[SmtpSession],
    pairs: Sequence[SessionPair],
    clock: ClockEstimate,
    client_span: tuple[float, float] | None,
    server_span: tuple[float, float] | None,
    corroborated: Sequence[SessionPair] | None = None,
) -> Overlap:
    """The overlap verdict of two captures, from their sessions and pairs.

    `corroborated` are the pairs known to be one connection (by default `corroborated_pairs`).
    The spans are the captures' first and last packet times on their own clocks.
    """
    if corroborated is None:
        corroborated = corroborated_pairs(pairs, clock, client, server)
    proven = len(corroborated)
    if not client and not server:
        return Overlap(OverlapKind.OVERLAP, 0, 0, ())
    apart = _apart(client_span, server_span)
    if proven:
        return Overlap(OverlapKind.OVERLAP, proven, len(pairs), ())
    reasons: list[str] = []
    if not client or not server:
        empty = "client-side" if not client else "server-side"
        reasons.append(f"the {empty} capture holds no SMTP session, so nothing can be compared")
        return Overlap(OverlapKind.NO_OVERLAP, 0, 0, tuple(reasons))
    if not pairs:
        reasons.append(
            f"none of the {len(client)} client-side and {len(server)} server-side SMTP "
            "sessions pairs with a session of the other capture"
        )
        return Overlap(OverlapKind.NO_OVERLAP, 0, 0, tuple(reasons))
    if apart is not None and apart > MAX_PLAUSIBLE_OFFSET_S and clock.method != "given":
        reasons.append(
            f"the captures were taken {_duration(apart)} apart, more than two capture hosts' "
            f"clocks disagree ({_duration(MAX_PLAUSIBLE_OFFSET_S)} at most), and no session "
            "pair is corroborated by a TCP timestamp or TLS bytes"
        )
        return Overlap(OverlapKind.NO_OVERLAP, 0, len(pairs), tuple(reasons))
    reasons.append(
        f"{len(pairs)} session pair(s) look alike, but none is corroborated by the client's TCP "
        "timestamp, by TLS bytes both sides hold, by a Message-ID only they carry, or by a "
        "clock offset that "
        f"{MIN_AGREEING_PAIRS} or more pairs agree on"
    )
    if abs(clock.offset_s) > MAX_PLAUSIBLE_OFFSET_S:
        reasons.append(
            f"the clock offset they imply ({clock.offset_s:+.1f} s) is more than two capture "
            "hosts' clocks usually disagree"
        )
    return Overlap(OverlapKind.UNPROVEN_OVERLAP, 0, len(pairs), tuple(reasons))


def _duration(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} s"
