"""The table of finding kinds: for each `FindingKind` its title, what it means in a sentence,
its cause, its remediation and its default severity — and `finding()`, which builds a `Finding`
of a kind with the table's text.

Facts from DOMAIN.md §1 (Cisco ESA Q&A 118550, ASA ESMTP inspection defaults). Declared once
here so that every finding of a kind gives the same advice and every report names it the same
way (`report.digest` reads its headings from here). A detector departs from the table only where
its evidence says more (a STARTTLS mask is more severe than another keyword's; one capture
cannot promise what two would), and says so where it does.
What it does not do: decide whether a finding applies (that is each detector's rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from textwrap import dedent
from typing import Any, Final

from .base import Confidence, Evidence, Finding, FindingKind, Severity

# -- configuration advice shared by several kinds ----------------------------------------------

ASA_ALLOW_TLS: Final = dedent(
    """\
    ASA 7.2(3)+/8.0(3)+: let STARTTLS through with a custom ESMTP inspection map:
        policy-map type inspect esmtp SMTP_ALLOW_TLS
         parameters
          allow-tls action log
          no mask-banner
        policy-map global_policy
         class inspection_default
          no inspect esmtp
          inspect esmtp SMTP_ALLOW_TLS
    Or stop inspecting SMTP (Cisco's advice when a mail gateway sits behind the firewall):
        policy-map global_policy
         class inspection_default
          no inspect esmtp
    PIX 6.x and earlier: `no fixup protocol smtp 25` (`show fixup` lists what is inspected).
    Verify: a new pair of captures must show identical bytes on both sides."""
)

NO_INSPECT: Final = dedent(
    """\
    Stop the firewall from rewriting SMTP:
        policy-map global_policy
         class inspection_default
          no inspect esmtp
    PIX 6.x and earlier: `no fixup protocol smtp 25`.
    Verify: a new pair of captures must show identical bytes on both sides."""
)

PROXY: Final = (
    "Configure the SMTP proxy to pass the STARTTLS extension (or exempt this mail flow from the "
    "proxy), so both MTAs can negotiate TLS end to end."
)

# -- advice of one kind each, too long to stand in the table ----------------------------------

DKIM_BUG: Final = dedent(
    """\
    Upgrade the PIX/ASA to 7.2(3) or later (fixed in 7.2(2.19) and 8.0(2.7)), or stop inspecting
    SMTP:
        policy-map global_policy
         class inspection_default
          no inspect esmtp
    PIX 6.x: `no fixup protocol smtp 25`. Stop-gap when the firewall belongs to the other party:
    stop DKIM/DomainKeys signing toward that destination until it is fixed (Cisco ESA Q&A 118550),
    then sign again. Queued mail to that destination will then go out."""
)

LONG_HEADER: Final = dedent(
    """\
    The ASA's default ESMTP policy drops connections with a header line over 998 octets. Fold
    long header lines at the sender (RFC 5322 §2.1.1; unfolded DKIM `b=` lines are the usual
    culprit), or relax the policy:
        policy-map type inspect esmtp SMTP_LONG_HEADERS
         parameters
          no mask-banner
         match header line length gt 998
          log
        policy-map global_policy
         class inspection_default
          no inspect esmtp
          inspect esmtp SMTP_LONG_HEADERS"""
)

# -- what one capture alone says instead --------------------------------------------------------

BANNER_MASKED_ONE_SIDED: Final = (
    "Usually harmless; `no mask-banner` in the ESMTP inspection map's `parameters` restores it. "
    "A capture on the server side would confirm."
)
"""`banner_masked`'s remediation from one capture: the other side would confirm it."""

STARTTLS_REFUSED_BY_SERVER: Final = (
    " A temporary refusal (454) is usually the server's own TLS problem."
)
"""Added to `starttls_rejected`'s cause when one capture shows a refusal, not an unknown verb."""

SERVER_TLS_REMEDY: Final = "Check the server's TLS configuration (certificate, key) and its logs."
"""`starttls_rejected`'s remediation when the refusal looks like the server's own."""


@dataclass(frozen=True, slots=True)
class KindText:
    """How the reports name a kind, and what is said of every finding of it."""

    title: str
    """The heading of the kind's findings."""
    happened: str
    """What the kind means, as part of a sentence ('the server's 220 greeting was masked')."""
    cause: str
    remediation: str
    severity: Severity
    """The usual severity; a detector raises or lowers it where its evidence says more."""


KINDS: Final[Mapping[FindingKind, KindText]] = {
    FindingKind.TLS_DOWNGRADE: KindText(
        title="STARTTLS downgrade: the session ran in cleartext",
        happened="mail that could have been encrypted crossed in cleartext",
        cause="The server offers STARTTLS, but the middlebox hid or broke it, so the client sent "
        "the mail in cleartext (opportunistic TLS fails open).",
        remediation=ASA_ALLOW_TLS,
        severity=Severity.CRITICAL,  # high when no message crossed
    ),
    FindingKind.EHLO_KEYWORD_MASKED: KindText(
        title="EHLO keyword overwritten in transit",
        happened="the server's EHLO keywords were overwritten on the way to the client",
        cause="Cisco PIX/ASA ESMTP inspection masks EHLO keywords it does not know "
        "(`match ehlo-reply-parameter others mask`, default policy): each becomes X's of the "
        "same length ending in a letter that counts up (STARTTLS → XXXXXXXA).",
        remediation=ASA_ALLOW_TLS,
        severity=Severity.MEDIUM,  # high when the keyword is (or may be) STARTTLS
    ),
    FindingKind.EHLO_KEYWORD_REMOVED: KindText(
        title="EHLO keyword removed in transit",
        happened="EHLO keywords the server sent never reached the client",
        cause="A token-removing SMTP proxy (Zorp and similar) deleted EHLO keywords it does not "
        "support instead of passing them on; the client never learns the server offers them.",
        remediation=PROXY,
        severity=Severity.MEDIUM,  # high when STARTTLS was removed
    ),
    FindingKind.COMMAND_MASKED: KindText(
        title="Client command overwritten in transit",
        happened="client commands were overwritten on the way to the server",
        cause="Cisco PIX/ASA SMTP inspection overwrites commands its policy does not allow with "
        "X's of the same length (STARTTLS → XXXXXXXX) unless `allow-tls` is set; the server "
        "then rejects the garbled command.",
        remediation=ASA_ALLOW_TLS,
        severity=Severity.MEDIUM,  # high for STARTTLS
    ),
    FindingKind.COMMAND_REPLACED: KindText(
        title="Client command replaced in transit",
        happened="client commands were replaced by another command on the way",
        cause="Older PIX releases (fixup protocol smtp, ≈5.1–6.x) replace commands outside RFC "
        "821's minimum set with NOOP; the server answers 250 and the client's real request is "
        "lost.",
        remediation=NO_INSPECT,
        severity=Severity.MEDIUM,  # high for STARTTLS
    ),
    FindingKind.STARTTLS_REJECTED: KindText(
        title="STARTTLS rejected",
        happened="STARTTLS was refused",
        cause="STARTTLS was answered with a reply other than 220, so TLS never started.",
        remediation=ASA_ALLOW_TLS,
        severity=Severity.HIGH,
    ),
    FindingKind.BANNER_MASKED: KindText(
        title="Server greeting masked",
        happened="the server's 220 greeting was masked",
        cause="Cisco PIX/ASA SMTP inspection masks the 220 greeting (`mask-banner`, on by "
        "default; PIX 5.1+ turns every character except '2', '0' and space into '*') to hide "
        "the server's software.",
        remediation="Usually harmless; if the greeting matters (some clients check it), add "
        "`no mask-banner` to the ESMTP inspection map's `parameters`.",
        severity=Severity.LOW,
    ),
    FindingKind.BANNER_REPLACED: KindText(
        title="Server greeting replaced by the middlebox's own",
        happened="the client was greeted by the middlebox's own 220, not the server's",
        cause="A full SMTP proxy (or an SMTP-aware firewall in proxy mode) terminates the "
        "client's TCP connection and opens its own to the server: the client reads the proxy's "
        "220 greeting and EHLO reply, not the server's. Not damage in itself, but everything the "
        "client is told about the server's extensions (STARTTLS above all) comes from the proxy.",
        remediation="Nothing to fix for the greeting itself. Check that the proxy passes the "
        "server's extensions (STARTTLS) or does TLS itself toward both sides; to see the server's "
        "own greeting, exempt this mail flow from the proxy.",
        severity=Severity.LOW,
    ),
    FindingKind.RESET_AFTER_DKIM_HEADER: KindText(
        title="Connection reset after the DKIM-Signature header",
        happened="connections were reset in DATA right after the DKIM-Signature header",
        cause="PIX releases before 7.2(3) terminate SMTP connections after duplicate-looking "
        "headers, notably DKIM-Signature and DomainKey-Signature (Cisco ESA Q&A 118550; PIX logs "
        "`SMTP: Multiple Content-Type headers!`). The sender sees the connection die in DATA and "
        "retries forever.",
        remediation=DKIM_BUG,
        severity=Severity.CRITICAL,
    ),
    FindingKind.HEADER_LINE_TOO_LONG_DROP: KindText(
        title="Connection dropped on a header line over 998 octets",
        happened="connections were dropped on a header line longer than 998 octets",
        cause="The ASA default ESMTP policy (`_default_esmtp_map`) has `drop-connection` for "
        "header lines longer than 998 octets (RFC 5322 §2.1.1's limit).",
        remediation=LONG_HEADER,
        severity=Severity.HIGH,
    ),
    FindingKind.RESET_INJECTED: KindText(
        title="TCP reset forged in the path",
        happened="TCP resets were forged in the path",
        cause="A box between the endpoints forged a TCP reset: the apparent sender never sent it "
        "(it is missing from the capture on that sender's side, and/or its TTL, IP-ID or MAC "
        "differ from that endpoint's other packets).",
        remediation="Find the device that sent the reset (its TTL, IP-ID and MAC are in the "
        "evidence) and check its SMTP inspection and intrusion-prevention logs for this "
        "connection.",
        severity=Severity.HIGH,  # medium from one capture
    ),
    FindingKind.PAYLOAD_MODIFIED: KindText(
        title="SMTP bytes changed in transit",
        happened="other SMTP bytes were changed in transit",
        cause="A box in the path rewrote bytes of the SMTP dialogue in transit.",
        remediation=NO_INSPECT,
        severity=Severity.MEDIUM,
    ),
    FindingKind.DATA_MISSING: KindText(
        title="Bytes lost in transit",
        happened="bytes sent on one side never arrived on the other",
        cause="Bytes sent on one side never arrived on the other: a box in the path dropped them.",
        remediation=NO_INSPECT,
        severity=Severity.HIGH,
    ),
    FindingKind.SESSION_UNMATCHED: KindText(
        title="Session seen in one capture only",
        happened="some sessions appear in one capture only",
        cause="The session appears in one capture only: it was blocked or redirected by the "
        "firewall, or it falls outside the other capture's time window or filter.",
        remediation="Check that both captures cover the same period and use the same capture "
        "filter; if they do, look for this connection in the firewall's connection log.",
        severity=Severity.MEDIUM,  # low without a message, info outside the other's time span
    ),
    FindingKind.INTERACTIVE_TEST_ARTEFACT: KindText(
        title="Hand-typed test session masked character by character",
        happened="a hand-typed test session was masked character by character",
        cause="Someone typed into the session by hand (telnet): one character per segment. "
        "PIX/ASA inspection masks each segment separately, so even allowed commands arrive as "
        "X's. This is an artefact of the test method, not what happens to real mail.",
        remediation="Test with a real SMTP client (swaks, or the MTA itself) that sends whole "
        "lines, or paste whole lines into telnet; judge the firewall only from such sessions.",
        severity=Severity.INFO,
    ),
}
"""Every kind, in the order the reports have always listed their headings."""


def finding(
    kind: FindingKind,
    confidence: Confidence,
    sessions: Iterable[str],
    summary: str,
    evidence: Iterable[Evidence],
    details: dict[str, Any] | None = None,
    *,
    severity: Severity | None = None,
    cause: str | None = None,
    remediation: str | None = None,
) -> Finding:
    """A finding of `kind`, with the table's cause, remediation and severity unless given."""
    text = KINDS[kind]
    return Finding(
        kind=kind,
        severity=text.severity if severity is None else severity,
        confidence=confidence,
        sessions=tuple(sessions),
        summary=summary,
        cause=text.cause if cause is None else cause,
        remediation=text.remediation if remediation is None else remediation,
        evidence=tuple(evidence),
        details={} if details is None else details,
    )
