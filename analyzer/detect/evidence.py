"""Evidence: the packets a user can open to check a finding, built from sessions and pairs.

What it does: turns a place in a capture (a frame, a line, a divergence seen on both sides) into
`Evidence`, and names the sessions a pair's finding is about.
What it does not do: decide anything (detectors do), or escape text (renderers do).
"""

from __future__ import annotations

from analyzer._common import Direction, FrameRef
from analyzer.correlate import Divergence, PairAlignment
from analyzer.session.model import Line, SmtpSession

from .base import Evidence


def evidence(
    session: SmtpSession,
    frame: FrameRef | None,
    ts: float | None,
    direction: Direction | None,
    excerpt: str,
    note: str = "",
) -> Evidence:
    return Evidence(
        capture=session.capture_id,
        frame=frame,
        ts=ts,
        direction=direction,
        excerpt=excerpt,
        note=note,
    )


def line_evidence(session: SmtpSession, line: Line, note: str = "") -> Evidence:
    return evidence(session, line.frame, line.ts, line.direction, line.text, note)


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def pair_ids(al: PairAlignment) -> tuple[str, ...]:
    """The sessions a two-sided finding is about: client side first."""
    return (al.pair.client_side.id, al.pair.server_side.id)


def sent_and_received(
    al: PairAlignment, d: Divergence, sent_text: str, received_text: str
) -> tuple[Evidence, Evidence]:
    """Evidence of one divergence from both captures, sender's side first."""
    client, server = al.pair.client_side, al.pair.server_side
    sender, receiver = (
        (client, server) if d.direction is Direction.CLIENT_TO_SERVER else (server, client)
    )
    return (
        evidence(sender, d.sent_frame, d.sent_ts, d.direction, sent_text, "as sent"),
        evidence(
            receiver, d.received_frame, d.received_ts, d.direction, received_text, "as received"
        ),
    )
