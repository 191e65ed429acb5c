"""One-sided detectors: firewall damage recognised from the symptoms in one capture.

Without the other side nothing is proven, so findings are `likely` (a strong signature such as
`250-XXXXXXXA`) or `possible` (a weak one, such as a reset whose TTL looks foreign). `role` says
where the capture was taken ('client-side', 'server-side' or 'single' when unknown).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from analyzer._common import Direction
from analyzer.flows.events import EndKind, StreamEnd
from analyzer.session.model import Line, SmtpSession

from . import remedies
from .base import Confidence, Evidence, Finding, FindingKind, Severity
from .locate import answered_verb, evidence, line_evidence
from .paired import HEADER_LINE_LIMIT, _starttls_lines, _typed_by_hand
from .signatures import (
    KNOWN_VERBS,
    REJECT_UNKNOWN_CODES,
    banner_is_masked,
    candidates_for_mask,
    is_masked_keyword,
    is_masked_verb,
    origin_differences,
    rejects_unknown_command,
)

S2C = Direction.SERVER_TO_CLIENT
C2S = Direction.CLIENT_TO_SERVER


def masked_banner(session: SmtpSession) -> list[Finding]:
    if session.banner is None or not banner_is_masked(session.banner):
        return []
    return [
        Finding(
            kind=FindingKind.BANNER_MASKED,
            severity=Severity.LOW,
            confidence=Confidence.LIKELY,
            sessions=(session.id,),
            summary=f"The 220 greeting is mostly asterisks ({session.banner.splitlines()[0]!r}): "
            "a firewall masked it.",
            cause=remedies.CAUSE_BANNER,
            remediation="Usually harmless; `no mask-banner` in the ESMTP inspection map's "
            "`parameters` restores it. A capture on the server side would confirm.",
            evidence=(
                evidence(session, session.banner_frame, session.start_ts, S2C, session.banner),
            ),
        )
    ]


def masked_keywords(session: SmtpSession) -> list[Finding]:
    masks = [kw for kw in session.ehlo_keywords if is_masked_keyword(kw)]
    if not masks:
        return []
    guesses = {m: candidates_for_mask(m) for m in masks}
    likely_starttls = [m for m in masks if "STARTTLS" in guesses[m]]
    reply = next(
        (
            line
            for line in session.lines
            if line.direction is S2C and answered_verb(session, line) == "EHLO"
        ),
        None,
    )
    proof = (line_evidence(session, reply, "EHLO reply"),) if reply else ()
    described = ", ".join(
        f"{m} (was {'/'.join(guesses[m]) or 'an unknown keyword'} — same length)" for m in masks
    )
    return [
        Finding(
            kind=FindingKind.EHLO_KEYWORD_MASKED,
            severity=Severity.HIGH if likely_starttls else Severity.MEDIUM,
            confidence=Confidence.LIKELY,
            sessions=(session.id,),
            summary=f"EHLO reply keyword(s) masked by X's: {described}.",
            cause=remedies.CAUSE_KEYWORD_MASK,
            remediation=remedies.ASA_ALLOW_TLS,
            evidence=proof,
            details={
                "masked": [
                    {"original": None, "mask": m, "candidates": list(guesses[m])} for m in masks
                ]
            },
        )
    ]


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
            continue  # its own detector: starttls_rejected
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


def masked_commands(session: SmtpSession) -> list[Finding]:
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
    if _typed_by_hand(session):
        return [
            Finding(
                kind=FindingKind.INTERACTIVE_TEST_ARTEFACT,
                severity=Severity.INFO,
                confidence=Confidence.LIKELY,
                sessions=(session.id,),
                summary=f"{len(masked)} command(s) arrived as X's in a session typed one character "
                "per segment: a manual test masked segment by segment, not real mail.",
                cause=remedies.CAUSE_INTERACTIVE,
                remediation=remedies.REMEDY_INTERACTIVE,
                evidence=tuple(proof),
            )
        ]
    lengths = {len(line.verb or "") for line in masked}
    return [
        Finding(
            kind=FindingKind.COMMAND_MASKED,
            severity=Severity.HIGH if 8 in lengths else Severity.MEDIUM,
            confidence=Confidence.LIKELY,
            sessions=(session.id,),
            summary=f"{len(masked)} command(s) were overwritten on the way "
            f"({', '.join(sorted({line.verb or '' for line in masked}))})"
            + ("; 8 X's is STARTTLS's length." if 8 in lengths else "."),
            cause=remedies.CAUSE_COMMAND_MASK,
            remediation=remedies.ASA_ALLOW_TLS,
            evidence=tuple(proof),
        )
    ]


def rejected_starttls(session: SmtpSession) -> list[Finding]:
    tls = session.starttls
    if not tls.attempted or tls.reply_code in (None, 220):
        return []
    command, reply = _starttls_lines(session)
    if command is None or reply is None:
        return []
    unknown = rejects_unknown_command(reply.code, reply.text)
    masked_offer = any(is_masked_keyword(kw) for kw in session.ehlo_keywords)
    confidence = Confidence.LIKELY if unknown else Confidence.POSSIBLE
    return [
        Finding(
            kind=FindingKind.STARTTLS_REJECTED,
            severity=Severity.HIGH,
            confidence=confidence,
            sessions=(session.id,),
            summary=f"STARTTLS was answered {reply.text!r}"
            + (
                ": the server did not recognise the command, the sign of a firewall that masked it "
                "on the way (STARTTLS → XXXXXXXX)"
                if unknown
                else ""
            )
            + (", after an EHLO reply with a masked keyword" if masked_offer else "")
            + ".",
            cause=remedies.CAUSE_STARTTLS_REJECTED
            + (
                " " + remedies.CAUSE_COMMAND_MASK
                if unknown
                else " A temporary refusal (454) is usually the server's own TLS problem."
            ),
            remediation=remedies.ASA_ALLOW_TLS
            if unknown
            else "Check the server's TLS configuration (certificate, key) and its logs.",
            evidence=(
                line_evidence(session, command, "STARTTLS"),
                line_evidence(session, reply, "the reply"),
            ),
            details={
                "reply_code": reply.code,
                "reply_text": reply.text,
                "replied_by": "unknown (one capture)",
            },
        )
    ]


def cleartext_after_damage(session: SmtpSession) -> list[Finding]:
    """Mail sent in cleartext after STARTTLS was masked or rejected as unknown."""
    tls = session.starttls
    if tls.established:
        return []
    masked_8 = [kw for kw in session.ehlo_keywords if is_masked_keyword(kw) and len(kw) == 8]
    rejected = tls.attempted and rejects_unknown_command(tls.reply_code, tls.reply_text)
    if not masked_8 and not rejected:
        return []
    cleartext = [t for t in session.transactions if t.data_started]
    return [
        Finding(
            kind=FindingKind.TLS_DOWNGRADE,
            severity=Severity.CRITICAL if cleartext else Severity.HIGH,
            confidence=Confidence.LIKELY,
            sessions=(session.id,),
            summary="TLS never started although the server most likely offers STARTTLS ("
            + (
                "masked keyword " + ", ".join(masked_8)
                if masked_8
                else "STARTTLS rejected as unknown"
            )
            + f"); {len(cleartext)} message(s) crossed in cleartext.",
            cause=remedies.CAUSE_DOWNGRADE,
            remediation=remedies.ASA_ALLOW_TLS,
            evidence=tuple(
                evidence(
                    session,
                    t.frame,
                    t.start_ts,
                    C2S,
                    f"MAIL FROM:<{t.mail_from}>",
                    "sent without TLS",
                )
                for t in cleartext[:3]
            ),
            details={"messages_in_cleartext": len(cleartext)},
        )
    ]


def reset_in_data(session: SmtpSession) -> list[Finding]:
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
    server_error = any(
        line.direction is S2C
        and line.code is not None
        and line.code >= 400
        and line.ts >= txn.start_ts
        for line in session.lines
    )
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
            Finding(
                kind=FindingKind.HEADER_LINE_TOO_LONG_DROP,
                severity=Severity.HIGH,
                confidence=Confidence.LIKELY if strong else Confidence.POSSIBLE,
                sessions=(session.id,),
                summary="The connection was reset in DATA after a "
                f"{long_header.longest_line}-octet "
                f"header line ({long_header.name}), over RFC 5322's 998.",
                cause=remedies.CAUSE_LONG_HEADER,
                remediation=remedies.LONG_HEADER,
                evidence=(
                    evidence(
                        session,
                        long_header.frame,
                        long_header.ts,
                        C2S,
                        f"{long_header.name}: {long_header.value[:120]}",
                    ),
                    reset_proof,
                ),
                details={"header": long_header.name, "line_length": long_header.longest_line},
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
            Finding(
                kind=FindingKind.HEADER_LINE_TOO_LONG_DROP,
                severity=Severity.HIGH,
                confidence=Confidence.POSSIBLE,
                sessions=(session.id,),
                summary=f"The connection was reset in DATA in the middle of the {last.name} "
                f"header line ({last.longest_line} octets arrived, no end of line): the rest was "
                "dropped on the way, as the ASA does with header lines over 998 octets.",
                cause=remedies.CAUSE_LONG_HEADER,
                remediation=remedies.LONG_HEADER,
                evidence=(
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
                details={"header": last.name, "line_length_seen": last.longest_line},
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
        Finding(
            kind=FindingKind.RESET_AFTER_DKIM_HEADER,
            severity=Severity.CRITICAL,
            confidence=confidence,
            sessions=(session.id,),
            summary=f"The connection was reset in DATA {where} the {signature.name} header "
            f"(stream offset {signature.offset}, longest line {signature.longest_line} octets), "
            "with no error from the server before it.",
            cause=remedies.CAUSE_DKIM,
            remediation=remedies.DKIM_BUG,
            evidence=(
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
            details={
                "header": signature.name,
                "offset": signature.offset,
                "line_length": signature.longest_line,
                "last_header": last.name,
            },
        )
    ]


FORGED_RESET_SIGNALS = 2
"""Signals (TTL, source MAC, IP-ID) that must disagree with the endpoint's own packets for a
one-sided forged reset to be `likely` rather than `possible`."""

_SIGNAL_NAMES = {"ttl": "TTL", "mac": "source MAC", "ip_id": "IP-ID sequence"}


def _origin_note(end: StreamEnd, differs: tuple[str, ...]) -> str:
    usual = end.usual_origin
    parts = [f"TTL {end.origin.ttl}" + (f" (usually {usual.ttl})" if usual else "")]
    if end.origin.src_mac is not None:
        parts.append(
            f"MAC {end.origin.src_mac.hex(':')}"
            + (f" (usually {usual.src_mac.hex(':')})" if usual and usual.src_mac else "")
        )
    if end.origin.ip_id is not None:
        parts.append(
            f"IP-ID {end.origin.ip_id}"
            + (f" (last {usual.ip_id})" if usual and usual.ip_id is not None else "")
        )
    return ", ".join(parts) + "; differs in: " + ", ".join(_SIGNAL_NAMES[d] for d in differs)


def foreign_reset(session: SmtpSession) -> list[Finding]:
    """A reset whose TTL, source MAC or IP-ID does not fit its apparent sender's other packets.

    All three fitting makes it the endpoint's own reset. Any one differing makes it a forgery
    candidate: `possible` on one signal (a route change alters a TTL, a NIC bond the MAC),
    `likely` when two or more agree; never `confirmed` from one capture.
    """
    for end in session.ends:
        if end.kind is not EndKind.RST:
            continue
        differs = origin_differences(end.origin, end.usual_origin)
        if not differs:
            continue
        usual = end.usual_origin
        sender = "server" if end.direction is S2C else "client"
        return [
            Finding(
                kind=FindingKind.RESET_INJECTED,
                severity=Severity.MEDIUM,
                confidence=Confidence.LIKELY
                if len(differs) >= FORGED_RESET_SIGNALS
                else Confidence.POSSIBLE,
                sessions=(session.id,),
                summary=f"A TCP reset 'from the {sender}' does not look like that endpoint's other "
                f"packets ({', '.join(_SIGNAL_NAMES[d] for d in differs)} differ): probably "
                "forged in the path.",
                cause=remedies.CAUSE_RESET,
                remediation=remedies.RESET,
                evidence=(
                    evidence(
                        session, end.frame, end.ts, end.direction, "RST", _origin_note(end, differs)
                    ),
                ),
                details={
                    "ttl": end.origin.ttl,
                    "usual_ttl": usual.ttl if usual else None,
                    "src_mac": end.origin.src_mac.hex(":") if end.origin.src_mac else None,
                    "usual_src_mac": usual.src_mac.hex(":") if usual and usual.src_mac else None,
                    "ip_id": end.origin.ip_id,
                    "usual_ip_id": usual.ip_id if usual else None,
                    "differs": list(differs),
                },
            )
        ]
    return []


SessionDetector = Callable[[SmtpSession], list[Finding]]

SESSION_DETECTORS: tuple[SessionDetector, ...] = (
    masked_banner,
    masked_keywords,
    masked_commands,
    rejected_starttls,
    cleartext_after_damage,
    reset_in_data,
    foreign_reset,
)
"""Detectors that look at one session of one capture, in report order."""


def inconsistent_starttls(sessions: Sequence[SmtpSession]) -> list[Finding]:
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
            Finding(
                kind=FindingKind.EHLO_KEYWORD_REMOVED,
                severity=Severity.MEDIUM,
                confidence=Confidence.POSSIBLE,
                sessions=tuple(s.id for s in missing),
                summary=f"Server {server} offered STARTTLS in {len(offered)} session(s) but not in "
                f"{len(missing)} (clients {', '.join(clients[:5])}): something on some paths "
                "removes it.",
                cause=remedies.CAUSE_PROXY,
                remediation=remedies.PROXY,
                evidence=(
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


def detect_single(sessions: Sequence[SmtpSession]) -> list[Finding]:
    found: list[Finding] = []
    for session in sessions:
        for detector in SESSION_DETECTORS:
            found.extend(detector(session))
    found.extend(inconsistent_starttls(sessions))
    return found
