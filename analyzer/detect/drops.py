"""Connections killed in the middle of a message: right after a DKIM/DomainKey signature header
(`reset_after_dkim_header`, the old PIX bug) or on a header line over 998 octets
(`header_line_too_long_drop`, the ASA's default policy).

What it does: from both captures, finds where in the message the server's copy of the stream
ends and which header was the last to cross (`two_sided`); from one capture, reads the same from
a reset in DATA with no error from the server before it (`one_sided`).
What it does not do: say whether the reset was forged (`resets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from analyzer._common import CaptureSide, Direction, FrameRef
from analyzer.correlate import DivergenceKind, PairAlignment
from analyzer.correlate.placement import Placed, transaction_at
from analyzer.flows.events import EndKind
from analyzer.session.model import HeaderField, MailTransaction, SmtpSession

from .base import Confidence, Evidence, Finding, FindingKind
from .evidence import evidence, pair_ids
from .kinds import finding
from .signatures import origin_differences

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT

HEADER_LINE_LIMIT: Final = 998
"""RFC 5322 §2.1.1: a header line must not exceed 998 characters without CRLF."""


def _crossed_headers(
    txn: MailTransaction, received_end: int
) -> tuple[list[HeaderField], HeaderField | None]:
    """Headers wholly received (by stream offset), and the first one that was cut or never came."""
    headers = txn.headers
    crossed: list[HeaderField] = []
    for i, header in enumerate(headers):
        end = headers[i + 1].offset if i + 1 < len(headers) else None
        last_byte = end if end is not None else header.offset + header.longest_line + 2
        if last_byte <= received_end:
            crossed.append(header)
        else:
            return crossed, header
    return crossed, None


def _last_frame(session: SmtpSession, received_end: int) -> FrameRef | None:
    """The client-side frame that carried the last byte the server received."""
    if session.streams is None:
        return None
    frame, _ = session.streams.client_to_server.frame_at(max(0, received_end - 1))
    return frame


def _server_header(server: SmtpSession, like: HeaderField) -> list[HeaderField]:
    for txn in server.transactions:
        for header in txn.headers:
            if header.offset == like.offset and header.name == like.name:
                return [header]
    return []


def _server_error_since(session: SmtpSession, txn: MailTransaction) -> bool:
    """The server answered with an error (4xx/5xx) during or after `txn`."""
    return any(
        line.direction is S2C
        and line.code is not None
        and line.code >= 400
        and line.ts >= txn.start_ts
        for line in session.lines
    )


def two_sided(
    al: PairAlignment, placed: Sequence[Placed], found: Sequence[Finding]
) -> list[Finding]:
    """What the connection was doing when the middlebox killed it (by a forged reset, or by
    dropping the rest of the client's stream)."""
    client, server = al.pair.client_side, al.pair.server_side
    forged = [m for m in al.end_mismatches if m.kind is EndKind.RST]
    truncated = [
        p.divergence
        for p in placed
        if p.divergence.direction is C2S and p.divergence.kind is DivergenceKind.TRUNCATION
    ]
    if not forged and not truncated:
        return []
    received_end = server.stats.client_to_server.bytes + server.stats.client_to_server.gap_bytes
    txn = transaction_at(client, received_end)
    if txn is None or (txn.complete and not truncated):
        return []
    crossed, cut = _crossed_headers(txn, received_end)
    killer = forged[0].end if forged else None
    last_frame, last_ts = (
        server.streams.client_to_server.frame_at(max(0, received_end - 1))
        if server.streams is not None
        else (None, None)
    )
    tail: list[Evidence] = [
        evidence(
            server,
            last_frame,
            last_ts,
            C2S,
            f"(client→server stream ends at byte {received_end})",
            "the last client bytes the server received",
        )
    ]
    if killer is not None:
        tail.append(
            evidence(
                client if forged[0].seen_in is CaptureSide.CLIENT_SIDE else server,
                killer.frame,
                killer.ts,
                forged[0].direction,
                "RST",
                "the reset",
            )
        )
    long_header = next(
        (h for h in txn.headers if h.longest_line > HEADER_LINE_LIMIT and h not in crossed), None
    )
    if long_header is not None:
        return [
            finding(
                FindingKind.HEADER_LINE_TOO_LONG_DROP,
                Confidence.CONFIRMED,
                pair_ids(al),
                "The connection was dropped in DATA when a "
                f"{long_header.longest_line}-octet "
                f"header line ({long_header.name}) reached the firewall; the server never got it "
                "and the message was not delivered.",
                (
                    evidence(
                        client,
                        long_header.frame,
                        long_header.ts,
                        C2S,
                        f"{long_header.name}: {long_header.value[:120]}",
                        f"header line of {long_header.longest_line} octets, as sent",
                    ),
                    *tail,
                ),
                {
                    "header": long_header.name,
                    "offset": long_header.offset,
                    "line_length": long_header.longest_line,
                    "received_bytes": received_end,
                },
            )
        ]
    last = crossed[-1] if crossed else None
    signature = next((h for h in reversed(crossed) if h.is_signature), None)
    if signature is None or last is None or not forged or _server_error_since(server, txn):
        return []
    # The box kills the connection when the segment holding the signature header passes:
    # the header is the last one that crossed, or sits in the last segment that crossed.
    at_end = signature is last or signature.frame == _last_frame(client, received_end)
    where = "right after" if signature is last else "just after"
    received_copy = _server_header(server, signature)
    return [
        finding(
            FindingKind.RESET_AFTER_DKIM_HEADER,
            Confidence.CONFIRMED if at_end else Confidence.LIKELY,
            pair_ids(al),
            f"The connection was reset in DATA {where} the {signature.name} header "
            f"crossed the firewall (stream offset {signature.offset}, longest line "
            f"{signature.longest_line} octets; the last header to cross was {last.name}); "
            "no error came from the server, the message was not delivered and will be retried.",
            (
                evidence(
                    client,
                    signature.frame,
                    signature.ts,
                    C2S,
                    f"{signature.name}: {signature.value[:120]}",
                    "the signature header as the client sent it",
                ),
                *[
                    evidence(
                        server,
                        h.last_frame or h.frame,
                        h.ts,
                        C2S,
                        f"{h.name}: {h.value[:120]}",
                        "the same header at the server",
                    )
                    for h in received_copy
                ],
                *tail,
            ),
            {
                "header": signature.name,
                "offset": signature.offset,
                "line_length": signature.longest_line,
                "last_header": last.name,
                "next_header": cut.name if cut else None,
            },
        )
    ]


def one_sided(session: SmtpSession) -> list[Finding]:
    """A reset in the middle of a message: after a signature header, or a too-long header line."""
    if not any(end.kind is EndKind.RST for end in session.ends):
        return []
    # A message without the server's final reply: cut in DATA (the client may have sent all of
    # it before the reset reached it, so the end-of-data mark alone proves nothing).
    txn = next(
        (
            t
            for t in reversed(session.transactions)
            if t.data_started and (not t.complete or t.reply_code is None)
        ),
        None,
    )
    if txn is None or not txn.headers:
        return []
    reset = next(end for end in session.ends if end.kind is EndKind.RST)
    server_error = _server_error_since(session, txn)
    foreign = bool(origin_differences(reset.origin, reset.usual_origin))
    reset_proof = evidence(
        session,
        reset.frame,
        reset.ts,
        reset.direction,
        "RST",
        f"TTL {reset.origin.ttl}"
        + (
            f", the sender's other packets TTL {reset.usual_origin.ttl}"
            if reset.usual_origin
            else ""
        ),
    )
    long_header = next((h for h in txn.headers if h.longest_line > HEADER_LINE_LIMIT), None)
    if long_header is not None:
        strong = (long_header is txn.headers[-1] or foreign) and not server_error
        return [
            finding(
                FindingKind.HEADER_LINE_TOO_LONG_DROP,
                Confidence.LIKELY if strong else Confidence.POSSIBLE,
                (session.id,),
                "The connection was reset in DATA after a "
                f"{long_header.longest_line}-octet "
                f"header line ({long_header.name}), over RFC 5322's 998.",
                (
                    evidence(
                        session,
                        long_header.frame,
                        long_header.ts,
                        C2S,
                        f"{long_header.name}: {long_header.value[:120]}",
                    ),
                    reset_proof,
                ),
                {"header": long_header.name, "line_length": long_header.longest_line},
            )
        ]
    if server_error:
        return []
    last = txn.headers[-1]
    if not last.complete:
        # The stream broke inside a header line: a box dropped the segment that carried the
        # rest of it. Too long a line is the known rule for that; the DKIM bug resets after a
        # complete header.
        return [
            finding(
                FindingKind.HEADER_LINE_TOO_LONG_DROP,
                Confidence.POSSIBLE,
                (session.id,),
                f"The connection was reset in DATA in the middle of the {last.name} "
                f"header line ({last.longest_line} octets arrived, no end of line): the rest was "
                "dropped on the way, as the ASA does with header lines over 998 octets.",
                (
                    evidence(
                        session,
                        last.frame,
                        last.ts,
                        C2S,
                        f"{last.name}: {last.value[:120]}",
                        "the cut header line",
                    ),
                    reset_proof,
                ),
                {"header": last.name, "line_length_seen": last.longest_line},
            )
        ]
    signature = (
        last
        if last.is_signature
        else next((h for h in reversed(txn.headers) if h.is_signature), None)
    )
    if signature is None:
        return []
    # Seen from the server, the last header that arrived is the one the box choked on; seen
    # from the client, the client may have sent more before the forged reset reached it.
    confidence = (
        Confidence.LIKELY
        if (signature is last and (foreign or reset.direction is S2C))
        or (signature is not last and foreign)
        else Confidence.POSSIBLE
    )
    where = "right after" if signature is last else "after"
    return [
        finding(
            FindingKind.RESET_AFTER_DKIM_HEADER,
            confidence,
            (session.id,),
            f"The connection was reset in DATA {where} the {signature.name} header "
            f"(stream offset {signature.offset}, longest line {signature.longest_line} octets), "
            "with no error from the server before it.",
            (
                evidence(
                    session,
                    signature.frame,
                    signature.ts,
                    C2S,
                    f"{signature.name}: {signature.value[:120]}",
                    "the signature header",
                ),
                reset_proof,
            ),
            {
                "header": signature.name,
                "offset": signature.offset,
                "line_length": signature.longest_line,
                "last_header": last.name,
            },
        )
    ]
