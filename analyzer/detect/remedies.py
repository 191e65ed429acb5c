"""Causes and remediations in plain words, with the configuration lines that fix them.

Facts from DOMAIN.md §1 (Cisco ESA Q&A 118550, ASA ESMTP inspection defaults). Declared once
here so every finding of a kind gives the same advice.
"""

from __future__ import annotations

from textwrap import dedent

ASA_ALLOW_TLS = dedent(
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

NO_INSPECT = dedent(
    """\
    Stop the firewall from rewriting SMTP:
        policy-map global_policy
         class inspection_default
          no inspect esmtp
    PIX 6.x and earlier: `no fixup protocol smtp 25`.
    Verify: a new pair of captures must show identical bytes on both sides."""
)

DKIM_BUG = dedent(
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

LONG_HEADER = dedent(
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

PROXY = (
    "Configure the SMTP proxy to pass the STARTTLS extension (or exempt this mail flow from the "
    "proxy), so both MTAs can negotiate TLS end to end."
)

BANNER_REPLACED = (
    "Nothing to fix for the greeting itself. Check that the proxy passes the server's extensions "
    "(STARTTLS) or does TLS itself toward both sides; to see the server's own greeting, exempt "
    "this mail flow from the proxy."
)

RESET = (
    "Find the device that sent the reset (its TTL, IP-ID and MAC are in the evidence) and check "
    "its "
    "SMTP inspection and intrusion-prevention logs for this connection."
)

CAUSE_KEYWORD_MASK = (
    "Cisco PIX/ASA ESMTP inspection masks EHLO keywords it does not know "
    "(`match ehlo-reply-parameter others mask`, default policy): each becomes X's of the same "
    "length ending in a letter that counts up (STARTTLS → XXXXXXXA)."
)
CAUSE_COMMAND_MASK = (
    "Cisco PIX/ASA SMTP inspection overwrites commands its policy does not allow with X's of the "
    "same length (STARTTLS → XXXXXXXX) unless `allow-tls` is set; the server then rejects the "
    "garbled command."
)
CAUSE_COMMAND_REPLACED = (
    "Older PIX releases (fixup protocol smtp, ≈5.1–6.x) replace commands outside RFC 821's minimum "
    "set with NOOP; the server answers 250 and the client's real request is lost."
)
CAUSE_BANNER = (
    "Cisco PIX/ASA SMTP inspection masks the 220 greeting (`mask-banner`, on by default; PIX 5.1+ "
    "turns every character except '2', '0' and space into '*') to hide the server's software."
)
CAUSE_DKIM = (
    "PIX releases before 7.2(3) terminate SMTP connections after duplicate-looking headers, "
    "notably "
    "DKIM-Signature and DomainKey-Signature (Cisco ESA Q&A 118550; PIX logs `SMTP: Multiple "
    "Content-Type headers!`). The sender sees the connection die in DATA and retries forever."
)
CAUSE_LONG_HEADER = (
    "The ASA default ESMTP policy (`_default_esmtp_map`) has `drop-connection` for header lines "
    "longer than 998 octets (RFC 5322 §2.1.1's limit)."
)
CAUSE_BANNER_REPLACED = (
    "A full SMTP proxy (or an SMTP-aware firewall in proxy mode) terminates the client's TCP "
    "connection and opens its own to the server: the client reads the proxy's 220 greeting and "
    "EHLO reply, not the server's. Not damage in itself, but everything the client is told about "
    "the server's extensions (STARTTLS above all) comes from the proxy."
)
CAUSE_PROXY = (
    "A token-removing SMTP proxy (Zorp and similar) deleted EHLO keywords it does not support "
    "instead of passing them on; the client never learns the server offers them."
)
CAUSE_RESET = (
    "A box between the endpoints forged a TCP reset: the apparent sender never sent it (it is "
    "missing from the capture on that sender's side, and/or its TTL, IP-ID or MAC differ from that "
    "endpoint's other packets)."
)
CAUSE_INTERACTIVE = (
    "Someone typed into the session by hand (telnet): one character per segment. PIX/ASA "
    "inspection masks each segment separately, so even allowed commands arrive as X's. This is "
    "an artefact of the test method, not what happens to real mail."
)
CAUSE_DOWNGRADE = (
    "The server offers STARTTLS, but the middlebox hid or broke it, so the client sent the mail "
    "in cleartext (opportunistic TLS fails open)."
)
CAUSE_STARTTLS_REJECTED = "STARTTLS was answered with a reply other than 220, so TLS never started."
CAUSE_MODIFIED = "A box in the path rewrote bytes of the SMTP dialogue in transit."
CAUSE_MISSING = "Bytes sent on one side never arrived on the other: a box in the path dropped them."
CAUSE_UNMATCHED = (
    "The session appears in one capture only: it was blocked or redirected by the firewall, or it "
    "falls outside the other capture's time window or filter."
)
REMEDY_UNMATCHED = (
    "Check that both captures cover the same period and use the same capture filter; if they do, "
    "look for this connection in the firewall's connection log."
)
REMEDY_INTERACTIVE = (
    "Test with a real SMTP client (swaks, or the MTA itself) that sends whole lines, or paste "
    "whole "
    "lines into telnet; judge the firewall only from such sessions."
)
