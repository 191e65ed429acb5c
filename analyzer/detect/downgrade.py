"""TLS that never started because of the middlebox, so mail crossed in cleartext
(`tls_downgrade`).

What it does: from both captures, reads the findings the other rules made of the pair (a masked
or removed STARTTLS keyword, a masked or replaced STARTTLS command, a refusal the middlebox
wrote) and, when the server offers STARTTLS, counts the messages that went in cleartext
(`two_sided`); from one capture, infers the same from an 8-letter keyword mask or a STARTTLS
refused as unknown (`one_sided`).
What it does not do: find the damage itself (`ehlo`, `commands`, `starttls` do).
"""

from __future__ import annotations

from collections.abc import Sequence

from analyzer._common import Direction
from analyzer.correlate import PairAlignment
from analyzer.correlate.placement import Placed
from analyzer.session.model import SmtpSession

from .base import Confidence, Evidence, Finding, FindingKind, Severity
from .evidence import evidence, pair_ids
from .kinds import PROXY, finding
from .signatures import is_masked_keyword, rejects_unknown_command

C2S = Direction.CLIENT_TO_SERVER


def _takes_starttls_away(f: Finding) -> bool:
    """A finding of the pair that explains why TLS never started."""
    return (
        (
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
    )


def two_sided(
    al: PairAlignment, placed: Sequence[Placed], found: Sequence[Finding]
) -> list[Finding]:
    """The server offered STARTTLS, TLS never started, and the middlebox is why (`found`)."""
    client, server = al.pair.client_side, al.pair.server_side
    if not server.starttls.advertised or client.starttls.established:
        return []
    why = [f for f in found if _takes_starttls_away(f)]
    if not why:
        return []
    cleartext = [t for t in client.transactions if t.data_started]
    reached = [t for t in server.transactions if t.data_started]
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
        finding(
            FindingKind.TLS_DOWNGRADE,
            Confidence.CONFIRMED,
            pair_ids(al),
            f"The server offers STARTTLS but the session ran in cleartext: {what}.",
            proof,
            {
                "messages_in_cleartext": len(cleartext),
                "because_of": sorted({str(f.kind) for f in why}),
            },
            severity=Severity.CRITICAL if cleartext else Severity.HIGH,
            remediation=PROXY if by_proxy else None,
        )
    ]


def one_sided(session: SmtpSession) -> list[Finding]:
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
        finding(
            FindingKind.TLS_DOWNGRADE,
            Confidence.LIKELY,
            (session.id,),
            "TLS never started although the server most likely offers STARTTLS ("
            + (
                "masked keyword " + ", ".join(masked_8)
                if masked_8
                else "STARTTLS rejected as unknown"
            )
            + f"); {len(cleartext)} message(s) crossed in cleartext.",
            (
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
            {"messages_in_cleartext": len(cleartext)},
            severity=Severity.CRITICAL if cleartext else Severity.HIGH,
        )
    ]
