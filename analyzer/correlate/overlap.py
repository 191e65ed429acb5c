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
produce (`SessionPair.corroborated`; the one rule is `match._corroborated`: the client's TCP
timestamp or IP-ID sequence, equal tails of TLS ciphertext, a Message-ID one session on each
side carries, or a plausible clock offset many pairs agree on). Sessions that merely look alike
(a monitoring probe's identical `HELO`/`QUIT` dialogue, the same EHLO name and sizes) pair up
between unrelated captures and corroborate nothing. This module does not
read files and decides no finding's confidence (the pipeline caps it on this verdict).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from analyzer._common import CaptureSide
from analyzer.session.model import SmtpSession

from .clock import ClockEstimate
from .match import MANY_AGREEING_PAIRS, PLAUSIBLE_SKEW_S, SessionPair


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


def corroborated_pairs(pairs: Sequence[SessionPair]) -> tuple[SessionPair, ...]:
    """The pairs shown to be one connection (`SessionPair.corroborated`: one rule, in `match`)."""
    return tuple(p for p in pairs if p.corroborated)


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
        corroborated = corroborated_pairs(pairs)
    proven = len(corroborated)
    if not client and not server:
        return Overlap(OverlapKind.OVERLAP, 0, 0, ())
    apart = _apart(client_span, server_span)
    if proven:
        return Overlap(OverlapKind.OVERLAP, proven, len(pairs), ())
    reasons: list[str] = []
    if not client or not server:
        empty = CaptureSide.CLIENT_SIDE if not client else CaptureSide.SERVER_SIDE
        reasons.append(f"the {empty} capture holds no SMTP session, so nothing can be compared")
        return Overlap(OverlapKind.NO_OVERLAP, 0, 0, tuple(reasons))
    if not pairs:
        reasons.append(
            f"none of the {len(client)} client-side and {len(server)} server-side SMTP "
            "sessions pairs with a session of the other capture"
        )
        return Overlap(OverlapKind.NO_OVERLAP, 0, 0, tuple(reasons))
    if apart is not None and apart > PLAUSIBLE_SKEW_S and clock.method != "given":
        reasons.append(
            f"the captures were taken {_duration(apart)} apart, more than two capture hosts' "
            f"clocks disagree ({_duration(PLAUSIBLE_SKEW_S)} at most), and no session "
            "pair is corroborated by a TCP timestamp or TLS bytes"
        )
        return Overlap(OverlapKind.NO_OVERLAP, 0, len(pairs), tuple(reasons))
    reasons.append(
        f"{len(pairs)} session pair(s) look alike, but none is corroborated by the client's TCP "
        "timestamp, by TLS bytes both sides hold, by a Message-ID only they carry, or by a "
        "clock offset that "
        f"{MANY_AGREEING_PAIRS} or more pairs agree on"
    )
    if abs(clock.offset_s) > PLAUSIBLE_SKEW_S:
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
