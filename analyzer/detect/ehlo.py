"""The server's EHLO reply: keywords masked in place (`ehlo_keyword_masked`) or removed
(`ehlo_keyword_removed`) on the way to the client.

What it does: compares the keyword sets of the EHLO reply both captures hold whole
(`two_sided`); from one capture, recognises X-masked keywords and names the keywords of that
length they may stand for (`one_sided`), and a server that offers STARTTLS to some clients and
not to others (`across_sessions`).
What it does not do: judge the greeting before it (`banner`) or what the missing STARTTLS then
cost (`downgrade`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from analyzer._common import Direction
from analyzer.correlate import PairAlignment
from analyzer.correlate.placement import Placed, answered_verb
from analyzer.session.model import Line, SmtpSession

from .base import Confidence, Evidence, Finding, FindingKind, Severity
from .evidence import evidence, line_evidence, pair_ids
from .kinds import finding
from .signatures import candidates_for_mask, is_masked_keyword

S2C = Direction.SERVER_TO_CLIENT


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


def two_sided(
    al: PairAlignment, placed: Sequence[Placed], found: Sequence[Finding]
) -> list[Finding]:
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
            finding(
                FindingKind.EHLO_KEYWORD_MASKED,
                Confidence.CONFIRMED,
                pair_ids(al),
                f"EHLO keyword(s) overwritten in place between server and client: {names}.",
                proof,
                {"masked": [{"original": o, "mask": m} for o, m in masked]},
                severity=Severity.HIGH if starttls else Severity.MEDIUM,
            )
        )
    if removed:
        findings.append(
            finding(
                FindingKind.EHLO_KEYWORD_REMOVED,
                Confidence.CONFIRMED,
                pair_ids(al),
                "EHLO keyword(s) the server sent never reached the client: "
                + ", ".join(removed)
                + ".",
                proof,
                {"removed": removed},
                severity=Severity.HIGH if "STARTTLS" in removed else Severity.MEDIUM,
            )
        )
    return findings


def one_sided(session: SmtpSession) -> list[Finding]:
    """EHLO keywords that are X-masks (`likely`), with the keywords of that length they may
    have been."""
    masks = [kw for kw in session.ehlo_keywords if is_masked_keyword(kw)]
    if not masks:
        return []
    guesses = {m: candidates_for_mask(m) for m in masks}
    likely_starttls = [m for m in masks if "STARTTLS" in guesses[m]]
    reply = _ehlo_reply_line(session)
    proof = (line_evidence(session, reply, "EHLO reply"),) if reply else ()
    described = ", ".join(
        f"{m} (was {'/'.join(guesses[m]) or 'an unknown keyword'} — same length)" for m in masks
    )
    return [
        finding(
            FindingKind.EHLO_KEYWORD_MASKED,
            Confidence.LIKELY,
            (session.id,),
            f"EHLO reply keyword(s) masked by X's: {described}.",
            proof,
            {
                "masked": [
                    {"original": None, "mask": m, "candidates": list(guesses[m])} for m in masks
                ]
            },
            severity=Severity.HIGH if likely_starttls else Severity.MEDIUM,
        )
    ]


def across_sessions(sessions: Sequence[SmtpSession]) -> list[Finding]:
    """A server that offers STARTTLS to some clients and not to others (a path-dependent box)."""
    by_server: dict[str, list[SmtpSession]] = defaultdict(list)
    for s in sessions:
        if s.ehlo_keywords:
            by_server[s.flow.server.ip].append(s)
    findings: list[Finding] = []
    for server, group in sorted(by_server.items()):
        offered = [s for s in group if "STARTTLS" in s.ehlo_keywords]
        missing = [
            s
            for s in group
            if "STARTTLS" not in s.ehlo_keywords
            and not any(is_masked_keyword(k) for k in s.ehlo_keywords)
        ]
        if not offered or not missing:
            continue
        clients = sorted({s.flow.client.ip for s in missing})
        findings.append(
            finding(
                FindingKind.EHLO_KEYWORD_REMOVED,
                Confidence.POSSIBLE,
                (s.id for s in missing),
                f"Server {server} offered STARTTLS in {len(offered)} session(s) but not in "
                f"{len(missing)} (clients {', '.join(clients[:5])}): something on some paths "
                "removes it.",
                (
                    evidence(
                        offered[0],
                        offered[0].banner_frame,
                        offered[0].start_ts,
                        S2C,
                        ",".join(offered[0].ehlo_keywords),
                        "STARTTLS offered",
                    ),
                    evidence(
                        missing[0],
                        missing[0].banner_frame,
                        missing[0].start_ts,
                        S2C,
                        ",".join(missing[0].ehlo_keywords),
                        "STARTTLS absent",
                    ),
                ),
            )
        )
    return findings
