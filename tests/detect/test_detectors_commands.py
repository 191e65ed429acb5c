"""Command and STARTTLS detectors on short two-sided transcripts.

`command_masked`/`command_replaced` only when other bytes really reached the server in the
command's place; a STARTTLS the box answered itself (the server never saw it) is
`starttls_rejected` with `replied_by: "middlebox"`; the server's own refusal is the server's.
"""

from __future__ import annotations

from pathlib import Path

from analyzer.correlate.placement import place
from analyzer.detect import FindingKind, Severity, commands, starttls
from analyzer.detect.registry import pair_findings as detect_pair

from .transcripts import MESSAGE, aligned, greeting, kinds

STARTTLS = ("c", b"STARTTLS\r\n")


def test_starttls_overwritten_with_xs_is_command_masked(tmp_path: Path) -> None:
    reply = ("s", b"500 5.5.2 Error: command not recognized\r\n")
    al = aligned(
        tmp_path,
        [*greeting(), STARTTLS, reply, *MESSAGE],
        [*greeting(), ("c", b"XXXXXXXX\r\n"), reply, *MESSAGE],
    )
    found = detect_pair(al)
    assert kinds(found) == {"command_masked", "starttls_rejected", "tls_downgrade"}
    rejected = next(f for f in found if f.kind is FindingKind.STARTTLS_REJECTED)
    assert rejected.details["replied_by"] == "server"
    assert rejected.details["command_arrived_as"] == "XXXXXXXX"


def test_starttls_replaced_by_noop_is_command_replaced(tmp_path: Path) -> None:
    reply = ("s", b"250 2.0.0 Ok\r\n")
    al = aligned(
        tmp_path,
        [*greeting(), STARTTLS, reply, *MESSAGE],
        [*greeting(), ("c", b"NOOP\r\n"), reply, *MESSAGE],
    )
    (replaced,) = commands.two_sided(al, place(al), [])
    assert replaced.kind is FindingKind.COMMAND_REPLACED
    assert replaced.details == {"original": "STARTTLS", "replacement": "NOOP"}


def test_starttls_answered_by_the_box_is_rejected_by_the_middlebox(tmp_path: Path) -> None:
    # The box answers STARTTLS itself; the server's stream goes straight on to MAIL.
    al = aligned(
        tmp_path,
        [*greeting(), STARTTLS, ("s", b"500 #5.5.1 command not recognized\r\n"), *MESSAGE],
        greeting() + MESSAGE,
    )
    found = detect_pair(al)
    assert kinds(found) == {"starttls_rejected", "tls_downgrade"}
    assert (
        commands.two_sided(al, place(al), []) == []
    )  # the MAIL that followed did not replace STARTTLS
    rejected = next(f for f in found if f.kind is FindingKind.STARTTLS_REJECTED)
    assert rejected.details["replied_by"] == "middlebox"
    assert rejected.details["command_reached_server"] is False
    assert rejected.details["command_arrived_as"] is None
    assert any("never reached the server" in e.note for e in rejected.evidence)
    downgrade = next(f for f in found if f.kind is FindingKind.TLS_DOWNGRADE)
    assert downgrade.severity is Severity.CRITICAL


def test_the_servers_own_refusal_is_the_servers(tmp_path: Path) -> None:
    dialogue = [*greeting(), STARTTLS, ("s", b"454 4.7.0 TLS not available\r\n"), *MESSAGE]
    al = aligned(tmp_path, dialogue, dialogue)
    assert detect_pair(al) == []  # byte-identical: nothing the box did
    (rejected,) = starttls.two_sided(al, place(al), [])
    assert rejected.details["replied_by"] == "server"
    assert rejected.details["command_reached_server"] is True


def test_starttls_accepted_is_not_rejected(tmp_path: Path) -> None:
    dialogue = [*greeting(), STARTTLS, ("s", b"220 2.0.0 Ready to start TLS\r\n")]
    al = aligned(tmp_path, dialogue, dialogue)
    assert starttls.two_sided(al, place(al), []) == []
    assert commands.two_sided(al, place(al), []) == []
