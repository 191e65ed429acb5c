"""Banner and EHLO-reply detectors on short two-sided transcripts.

A masked banner (PIX: '*', inspect esmtp: 'X') is `banner_masked`; a readable other banner is a
full proxy's own greeting, `banner_replaced`. EHLO keywords are compared as sets whichever way
the reply was rewritten: masked in place, or missing from a proxy's own reply.
"""

from __future__ import annotations

from pathlib import Path

from analyzer.correlate.placement import place
from analyzer.detect import FindingKind, Severity, banner, ehlo
from analyzer.detect.registry import pair_findings as detect_pair

from .transcripts import (
    BANNER,
    EHLO,
    EHLO_REPLY,
    MESSAGE,
    aligned,
    greeting,
    kinds,
    pair_of,
    session,
    session_without,
)

PROXY_BANNER = b"220 relay.proxy.example ESMTP service ready\r\n"
PROXY_EHLO = b"EHLO relay.proxy.example\r\n"
PROXY_REPLY = (
    b"250-relay.proxy.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n"
)


def test_a_star_masked_banner_is_banner_masked(tmp_path: Path) -> None:
    masked = b"220 *****0**2*******************\r\n"
    al = aligned(tmp_path, greeting(banner=masked) + MESSAGE, greeting() + MESSAGE)
    (finding,) = banner.two_sided(al, place(al), [])
    assert finding.kind is FindingKind.BANNER_MASKED
    assert finding.details["masked"].startswith("*****0**2")


def test_an_x_masked_banner_is_banner_masked(tmp_path: Path) -> None:
    masked = b"220 XXXXXXXXXXXXXX XXXXX XXXXXXX\r\n"
    al = aligned(tmp_path, greeting(banner=masked) + MESSAGE, greeting() + MESSAGE)
    assert kinds(banner.two_sided(al, place(al), [])) == {"banner_masked"}


def test_a_proxys_readable_banner_is_replaced_not_masked(tmp_path: Path) -> None:
    al = aligned(
        tmp_path,
        greeting(banner=PROXY_BANNER) + MESSAGE,
        greeting(ehlo=PROXY_EHLO) + MESSAGE,
    )
    (finding,) = banner.two_sided(al, place(al), [])
    assert finding.kind is FindingKind.BANNER_REPLACED
    assert finding.severity is Severity.LOW
    assert finding.details["helo_at_server"] == "relay.proxy.example"


def test_an_identical_banner_gives_no_banner_finding(tmp_path: Path) -> None:
    al = aligned(tmp_path, greeting() + MESSAGE, greeting() + MESSAGE)
    assert banner.two_sided(al, place(al), []) == []
    assert detect_pair(al) == []


def test_in_place_keyword_masking_is_masked_not_removed(tmp_path: Path) -> None:
    masked = EHLO_REPLY.replace(b"STARTTLS", b"XXXXXXXA")
    al = aligned(tmp_path, greeting(reply=masked) + MESSAGE, greeting() + MESSAGE)
    found = detect_pair(al)
    assert kinds(found) == {"ehlo_keyword_masked", "tls_downgrade"}
    (mask,) = [f for f in found if f.kind is FindingKind.EHLO_KEYWORD_MASKED]
    assert mask.details["masked"] == [{"original": "STARTTLS", "mask": "XXXXXXXA"}]


def test_a_full_proxy_that_drops_starttls_is_a_critical_downgrade(tmp_path: Path) -> None:
    al = aligned(
        tmp_path,
        greeting(banner=PROXY_BANNER, reply=PROXY_REPLY) + MESSAGE,
        greeting(ehlo=PROXY_EHLO) + MESSAGE,
    )
    found = detect_pair(al)
    assert kinds(found) == {"banner_replaced", "ehlo_keyword_removed", "tls_downgrade"}
    removed = next(f for f in found if f.kind is FindingKind.EHLO_KEYWORD_REMOVED)
    assert removed.details["removed"] == ["STARTTLS"]
    downgrade = next(f for f in found if f.kind is FindingKind.TLS_DOWNGRADE)
    assert downgrade.severity is Severity.CRITICAL


def test_keywords_removed_even_when_the_whole_greeting_differs(tmp_path: Path) -> None:
    # The proxy's reply shares no line with the server's: one divergence covers the greeting.
    proxy_reply = b"250-gw\r\n250-SIZE 1000\r\n250 PIPELINING\r\n"
    al = aligned(
        tmp_path,
        greeting(banner=b"220 gw\r\n", reply=proxy_reply) + MESSAGE,
        greeting(ehlo=b"EHLO gw\r\n") + MESSAGE,
    )
    (removed,) = [
        f for f in ehlo.two_sided(al, place(al), []) if f.kind is FindingKind.EHLO_KEYWORD_REMOVED
    ]
    assert set(removed.details["removed"]) == {"STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME"}


def test_keywords_merely_reordered_or_recased_are_not_removed(tmp_path: Path) -> None:
    reordered = (
        b"250-relay.proxy.example\r\n250-8bitmime\r\n250-starttls\r\n250-Size 10240000\r\n"
        b"250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n"
    )
    al = aligned(
        tmp_path,
        greeting(banner=PROXY_BANNER, reply=reordered) + MESSAGE,
        greeting(ehlo=PROXY_EHLO) + MESSAGE,
    )
    assert ehlo.two_sided(al, place(al), []) == []
    assert kinds(detect_pair(al)) == {"banner_replaced"}


def test_a_proxys_extra_keyword_is_not_damage(tmp_path: Path) -> None:
    extra = EHLO_REPLY.replace(b"250 8BITMIME", b"250-8BITMIME\r\n250 DSN")
    al = aligned(
        tmp_path, greeting(banner=PROXY_BANNER, reply=extra) + MESSAGE, greeting() + MESSAGE
    )
    assert ehlo.two_sided(al, place(al), []) == []


def test_no_ehlo_reply_on_one_side_compares_nothing(tmp_path: Path) -> None:
    helo = [("s", BANNER), ("c", b"HELO client.example.net\r\n"), ("s", b"250 mx.example.org\r\n")]
    al = aligned(tmp_path, helo + MESSAGE, greeting() + MESSAGE)
    assert ehlo.two_sided(al, place(al), []) == []


def test_a_hole_in_the_captured_ehlo_reply_is_not_a_removed_keyword(tmp_path: Path) -> None:
    # The client-side capture lost the segment carrying 250-STARTTLS (the ACKs prove it was
    # delivered): the capture does not hold those bytes, so no keyword is said to be removed.
    split = [
        ("s", BANNER),
        ("c", EHLO),
        ("s", b"250-mx.example.org\r\n250-PIPELINING\r\n"),
        ("s", b"250-STARTTLS\r\n"),
        ("s", b"250 8BITMIME\r\n"),
    ]
    dialogue = split + MESSAGE
    client = session_without(tmp_path, dialogue, 3, name="client")
    assert "STARTTLS" not in client.ehlo_keywords  # the hole hid it
    al = pair_of(client, session(tmp_path, dialogue, name="server"))
    assert ehlo.two_sided(al, place(al), []) == []
