"""What no specific detector explains: `payload_modified` and `data_missing`, and silence on
byte-identical sessions."""

from __future__ import annotations

from pathlib import Path

from analyzer.detect import FindingKind
from analyzer.detect.registry import pair_findings as detect_pair

from .transcripts import MESSAGE, aligned, greeting


def with_body(body: bytes) -> list[tuple[str, bytes]]:
    return [(s, body if d.startswith(b"Message-ID") else d) for s, d in MESSAGE]


ORIGINAL = b"Message-ID: <1@example.net>\r\nSubject: hi\r\n\r\nHello.\r\nSecond line.\r\n.\r\n"


def test_a_changed_header_is_payload_modified(tmp_path: Path) -> None:
    changed = ORIGINAL.replace(b"Subject: hi", b"Subject: ho")
    al = aligned(tmp_path, greeting() + with_body(ORIGINAL), greeting() + with_body(changed))
    (finding,) = detect_pair(al)
    assert finding.kind is FindingKind.PAYLOAD_MODIFIED
    (change,) = finding.details["changes"]
    assert change["place"] == "message"
    assert (change["sent"], change["received"]) == ("i", "o")


def test_a_line_that_never_arrived_is_data_missing(tmp_path: Path) -> None:
    cut = ORIGINAL.replace(b"Second line.\r\n", b"")
    al = aligned(tmp_path, greeting() + with_body(ORIGINAL), greeting() + with_body(cut))
    (finding,) = detect_pair(al)
    assert finding.kind is FindingKind.DATA_MISSING
    assert "Second line." in finding.details["changes"][0]["sent"]


def test_identical_sessions_give_nothing(tmp_path: Path) -> None:
    dialogue = greeting() + with_body(ORIGINAL)
    al = aligned(tmp_path, dialogue, dialogue)
    assert al.identical
    assert detect_pair(al) == []
