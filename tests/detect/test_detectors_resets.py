"""Reset detectors, two-sided and one-sided, on short transcripts.

Two-sided: a RST one capture shows 'from' an endpoint that the endpoint's own capture does not
hold is forged (`reset_injected`, confirmed). One-sided: a RST whose TTL, source MAC and IP-ID
all fit the endpoint's own packets is the endpoint's; one that differs in any is a forgery
candidate (`possible` on one signal, `likely` on two or more, never `confirmed`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.correlate.placement import place
from analyzer.detect import Confidence, FindingKind, drops, resets
from analyzer.detect.registry import pair_findings as detect_pair

from .transcripts import BOX_MAC, MESSAGE, Reset, aligned, greeting, session

DIALOGUE = greeting() + MESSAGE[:4]


def test_a_reset_the_server_never_sent_is_confirmed_forged(tmp_path: Path) -> None:
    box = Reset("s", ttl=255, mac=BOX_MAC, ip_id_jump=20000)
    al = aligned(
        tmp_path,
        DIALOGUE,
        DIALOGUE,
        client_reset=box,
        server_reset=Reset("c", ttl=255, mac=BOX_MAC, ip_id_jump=20000),
    )
    (forged,) = resets.two_sided(al, place(al), [])
    assert forged.confidence is Confidence.CONFIRMED
    assert {r["seen_in"] for r in forged.details["resets"]} == {"client_side", "server_side"}


def test_the_endpoints_own_reset_seen_on_both_sides_is_not_forged(tmp_path: Path) -> None:
    own = Reset("c")
    al = aligned(tmp_path, DIALOGUE, DIALOGUE, client_reset=own, server_reset=own)
    assert resets.two_sided(al, place(al), []) == []
    assert drops.two_sided(al, place(al), []) == []
    assert detect_pair(al) == []


def test_one_sided_a_reset_that_fits_the_endpoint_is_its_own(tmp_path: Path) -> None:
    assert resets.one_sided(session(tmp_path, DIALOGUE, reset=Reset("s"))) == []


@pytest.mark.parametrize(
    ("reset", "differs", "confidence"),
    [
        (Reset("s", ttl=255), ["ttl"], Confidence.POSSIBLE),
        (Reset("s", mac=BOX_MAC), ["mac"], Confidence.POSSIBLE),
        (Reset("s", ip_id_jump=30000), ["ip_id"], Confidence.POSSIBLE),
        (Reset("s", mac=BOX_MAC, ip_id_jump=30000), ["mac", "ip_id"], Confidence.LIKELY),
        (
            Reset("s", ttl=255, mac=BOX_MAC, ip_id_jump=30000),
            ["ttl", "mac", "ip_id"],
            Confidence.LIKELY,
        ),
    ],
)
def test_one_sided_a_reset_unlike_the_endpoint_is_probably_forged(
    tmp_path: Path, reset: Reset, differs: list[str], confidence: Confidence
) -> None:
    (finding,) = resets.one_sided(session(tmp_path, DIALOGUE, reset=reset))
    assert finding.kind is FindingKind.RESET_INJECTED
    assert finding.details["differs"] == differs
    assert finding.confidence is confidence


def test_one_sided_a_small_ip_id_step_fits_the_endpoint(tmp_path: Path) -> None:
    # Another process on the host sent a few packets in between: still the endpoint's counter.
    assert resets.one_sided(session(tmp_path, DIALOGUE, reset=Reset("s", ip_id_jump=40))) == []
