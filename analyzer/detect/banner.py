"""The server's 220 greeting: masked by the firewall (`banner_masked`) or replaced by a full
proxy's own (`banner_replaced`).

What it does: compares the greeting both captures hold (`two_sided`), or recognises a masked one
in one capture (`one_sided`: mostly '*' or 'X', `signatures.banner_is_masked`).
What it does not do: judge the EHLO reply that follows (`ehlo`), or report the proxy's own
dialogue with the server as damage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from analyzer._common import Direction
from analyzer.correlate import PairAlignment
from analyzer.correlate.placement import Place, Placed
from analyzer.session.model import SmtpSession

from .base import Confidence, Finding, FindingKind
from .evidence import evidence, pair_ids, sent_and_received
from .kinds import BANNER_MASKED_ONE_SIDED, finding
from .signatures import banner_is_masked

S2C = Direction.SERVER_TO_CLIENT

GREETING_CODES: Final = (220, 554)
"""The replies a server may open a connection with (RFC 5321 §3.1, §4.2.3)."""


def _first_line(text: str | None) -> str:
    return text.splitlines()[0] if text else ""


def _held_text(sent: bytes) -> str:
    text = sent.split(b"\r\n", 1)[0].decode("utf-8", "surrogateescape")
    return text[4:] if text[:3].isdigit() else text


def two_sided(
    al: PairAlignment, placed: Sequence[Placed], found: Sequence[Finding]
) -> list[Finding]:
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
    proof = sent_and_received(al, hits[0].divergence, original, arrived)
    if banner_is_masked(arrived):
        return [
            finding(
                FindingKind.BANNER_MASKED,
                Confidence.CONFIRMED,
                pair_ids(al),
                f"The server's 220 greeting was masked on its way to the client: "
                f"{_first_line(original)!r} arrived as {_first_line(arrived)!r}.",
                proof,
                {"original": original, "masked": arrived},
            )
        ]
    details: dict[str, object] = {"original": original, "replacement": arrived}
    if client.helo and server.helo and client.helo != server.helo:
        details["client_helo"] = client.helo
        details["helo_at_server"] = server.helo
    return [
        finding(
            FindingKind.BANNER_REPLACED,
            Confidence.CONFIRMED,
            pair_ids(al),
            f"The client was greeted by the middlebox, not the server: the server sent "
            f"{_first_line(original)!r}, the client received {_first_line(arrived)!r}"
            + (
                f" (the box introduced itself to the server as {server.helo!r})."
                if "helo_at_server" in details
                else "."
            ),
            proof,
            details,
        )
    ]


def one_sided(session: SmtpSession) -> list[Finding]:
    """A greeting that is mostly mask characters: a firewall masked it (`likely`)."""
    if session.banner is None or not banner_is_masked(session.banner):
        return []
    return [
        finding(
            FindingKind.BANNER_MASKED,
            Confidence.LIKELY,
            (session.id,),
            f"The 220 greeting is mostly asterisks ({session.banner.splitlines()[0]!r}): "
            "a firewall masked it.",
            (evidence(session, session.banner_frame, session.start_ts, S2C, session.banner),),
            remediation=BANNER_MASKED_ONE_SIDED,
        )
    ]
