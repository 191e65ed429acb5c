"""Client commands: overwritten with X's (`command_masked`), replaced by another verb
(`command_replaced`), or masked segment by segment because a person typed them
(`interactive_test_artefact`).

What it does: compares each client command with what reached the server (`two_sided`); from one
capture, finds X-verbs and well-known verbs the server called unknown (`one_sided`).
What it does not do: judge STARTTLS's own refusal (`starttls`), or changes to a command's
arguments (`changes`: payload_modified).
"""

from __future__ import annotations

from collections.abc import Sequence

from analyzer.correlate import DivergenceKind, PairAlignment
from analyzer.correlate.placement import Place, Placed
from analyzer.session.model import Line, SmtpSession

from .base import Confidence, Evidence, Finding, FindingKind, Severity
from .evidence import line_evidence, pair_ids, sent_and_received
from .kinds import finding
from .signatures import (
    KNOWN_VERBS,
    ONE_CHAR_SEGMENT_SHARE,
    REJECT_UNKNOWN_CODES,
    is_masked_verb,
    rejects_unknown_command,
)

_ARRIVED_CHANGED = frozenset({DivergenceKind.OVERWRITE, DivergenceKind.REPLACEMENT})
"""Divergences where other bytes arrived in place of the command; a removal (the command
never reached the server) is not a replacement by whatever the client sent next."""


def typed_by_hand(session: SmtpSession) -> bool:
    """The client's bytes mostly travelled one per segment: a person typing (telnet)."""
    stats = session.stats.client_to_server
    return stats.bytes > 0 and stats.payload_packets >= ONE_CHAR_SEGMENT_SHARE * stats.bytes


def _reply_to(session: SmtpSession, command: Line) -> Line | None:
    try:
        index = session.lines.index(command)
    except ValueError:
        return None
    return next((line for line in session.lines if line.answers == index), None)


def two_sided(
    al: PairAlignment, placed: Sequence[Placed], found: Sequence[Finding]
) -> list[Finding]:
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
    if typed_by_hand(client):
        proof: list[Evidence] = []
        for p in hits[:4]:
            sent_text = p.sent_line.text if p.sent_line else ""
            received_text = p.received_line.text if p.received_line else ""
            proof.extend(sent_and_received(al, p.divergence, sent_text, received_text))
        return [
            finding(
                FindingKind.INTERACTIVE_TEST_ARTEFACT,
                Confidence.CONFIRMED,
                pair_ids(al),
                f"{len(hits)} command(s) typed one character per segment were masked "
                "segment by segment; this session was a manual test, not real mail.",
                proof,
                {"commands": [p.sent_line.text for p in hits if p.sent_line]},
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
        proof_pair = sent_and_received(al, p.divergence, sent.text, received.text)
        reply = _reply_to(server, received)
        extra = (line_evidence(server, reply, "the server's answer"),) if reply else ()
        masked = is_masked_verb(arrived)
        findings.append(
            finding(
                FindingKind.COMMAND_MASKED if masked else FindingKind.COMMAND_REPLACED,
                Confidence.CONFIRMED,
                pair_ids(al),
                f"The client's {original} command reached the server as {arrived}"
                + (f"; the server answered {reply.text!r}." if reply else "."),
                proof_pair + extra,
                {"original": original, "mask" if masked else "replacement": arrived},
                severity=Severity.HIGH if original == "STARTTLS" else Severity.MEDIUM,
            )
        )
    return findings


def _first_replies(lines: Sequence[Line]) -> dict[int, int]:
    """For each command index, the index of the first later line that answers it: one pass,
    so that a session of millions of pipelined commands costs no more than its lines."""
    first: dict[int, int] = {}
    for j, line in enumerate(lines):
        answers = line.answers
        if answers is not None and answers < j and answers not in first:
            first[answers] = j
    return first


def _garbled(session: SmtpSession) -> list[Line]:
    """Commands that arrived as X's (server-side view), or well-formed commands the server
    answered as unknown (client-side view: they were garbled on the way)."""
    lines = session.lines
    first_reply = _first_replies(lines)
    found: list[Line] = []
    for i, line in enumerate(lines):
        if not line.verb:
            continue
        if is_masked_verb(line.verb):
            found.append(line)
            continue
        if line.verb in ("STARTTLS",):
            continue  # its own detector: starttls
        at = first_reply.get(i)
        reply = lines[at] if at is not None else None
        if (
            reply is not None
            and line.verb in KNOWN_VERBS
            and reply.code in REJECT_UNKNOWN_CODES
            and rejects_unknown_command(reply.code, reply.text)
        ):
            found.append(line)
    return found


def one_sided(session: SmtpSession) -> list[Finding]:
    """A masked verb arriving at the server (server-side view) or typed by hand."""
    masked = _garbled(session)
    if not masked:
        return []
    proof: list[Evidence] = [line_evidence(session, line, "masked command") for line in masked[:3]]
    for line in masked[:3]:
        index = session.lines.index(line)
        reply = next((r for r in session.lines if r.answers == index), None)
        if reply:
            proof.append(line_evidence(session, reply, "the server's answer"))
    if typed_by_hand(session):
        return [
            finding(
                FindingKind.INTERACTIVE_TEST_ARTEFACT,
                Confidence.LIKELY,
                (session.id,),
                f"{len(masked)} command(s) arrived as X's in a session typed one character "
                "per segment: a manual test masked segment by segment, not real mail.",
                proof,
            )
        ]
    lengths = {len(line.verb or "") for line in masked}
    return [
        finding(
            FindingKind.COMMAND_MASKED,
            Confidence.LIKELY,
            (session.id,),
            f"{len(masked)} command(s) were overwritten on the way "
            f"({', '.join(sorted({line.verb or '' for line in masked}))})"
            + ("; 8 X's is STARTTLS's length." if 8 in lengths else "."),
            proof,
            severity=Severity.HIGH if 8 in lengths else Severity.MEDIUM,
        )
    ]
