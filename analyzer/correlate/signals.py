"""What one SMTP session shows that a middlebox leaves alone, and how two sessions compare on it.

A `Profile` is taken once per session: start time, per-direction stream lengths, EHLO name,
envelope, Message-IDs, the client's first TCP timestamp value, the IP-IDs of each direction's
first packets, the client SYN's layout (window, window scale, timestamp option) and the capture
times of the first commands and replies. The comparisons here (`ip_ids_shared`, `rhythm`,
`same_tail`, …) are pure functions of two profiles or sessions; weighing them into a score and
choosing pairs is `match`'s job, estimating the clock `clock`'s.

Not every signal proves identity. The client's TSval, its IP-ID sequence and the ciphertext at
the end of a stream belong to one connection (`IDENTITY_SIGNALS`); lengths, names, envelope and
the SYN layout are the same for every connection one host makes with one message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analyzer._common import Direction
from analyzer.session.model import SmtpSession

RHYTHM_LINES = 12
"""Commands and replies, from the first, whose capture times are compared."""
IPID_MIN_SHARED = 3
"""IP-ID values two sequences must share to be one connection's. IPv4 gives every packet of a
connection in flight its own 16-bit identification (RFC 6864 §4.1 for atomic datagrams is loose
about it, but stacks in use count per connection or per host); three equal values among the
first packets of two different connections happen by chance with odds below 1e-9."""
TAIL_BYTES = 64
"""The last bytes of a direction: after STARTTLS they are ciphertext, unique to one connection
and never touched by the box."""

IDENTITY_SIGNALS = frozenset({"tcp_timestamp", "ip_id", "stream_tail"})
"""Features (`SessionPair.matched_on`) that belong to one connection and no other."""


@dataclass(frozen=True, slots=True)
class Profile:
    """The pairing signals of one session, computed once."""

    start: float
    c2s_length: int
    s2c_length: int
    helo: str | None
    message_ids: frozenset[str]
    envelope: tuple[tuple[str | None, tuple[str, ...]], ...]
    tsval: int | None
    """The client's first TSval, when the handshake was captured (so it is the SYN's)."""
    ip_ids: tuple[frozenset[int], frozenset[int]]
    """IP-IDs of the first packets client to server and server to client; empty when the
    values carry no identity (IPv6, all zero or constant)."""
    syn_layout: tuple[int | None, int | None, bool] | None
    """Client SYN: window field, window scale, TCP timestamps on; None without a SYN."""
    line_dirs: tuple[Direction, ...]
    line_times: tuple[float, ...]
    """Capture times of the first `RHYTHM_LINES` commands and replies."""


def stream_lengths(session: SmtpSession) -> tuple[int, int]:
    """Bytes of each direction (client to server, server to client), holes included."""
    c2s, s2c = session.stats.client_to_server, session.stats.server_to_client
    return c2s.bytes + c2s.gap_bytes, s2c.bytes + s2c.gap_bytes


def _informative(values: Sequence[int]) -> frozenset[int]:
    distinct = frozenset(values) - {0}
    return distinct if len(distinct) >= IPID_MIN_SHARED else frozenset()


def profile(session: SmtpSession) -> Profile:
    flow, stats = session.flow, session.stats
    c2s, s2c = stream_lengths(session)
    lines = session.lines[:RHYTHM_LINES]
    layout: tuple[int | None, int | None, bool] | None = None
    if flow.handshake_seen:
        layout = (flow.syn_window[0], flow.wscale[0], flow.client_tsval is not None)
    return Profile(
        start=session.start_ts,
        c2s_length=c2s,
        s2c_length=s2c,
        helo=session.helo,
        message_ids=frozenset(t.message_id for t in session.transactions if t.message_id),
        envelope=tuple((t.mail_from, t.rcpt_to) for t in session.transactions),
        tsval=flow.client_tsval if flow.handshake_seen else None,
        ip_ids=(
            _informative(stats.client_to_server.ip_ids),
            _informative(stats.server_to_client.ip_ids),
        ),
        syn_layout=layout,
        line_dirs=tuple(line.direction for line in lines),
        line_times=tuple(line.ts for line in lines),
    )


def ip_ids_shared(client: Profile, server: Profile) -> bool | None:
    """True when either direction's IP-ID sequences share `IPID_MIN_SHARED` values, False when
    both captures have informative sequences that share none, None when they cannot tell."""
    told = False
    for a, b in zip(client.ip_ids, server.ip_ids, strict=True):
        if not a or not b:
            continue
        told = True
        if len(a & b) >= IPID_MIN_SHARED:
            return True
    return False if told else None


def rhythm(client: Profile, server: Profile) -> tuple[float, float] | None:
    """(spread, delta): how the two sessions' line times differ, with no clock estimate.

    For the same connection, each command and reply is seen in both captures a transit time
    apart, so `server time - client time` is the same for every line up to the box's delay:
    `delta` is its median (the clock offset plus transit) and `spread` the median absolute
    deviation from it. Sessions that look alike in every other way (a list run) still differ in
    when each of their lines crossed, so their spread is the variation of the server's think
    times. None when fewer than three lines pair up by position and direction.
    """
    diffs = [
        s - c
        for cd, c, sd, s in zip(
            client.line_dirs, client.line_times, server.line_dirs, server.line_times, strict=False
        )
        if cd is sd
    ]
    if len(diffs) < 3:
        return None
    diffs.sort()
    delta = diffs[len(diffs) // 2]
    spread = sorted(abs(d - delta) for d in diffs)[len(diffs) // 2]
    return spread, delta


def same_tail(client: SmtpSession, server: SmtpSession) -> bool:
    """Both captures end a direction with the same bytes, where those bytes are ciphertext
    (after TLS started): cleartext tails repeat across sessions of one list run."""
    if client.streams is None or server.streams is None:
        return False
    if not (client.starttls.established and server.starttls.established):
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


def lengths_close(a: int, b: int) -> bool:
    """Lengths a token-removing proxy could have made of one another (within 5% or 64 bytes)."""
    return a > 0 and b > 0 and abs(a - b) <= max(64, 0.05 * max(a, b))
