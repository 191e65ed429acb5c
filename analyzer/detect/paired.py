"""Two-sided detectors: what the middlebox did, proven by comparing both captures.

Each detector takes one aligned session pair and returns `confirmed` findings with evidence
from both captures. Divergences are first placed (banner, EHLO reply, command, header…) by
`place`, so that each detector reads like the rule it states.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from analyzer._common import Direction, FrameRef
from analyzer.correlate import Divergence, DivergenceKind, PairAlignment
from analyzer.flows.events import EndKind
from analyzer.session.model import HeaderField, Line, MailTransaction, SmtpSession

from . import remedies
from .base import Confidence, Evidence, Finding, FindingKind, Severity
from .locate import answered_verb, decode, evidence, line_at, line_evidence, transaction_at
from .signatures import ONE_CHAR_SEGMENT_SHARE, banner_is_masked, is_masked_keyword, is_masked_verb

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT

HEADER_LINE_LIMIT = 998
"""RFC 5322 §2.1.1: a header line must not exceed 998 characters without CRLF."""


class Place(enum.StrEnum):
    BANNER = "banner"
    EHLO_REPLY = "ehlo_reply"
    REPLY = "reply"
    COMMAND = "command"
    CREDENTIAL = "auth_credential"
    """An AUTH initial response or SASL response (compared by digest, never shown)."""
    MESSAGE = "message"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Placed:
    divergence: Divergence
    place: Place
    sent_line: Line | None
    received_line: Line | None


def place(al: PairAlignment) -> list[Placed]:
    """Where in the dialogue each divergence falls, on the sending and the receiving side."""
    client, server = al.pair.client_side, al.pair.server_side
    placed: list[Placed] = []
    for d in al.divergences:
        sender, receiver = (client, server) if d.direction is C2S else (server, client)
        if d.credential:
            placed.append(
                Placed(
                    d,
                    Place.CREDENTIAL,
                    _auth_line(sender, d.sent_offset),
                    _auth_line(receiver, d.received_offset),
                )
            )
            continue
        sent_line = line_at(sender, d.direction, d.sent_offset)
        received_line = line_at(receiver, d.direction, d.received_offset)
        if sent_line is None and _greeting_cut(d, sender, receiver, received_line):
            where = Place.BANNER
        elif sent_line is None:
            where = Place.MESSAGE if d.direction is C2S and _in_message(sender, d) else Place.OTHER
        elif d.direction is C2S:
            where = Place.COMMAND
        elif sent_line is _first_reply(sender) and sender.banner is not None:
            where = Place.BANNER
        elif answered_verb(sender, sent_line) == "EHLO":
            where = Place.EHLO_REPLY
        else:
            where = Place.REPLY
        placed.append(Placed(d, where, sent_line, received_line))
    return placed


def _greeting_cut(
    d: Divergence, sender: SmtpSession, receiver: SmtpSession, received_line: Line | None
) -> bool:
    """A difference in the greeting the sending side's capture holds only in part (a snaplen
    or a lost segment cut the line): placed by the receiving side's copy of the greeting."""
    return (
        d.direction is not C2S
        and sender.banner is None
        and receiver.banner is not None
        and received_line is not None
        and received_line is _first_reply(receiver)
    )


def _auth_line(session: SmtpSession, offset: int) -> Line | None:
    """The client's command line at or before client stream offset `offset`: for a credential,
    the AUTH command (as kept: verb and mechanism) that it answers or ends."""
    found = None
    for line in session.lines:
        if line.direction is C2S and line.offset <= offset:
            found = line
    return found


def _in_message(session: SmtpSession, d: Divergence) -> bool:
    return transaction_at(session, d.sent_offset) is not None


def _first_reply(session: SmtpSession) -> Line | None:
    return next((line for line in session.lines if line.direction is S2C), None)


def _ids(al: PairAlignment) -> tuple[str, ...]:
    return (al.pair.client_side.id, al.pair.server_side.id)


def _sent_and_received(
    al: PairAlignment, d: Divergence, sent_text: str, received_text: str
) -> tuple[Evidence, Evidence]:
    """Evidence of one divergence from both captures, sender's side first."""
    client, server = al.pair.client_side, al.pair.server_side
    sender, receiver = (client, server) if d.direction is C2S else (server, client)
    return (
        evidence(sender, d.sent_frame, d.sent_ts, d.direction, sent_text, "as sent"),
        evidence(
            receiver, d.received_frame, d.received_ts, d.direction, received_text, "as received"
        ),
    )


# -- banner ------------------------------------------------------------------------------------


def _first_line(text: str | None) -> str:
    return text.splitlines()[0] if text else ""


def _held_text(sent: bytes) -> str:
    text = sent.split(b"\r\n", 1)[0].decode("utf-8", "surrogateescape")
    return text[4:] if text[:3].isdigit() else text


GREETING_CODES: Final = (220, 554)
"""The replies a server may open a connection with (RFC 5321 §3.1, §4.2.3)."""


def banner(al: PairAlignment, placed: list[Placed]) -> list[Finding]:
    """The 220 greeting changed on its way: masked (obfuscated) or replaced (a proxy's own).

    Masked only by the device rule (`signatures.banner_is_masked`: mostly '*' or 'X'); any other
    different greeting is readable text the box wrote itself, as a full proxy greets the client
    with its own 220. A full proxy's own EHLO name on the server side is noted, not damage.
    """
    client, server = al.pair.client_side, al.pair.server_side
    if client.banner_code not in GREETING_CODES:
        return []  # a capture that began after the greeting holds no greeting to compare
    hits = [p for p in placed if p.place is Place.BANNER]
    if server.banner_code not in GREETING_CODES and not (hits and server.banner is None):
        return []
    # Where the server-side capture cut the greeting, what it holds of it is the original.
    original = server.banner or (_held_text(hits[0].divergence.sent) if hits else "")
    arrived = client.banner or ""
    if not hits or not original or not arrived or original == arrived:
        return []
    first = hits[0].divergence
    proof = _sent_and_received(al, first, original, arrived)
    if banner_is_masked(arrived):
        return [
            Finding(
                kind=FindingKind.BANNER_MASKED,
                severity=Severity.LOW,
                confidence=Confidence.CONFIRMED,
                sessions=_ids(al),
                summary=f"The server's 220 greeting was masked on its way to the client: "
                f"{_first_line(original)!r} arrived as {_first_line(arrived)!r}.",
                cause=remedies.CAUSE_BANNER,
                remediation="Usually harmless; if the greeting matters (some clients check it), "
                "add `no mask-banner` to the ESMTP inspection map's `parameters`.",
                evidence=proof,
                details={"original": original, "masked": arrived},
            )
        ]
    details: dict[str, object] = {"original": original, "replacement": arrived}
    if client.helo and server.helo and client.helo != server.helo:
        details["client_helo"] = client.helo
        details["helo_at_server"] = server.helo
    return [
        Finding(
            kind=FindingKind.BANNER_REPLACED,
            severity=Severity.LOW,
            confidence=Confidence.CONFIRMED,
            sessions=_ids(al),
            summary=f"The client was greeted by the middlebox, not the server: the server sent "
            f"{_first_line(original)!r}, the client received {_first_line(arrived)!r}"
            + (
                f" (the box introduced itself to the server as {server.helo!r})."
                if "helo_at_server" in details
                else "."
            ),
            cause=remedies.CAUSE_BANNER_REPLACED,
            remediation=remedies.BANNER_REPLACED,
            evidence=proof,
            details=details,
        )
    ]


# -- EHLO reply ----------------------------------------------------------------------------------


def _keyword(line: str) -> str:
    return line.split(" ", 1)[0].upper()


def _ehlo_reply_line(session: SmtpSession) -> Line | None:
    for line in session.lines:
        if line.direction is S2C and answered_verb(session, line) == "EHLO":
            return line
    return None


def _holds_ehlo_reply(session: SmtpSession) -> bool:
    """The capture holds the session's EHLO reply whole: seen, and no hole in the stream before
    the reply that follows it (a lost or snaplen-cut segment would drop keywords)."""
    reply = _ehlo_reply_line(session)
    if reply is None:
        return False
    if session.streams is None:
        return True
    record = session.streams.of(S2C)
    after = next(
        (
            line.offset
            for line in session.lines
            if line.direction is S2C and line.offset > reply.offset
        ),
        record.length,
    )
    return not any(offset < after for offset, _ in record.gaps)


def ehlo_keywords(al: PairAlignment, placed: list[Placed]) -> list[Finding]:
    """Keywords masked in place (same length) or removed between the server's EHLO reply and
    the one the client received, compared as sets of keywords whatever else the greeting did
    (a full proxy writes its own EHLO reply; order and case of keywords carry no meaning,
    RFC 5321 §2.4). Keywords a proxy adds of its own are not damage."""
    client, server = al.pair.client_side, al.pair.server_side
    if not (_holds_ehlo_reply(server) and _holds_ehlo_reply(client)):
        return []  # a capture does not hold the whole EHLO reply: nothing to compare
    sent_lines, received_lines = server.ehlo_lines, client.ehlo_lines
    masked: list[tuple[str, str]] = []
    received_keywords = {_keyword(line) for line in received_lines}
    if len(sent_lines) == len(received_lines):
        for sent, received in zip(sent_lines, received_lines, strict=True):
            a, b = _keyword(sent), _keyword(received)
            if a != b and len(a) == len(b) and is_masked_keyword(b) and a not in received_keywords:
                masked.append((a, b))
    masks = {m for _, m in masked}
    removed = [
        _keyword(line)
        for line in sent_lines
        if _keyword(line) not in received_keywords and _keyword(line) not in {o for o, _ in masked}
    ]
    removed = [k for k in removed if k not in masks]
    sent_line, received_line = _ehlo_reply_line(server), _ehlo_reply_line(client)
    proof: list[Evidence] = []
    if sent_line:
        proof.append(line_evidence(server, sent_line, "EHLO reply as the server sent it"))
    if received_line:
        proof.append(line_evidence(client, received_line, "EHLO reply as the client received it"))
    findings: list[Finding] = []
    if masked:
        names = ", ".join(f"{o}→{m}" for o, m in masked)
        starttls = any(o == "STARTTLS" for o, _ in masked)
        findings.append(
            Finding(
                kind=FindingKind.EHLO_KEYWORD_MASKED,
                severity=Severity.HIGH if starttls else Severity.MEDIUM,
                confidence=Confidence.CONFIRMED,
                sessions=_ids(al),
                summary=f"EHLO keyword(s) overwritten in place between server and client: {names}.",
                cause=remedies.CAUSE_KEYWORD_MASK,
                remediation=remedies.ASA_ALLOW_TLS,
                evidence=tuple(proof),
                details={"masked": [{"original": o, "mask": m} for o, m in masked]},
            )
        )
    if removed:
        findings.append(
            Finding(
                kind=FindingKind.EHLO_KEYWORD_REMOVED,
                severity=Severity.HIGH if "STARTTLS" in removed else Severity.MEDIUM,
                confidence=Confidence.CONFIRMED,
                sessions=_ids(al),
                summary="EHLO keyword(s) the server sent never reached the client: "
                + ", ".join(removed)
                + ".",
                cause=remedies.CAUSE_PROXY,
                remediation=remedies.PROXY,
                evidence=tuple(proof),
                details={"removed": removed},
            )
        )
    return findings


# -- commands ----------------------------------------------------------------------------------


_ARRIVED_CHANGED = frozenset({DivergenceKind.OVERWRITE, DivergenceKind.REPLACEMENT})
"""Divergences where other bytes arrived in place of the command; a removal (the command
never reached the server) is not a replacement by whatever the client sent next."""


def _typed_by_hand(session: SmtpSession) -> bool:
    stats = session.stats.client_to_server
    return stats.bytes > 0 and stats.payload_packets >= ONE_CHAR_SEGMENT_SHARE * stats.bytes


def commands(al: PairAlignment, placed: list[Placed]) -> list[Finding]:
    """Client commands overwritten with X's, replaced by another verb, or typed by hand."""
    client, server = al.pair.client_side, al.pair.server_side
    hits = [
        p
        for p in placed
        if p.place is Place.COMMAND
        and p.sent_line
        and p.received_line
        and p.divergence.kind in _ARRIVED_CHANGED
    ]
    if not hits:
        return []
    if _typed_by_hand(client):
        proof: list[Evidence] = []
        for p in hits[:4]:
            sent_text = p.sent_line.text if p.sent_line else ""
            received_text = p.received_line.text if p.received_line else ""
            proof.extend(_sent_and_received(al, p.divergence, sent_text, received_text))
        return [
            Finding(
                kind=FindingKind.INTERACTIVE_TEST_ARTEFACT,
                severity=Severity.INFO,
                confidence=Confidence.CONFIRMED,
                sessions=_ids(al),
                summary=f"{len(hits)} command(s) typed one character per segment were masked "
                "segment by segment; this session was a manual test, not real mail.",
                cause=remedies.CAUSE_INTERACTIVE,
                remediation=remedies.REMEDY_INTERACTIVE,
                evidence=tuple(proof),
                details={"commands": [p.sent_line.text for p in hits if p.sent_line]},
            )
        ]
    findings: list[Finding] = []
    seen: set[int] = set()
    for p in hits:
        sent, received = p.sent_line, p.received_line
        assert sent is not None and received is not None
        if sent.offset in seen:
            continue
        seen.add(sent.offset)
        original, arrived = sent.verb or "", received.verb or ""
        if original == arrived:
            continue  # arguments changed: reported as payload_modified
        proof_pair = _sent_and_received(al, p.divergence, sent.text, received.text)
        reply = _reply_to(server, received)
        extra = (line_evidence(server, reply, "the server's answer"),) if reply else ()
        if is_masked_verb(arrived):
            findings.append(
                Finding(
                    kind=FindingKind.COMMAND_MASKED,
                    severity=Severity.HIGH if original == "STARTTLS" else Severity.MEDIUM,
                    confidence=Confidence.CONFIRMED,
                    sessions=_ids(al),
                    summary=f"The client's {original} command reached the server as {arrived}"
                    + (f"; the server answered {reply.text!r}." if reply else "."),
                    cause=remedies.CAUSE_COMMAND_MASK,
                    remediation=remedies.ASA_ALLOW_TLS,
                    evidence=proof_pair + extra,
                    details={"original": original, "mask": arrived},
                )
            )
        else:
            findings.append(
                Finding(
                    kind=FindingKind.COMMAND_REPLACED,
                    severity=Severity.HIGH if original == "STARTTLS" else Severity.MEDIUM,
                    confidence=Confidence.CONFIRMED,
                    sessions=_ids(al),
                    summary=f"The client's {original} command reached the server as {arrived}"
                    + (f"; the server answered {reply.text!r}." if reply else "."),
                    cause=remedies.CAUSE_COMMAND_REPLACED,
                    remediation=remedies.NO_INSPECT,
                    evidence=proof_pair + extra,
                    details={"original": original, "replacement": arrived},
                )
            )
    return findings


def _reply_to(session: SmtpSession, command: Line) -> Line | None:
    try:
        index = session.lines.index(command)
    except ValueError:
        return None
    return next((line for line in session.lines if line.answers == index), None)


def _starttls_lines(session: SmtpSession) -> tuple[Line | None, Line | None]:
    for i, line in enumerate(session.lines):
        if line.verb == "STARTTLS":
            reply = next((r for r in session.lines if r.answers == i), None)
            return line, reply
    return None, None


# -- STARTTLS ----------------------------------------------------------------------------------


def starttls_rejected(al: PairAlignment, placed: list[Placed]) -> list[Finding]:
    """STARTTLS sent by the client and answered with something other than 220."""
    client, server = al.pair.client_side, al.pair.server_side
    tls = client.starttls
    if not tls.attempted or tls.reply_code in (None, 220):
        return []
    command, reply = _starttls_lines(client)
    if command is None or reply is None:
        return []
    # Did the server itself send this reply? It did if the server-side capture holds it as a
    # reply (to whatever the command became on the way).
    inserted = any(
        p.divergence.direction is S2C
        and p.divergence.kind in (DivergenceKind.INSERTION, DivergenceKind.REPLACEMENT)
        and p.received_line is reply
        for p in placed
    )
    server_reply = next(
        (
            line
            for line in server.lines
            if line.direction is S2C and line.offset == _received_offset(al, reply)
        ),
        None,
    )
    by = "middlebox" if inserted or server_reply is None else "server"
    server_command = line_at(server, C2S, command.offset) if by == "server" else None
    arrived = server_command.verb if server_command else None
    server_starttls, _ = _starttls_lines(server)
    reached = server_command is not None or server_starttls is not None
    proof = [
        line_evidence(client, command, "STARTTLS as the client sent it"),
        line_evidence(client, reply, "the reply the client got"),
    ]
    if not reached:
        proof.append(
            evidence(
                server,
                None,
                None,
                C2S,
                "(no STARTTLS or other command in its place)",
                "the server-side capture: the command never reached the server",
            )
        )
    if server_command:
        proof.append(line_evidence(server, server_command, "what reached the server"))
    if server_reply:
        proof.append(line_evidence(server, server_reply, "the reply as the server sent it"))
    how = (
        f"the server answered {reply.text!r} because the command reached it as {arrived}"
        if by == "server" and arrived and arrived != "STARTTLS"
        else f"the reply {reply.text!r} was generated by the middlebox, not the server"
        + ("; the command never reached the server" if not reached else "")
        if by == "middlebox"
        else f"the server answered {reply.text!r}"
    )
    return [
        Finding(
            kind=FindingKind.STARTTLS_REJECTED,
            severity=Severity.HIGH,
            confidence=Confidence.CONFIRMED,
            sessions=_ids(al),
            summary=f"STARTTLS was rejected: {how}.",
            cause=remedies.CAUSE_STARTTLS_REJECTED
            + (" " + remedies.CAUSE_COMMAND_MASK if arrived and arrived != "STARTTLS" else ""),
            remediation=remedies.ASA_ALLOW_TLS,
            evidence=tuple(proof),
            details={
                "reply_code": reply.code,
                "reply_text": reply.text,
                "replied_by": by,
                "command_arrived_as": arrived,
                "command_reached_server": reached,
            },
        )
    ]


def _received_offset(al: PairAlignment, client_reply: Line) -> int:
    """Where a reply the client received sits in the server's stream (shifted by removals)."""
    shift = 0
    for d in al.divergences:
        if d.direction is S2C and d.received_offset <= client_reply.offset:
            shift += d.sent_length - d.received_length
    return client_reply.offset + shift


def tls_downgrade(al: PairAlignment, found: list[Finding]) -> list[Finding]:
    """The server offered STARTTLS, TLS never started, and the middlebox is why."""
    client, server = al.pair.client_side, al.pair.server_side
    if not server.starttls.advertised or client.starttls.established:
        return []
    why = [
        f
        for f in found
        if (
            f.kind is FindingKind.EHLO_KEYWORD_MASKED
            and any(m["original"] == "STARTTLS" for m in f.details.get("masked", ()))
        )
        or (
            f.kind is FindingKind.EHLO_KEYWORD_REMOVED
            and "STARTTLS" in f.details.get("removed", ())
        )
        or (
            f.kind in (FindingKind.COMMAND_MASKED, FindingKind.COMMAND_REPLACED)
            and f.details.get("original") == "STARTTLS"
        )
        or (f.kind is FindingKind.STARTTLS_REJECTED and f.details.get("replied_by") == "middlebox")
    ]
    if not why:
        return []
    cleartext = [t for t in client.transactions if t.data_started]
    reached = [t for t in server.transactions if t.data_started]
    severity = Severity.CRITICAL if cleartext else Severity.HIGH
    what = (
        f"{len(cleartext)} message(s) crossed in cleartext"
        + (f" ({len(reached)} reached the server)" if len(reached) != len(cleartext) else "")
        if cleartext
        else "no message was sent in this session, but any would have gone in cleartext"
    )
    proof: list[Evidence] = []
    for f in why:
        proof.extend(f.evidence[:2])
    for txn in cleartext[:3]:
        proof.append(
            evidence(
                client,
                txn.frame,
                txn.start_ts,
                C2S,
                f"MAIL FROM:<{txn.mail_from}>",
                "sent without TLS",
            )
        )
    by_proxy = all(f.kind is FindingKind.EHLO_KEYWORD_REMOVED for f in why)
    return [
        Finding(
            kind=FindingKind.TLS_DOWNGRADE,
            severity=severity,
            confidence=Confidence.CONFIRMED,
            sessions=_ids(al),
            summary=f"The server offers STARTTLS but the session ran in cleartext: {what}.",
            cause=remedies.CAUSE_DOWNGRADE,
            remediation=remedies.PROXY if by_proxy else remedies.ASA_ALLOW_TLS,
            evidence=tuple(proof),
            details={
                "messages_in_cleartext": len(cleartext),
                "because_of": sorted({str(f.kind) for f in why}),
            },
        )
    ]


# -- resets and drops ----------------------------------------------------------------------------


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


def resets(al: PairAlignment, placed: list[Placed]) -> list[Finding]:
    """Forged resets, and what the connection was doing when the middlebox killed it."""
    client, server = al.pair.client_side, al.pair.server_side
    forged = [m for m in al.end_mismatches if m.kind is EndKind.RST]
    truncated = [
        p.divergence
        for p in placed
        if p.divergence.direction is C2S and p.divergence.kind is DivergenceKind.TRUNCATION
    ]
    findings: list[Finding] = []
    if forged:
        proof = []
        for m in forged:
            session = client if m.seen_in == "client_side" else server
            sender = "server" if m.direction is S2C else "client"
            usual = m.end.usual_origin
            note = (
                f"RST 'from the {sender}' with TTL {m.end.origin.ttl}"
                + (f" (the {sender}'s packets: TTL {usual.ttl})" if usual else "")
                + f"; no such RST in the {sender}-side capture"
            )
            proof.append(evidence(session, m.end.frame, m.end.ts, m.direction, "RST", note))
        findings.append(
            Finding(
                kind=FindingKind.RESET_INJECTED,
                severity=Severity.HIGH,
                confidence=Confidence.CONFIRMED,
                sessions=_ids(al),
                summary=f"{len(forged)} TCP reset(s) were forged in the path: the endpoints they "
                "claim to come from never sent them.",
                cause=remedies.CAUSE_RESET,
                remediation=remedies.RESET,
                evidence=tuple(proof),
                details={
                    "resets": [
                        {
                            "seen_in": m.seen_in,
                            "claims_sender": "server" if m.direction is S2C else "client",
                            "ttl": m.end.origin.ttl,
                            "usual_ttl": m.end.usual_origin.ttl if m.end.usual_origin else None,
                            "origin_differs": m.origin_differs,
                        }
                        for m in forged
                    ]
                },
            )
        )
    if not forged and not truncated:
        return findings
    received_end = server.stats.client_to_server.bytes + server.stats.client_to_server.gap_bytes
    txn = transaction_at(client, received_end)
    if txn is None or (txn.complete and not truncated):
        return findings
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
                client if forged[0].seen_in == "client_side" else server,
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
        findings.append(
            Finding(
                kind=FindingKind.HEADER_LINE_TOO_LONG_DROP,
                severity=Severity.HIGH,
                confidence=Confidence.CONFIRMED,
                sessions=_ids(al),
                summary="The connection was dropped in DATA when a "
                f"{long_header.longest_line}-octet "
                f"header line ({long_header.name}) reached the firewall; the server never got it "
                "and the message was not delivered.",
                cause=remedies.CAUSE_LONG_HEADER,
                remediation=remedies.LONG_HEADER,
                evidence=(
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
                details={
                    "header": long_header.name,
                    "offset": long_header.offset,
                    "line_length": long_header.longest_line,
                    "received_bytes": received_end,
                },
            )
        )
        return findings
    last = crossed[-1] if crossed else None
    signature = next((h for h in reversed(crossed) if h.is_signature), None)
    server_error = any(
        line.direction is S2C
        and line.code is not None
        and line.code >= 400
        and line.ts >= txn.start_ts
        for line in server.lines
    )
    if signature is not None and last is not None and forged and not server_error:
        # The box kills the connection when the segment holding the signature header passes:
        # the header is the last one that crossed, or sits in the last segment that crossed.
        at_end = signature is last or signature.frame == txn_last_frame(client, received_end)
        where = "right after" if signature is last else "just after"
        received_copy = _server_header(server, signature)
        findings.append(
            Finding(
                kind=FindingKind.RESET_AFTER_DKIM_HEADER,
                severity=Severity.CRITICAL,
                confidence=Confidence.CONFIRMED if at_end else Confidence.LIKELY,
                sessions=_ids(al),
                summary=f"The connection was reset in DATA {where} the {signature.name} header "
                f"crossed the firewall (stream offset {signature.offset}, longest line "
                f"{signature.longest_line} octets; the last header to cross was {last.name}); "
                "no error came from the server, the message was not delivered and will be retried.",
                cause=remedies.CAUSE_DKIM,
                remediation=remedies.DKIM_BUG,
                evidence=(
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
                details={
                    "header": signature.name,
                    "offset": signature.offset,
                    "line_length": signature.longest_line,
                    "last_header": last.name,
                    "next_header": cut.name if cut else None,
                },
            )
        )
    return findings


def txn_last_frame(session: SmtpSession, received_end: int) -> FrameRef | None:
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


# -- everything else -----------------------------------------------------------------------------

CREDENTIAL_CHANGED: Final = "AUTH credential changed (compared by digest; bytes not shown)"
CREDENTIAL_RESIZED: Final = "AUTH credential of another length (blanked with '*'; bytes not shown)"


def _credential_note(al: PairAlignment, p: Placed) -> str | None:
    """What a change says of the AUTH credentials it covers, if it covers one."""
    d = p.divergence
    if d.credential:
        return CREDENTIAL_CHANGED
    if d.direction is not C2S:
        return None
    sent = al.pair.client_side.credentials
    received = al.pair.server_side.credentials
    if any(
        c.start < d.sent_offset + max(d.sent_length, 1) and d.sent_offset < c.end for c in sent
    ) or any(
        c.start < d.received_offset + max(d.received_length, 1) and d.received_offset < c.end
        for c in received
    ):
        return CREDENTIAL_RESIZED
    return None


def _credential_evidence(al: PairAlignment, p: Placed) -> tuple[Evidence, Evidence]:
    """Both captures' frames of a changed credential, quoting only the AUTH command it
    belongs to (as kept: verb and mechanism)."""
    d = p.divergence
    return (
        evidence(
            al.pair.client_side,
            d.sent_frame,
            d.sent_ts,
            C2S,
            p.sent_line.text if p.sent_line else "",
            f"as sent; {CREDENTIAL_CHANGED}",
        ),
        evidence(
            al.pair.server_side,
            d.received_frame,
            d.received_ts,
            C2S,
            p.received_line.text if p.received_line else "",
            f"as received; {CREDENTIAL_CHANGED}",
        ),
    )


def leftovers(al: PairAlignment, placed: list[Placed], found: list[Finding]) -> list[Finding]:
    """Differences no specific detector explained: payload_modified and data_missing."""
    kinds = {f.kind for f in found}
    full_proxy = FindingKind.BANNER_REPLACED in kinds
    explained_places = (
        {Place.BANNER}
        if kinds & {FindingKind.BANNER_MASKED, FindingKind.BANNER_REPLACED}
        else set()
    )
    if full_proxy or kinds & {FindingKind.EHLO_KEYWORD_MASKED, FindingKind.EHLO_KEYWORD_REMOVED}:
        # A full proxy writes its own EHLO reply: its keywords were compared, the rest is its own.
        explained_places.add(Place.EHLO_REPLY)
    swallowed = any(
        f.kind is FindingKind.STARTTLS_REJECTED and not f.details.get("command_reached_server")
        for f in found
    )
    connection_killed = kinds & {
        FindingKind.RESET_INJECTED,
        FindingKind.RESET_AFTER_DKIM_HEADER,
        FindingKind.HEADER_LINE_TOO_LONG_DROP,
    }
    command_kinds = {
        FindingKind.COMMAND_MASKED,
        FindingKind.COMMAND_REPLACED,
        FindingKind.INTERACTIVE_TEST_ARTEFACT,
    }
    modified: list[Placed] = []
    missing: list[Placed] = []
    for p in placed:
        d = p.divergence
        if p.place in explained_places:
            continue
        if (
            p.place is Place.COMMAND
            and kinds & command_kinds
            and p.sent_line
            and p.received_line
            and p.sent_line.verb != p.received_line.verb
        ):
            continue
        if d.kind is DivergenceKind.TRUNCATION and connection_killed:
            continue
        if p.place is Place.COMMAND and p.sent_line and _proxy_own_dialogue(p, full_proxy):
            continue
        if (
            swallowed
            and d.kind is DivergenceKind.REMOVAL
            and p.sent_line is not None
            and p.sent_line.verb == "STARTTLS"
        ):
            continue  # the box answered it itself: starttls_rejected says so
        if d.kind in (DivergenceKind.TRUNCATION, DivergenceKind.REMOVAL):
            missing.append(p)
        elif p.place is Place.REPLY and kinds & {FindingKind.STARTTLS_REJECTED}:
            continue
        else:
            modified.append(p)
    findings: list[Finding] = []
    if modified:
        proof: list[Evidence] = []
        for p in modified[:5]:
            if p.place is Place.CREDENTIAL:
                proof.extend(_credential_evidence(al, p))
                continue
            proof.extend(
                _sent_and_received(
                    al, p.divergence, decode(p.divergence.sent), decode(p.divergence.received)
                )
            )
        notes = [_credential_note(al, p) for p in modified]
        credentials = sum(note is not None for note in notes)
        findings.append(
            Finding(
                kind=FindingKind.PAYLOAD_MODIFIED,
                severity=Severity.MEDIUM,
                confidence=Confidence.CONFIRMED,
                sessions=_ids(al),
                summary=f"{len(modified)} other change(s) to the SMTP bytes in transit "
                f"({', '.join(sorted({str(p.place) for p in modified}))})."
                + (
                    f" {credentials} of them in AUTH credentials, whose bytes are never shown"
                    " (same-length changes are found by comparing keyed digests)."
                    if credentials
                    else ""
                ),
                cause=remedies.CAUSE_MODIFIED,
                remediation=remedies.NO_INSPECT,
                evidence=tuple(proof),
                details={
                    "changes": [
                        _describe(p, note)
                        for p, note in zip(modified[:20], notes[:20], strict=True)
                    ]
                },
            )
        )
    if missing:
        proof = []
        for p in missing[:5]:
            proof.extend(_sent_and_received(al, p.divergence, decode(p.divergence.sent), ""))
        total = sum(p.divergence.sent_length for p in missing)
        findings.append(
            Finding(
                kind=FindingKind.DATA_MISSING,
                severity=Severity.HIGH,
                confidence=Confidence.CONFIRMED,
                sessions=_ids(al),
                summary=f"{total} byte(s) sent on one side never arrived on the other.",
                cause=remedies.CAUSE_MISSING,
                remediation=remedies.NO_INSPECT,
                evidence=tuple(proof),
                details={"changes": [_describe(p) for p in missing[:20]]},
            )
        )
    return findings


_GREETING_VERBS = frozenset({"HELO", "EHLO"})


def _proxy_own_dialogue(p: Placed, full_proxy: bool) -> bool:
    """A full proxy greets the server with its own HELO/EHLO name: its dialogue, not damage."""
    sent, received = p.sent_line, p.received_line
    return (
        full_proxy
        and sent is not None
        and received is not None
        and sent.verb in _GREETING_VERBS
        and received.verb in _GREETING_VERBS
    )


def _describe(p: Placed, note: str | None = None) -> dict[str, object]:
    d = p.divergence
    described: dict[str, object] = {
        "direction": str(d.direction),
        "kind": str(d.kind),
        "place": str(p.place),
        "sent_offset": d.sent_offset,
        "received_offset": d.received_offset,
        "sent": decode(d.sent),
        "received": decode(d.received),
    }
    if note is not None:
        described["note"] = note
    return described


PairDetector = Callable[[PairAlignment, list[Placed]], list[Finding]]

PAIR_DETECTORS: tuple[PairDetector, ...] = (
    banner,
    ehlo_keywords,
    commands,
    starttls_rejected,
    resets,
)
"""Detectors that look at one aligned pair, in report order."""


def detect_pair(al: PairAlignment) -> list[Finding]:
    """Every confirmed finding for one session pair."""
    if al.identical:
        return []
    placed = place(al)
    found: list[Finding] = []
    for detector in PAIR_DETECTORS:
        found.extend(detector(al, placed))
    found.extend(tls_downgrade(al, found))
    found.extend(leftovers(al, placed, found))
    return found
