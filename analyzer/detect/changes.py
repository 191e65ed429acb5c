"""Every other difference between the two captures: bytes changed (`payload_modified`) or
lost (`data_missing`) in transit.

What it does: reports the divergences of a pair that no rule before it explained (`found`: a
masked greeting, a proxy's own EHLO reply and dialogue, a masked command, a swallowed STARTTLS,
a connection the box killed), with both captures' versions; a changed AUTH credential is named,
never shown.
What it does not do: look at one capture alone (without the other side there is nothing to
compare), or guess why the bytes changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from analyzer._common import Direction
from analyzer.correlate import DivergenceKind, PairAlignment
from analyzer.correlate.placement import Place, Placed

from .base import Confidence, Evidence, Finding, FindingKind
from .evidence import decode, evidence, pair_ids, sent_and_received
from .kinds import finding

C2S = Direction.CLIENT_TO_SERVER

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


def two_sided(
    al: PairAlignment, placed: Sequence[Placed], found: Sequence[Finding]
) -> list[Finding]:
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
                sent_and_received(
                    al, p.divergence, decode(p.divergence.sent), decode(p.divergence.received)
                )
            )
        notes = [_credential_note(al, p) for p in modified]
        credentials = sum(note is not None for note in notes)
        findings.append(
            finding(
                FindingKind.PAYLOAD_MODIFIED,
                Confidence.CONFIRMED,
                pair_ids(al),
                f"{len(modified)} other change(s) to the SMTP bytes in transit "
                f"({', '.join(sorted({str(p.place) for p in modified}))})."
                + (
                    f" {credentials} of them in AUTH credentials, whose bytes are never shown"
                    " (same-length changes are found by comparing keyed digests)."
                    if credentials
                    else ""
                ),
                proof,
                {
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
            proof.extend(sent_and_received(al, p.divergence, decode(p.divergence.sent), ""))
        total = sum(p.divergence.sent_length for p in missing)
        findings.append(
            finding(
                FindingKind.DATA_MISSING,
                Confidence.CONFIRMED,
                pair_ids(al),
                f"{total} byte(s) sent on one side never arrived on the other.",
                proof,
                {"changes": [_describe(p) for p in missing[:20]]},
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
