"""One-capture command detectors on sessions of many lines: the same findings as on short ones.

A reply is matched to the command it answers wherever it lies (pipelined replies come after a
batch of commands), and a session of thousands of commands is read whole.
"""

from __future__ import annotations

from pathlib import Path

from analyzer.detect import FindingKind, commands
from analyzer.detect.registry import detect_single

from ..detect.transcripts import MESSAGE, greeting, kinds, session

REJECTED = b"502 5.5.2 Error: command not recognized\r\n"
NOOPS = 5000
BATCH = 250
"""Pipelined commands per segment (a segment stays under 64 KiB)."""


def noops(count: int) -> list[tuple[str, bytes]]:
    """`count` NOOPs pipelined in batches, each batch followed by its replies."""
    items: list[tuple[str, bytes]] = []
    for done in range(0, count, BATCH):
        n = min(BATCH, count - done)
        items += [("c", b"NOOP\r\n" * n), ("s", b"250 2.0.0 Ok\r\n" * n)]
    return items


def test_a_pipelined_command_answered_as_unknown_is_garbled(tmp_path: Path) -> None:
    # Client-side view: HELP left the client intact; its reply comes three lines later, after
    # the replies to the commands pipelined before it.
    batch = ("c", b"RSET\r\nNOOP\r\nHELP\r\n")
    replies = ("s", b"250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n" + REJECTED)
    found = commands.one_sided(session(tmp_path, [*greeting(), batch, replies, *MESSAGE]))
    assert [f.kind for f in found] == [FindingKind.COMMAND_MASKED]
    excerpts = [e.excerpt for e in found[0].evidence]
    assert any("HELP" in x for x in excerpts)
    assert any("502" in x for x in excerpts)
    assert "HELP" in found[0].summary


def test_a_verb_of_xs_arriving_at_the_server_is_garbled(tmp_path: Path) -> None:
    items = [*greeting(), ("c", b"XXXXXXXX\r\n"), ("s", REJECTED), *MESSAGE]
    found = detect_single([session(tmp_path, items)])
    assert "command_masked" in kinds(found)
    masked = next(f for f in found if f.kind is FindingKind.COMMAND_MASKED)
    assert "8 X's is STARTTLS's length" in masked.summary


def test_a_rejection_belongs_to_the_command_it_answers(tmp_path: Path) -> None:
    # A known verb answered 250 next to an unknown verb answered 502: nothing was garbled.
    batch = ("c", b"NOOP\r\nXYZZY\r\n")
    replies = ("s", b"250 2.0.0 Ok\r\n" + REJECTED)
    found = detect_single([session(tmp_path, [*greeting(), batch, replies, *MESSAGE])])
    assert "command_masked" not in kinds(found)


def test_thousands_of_answered_noops_are_read_and_clean(tmp_path: Path) -> None:
    s = session(tmp_path, [*greeting(), *noops(NOOPS), *MESSAGE])
    commands = [line for line in s.lines if line.verb == "NOOP"]
    assert len(commands) == NOOPS
    answered = {line.answers for line in s.lines if line.code == 250}
    assert all(s.lines.index(c) in answered for c in commands[:: NOOPS // 10])
    assert detect_single([s]) == []


def test_one_garbled_command_among_thousands_is_found_once(tmp_path: Path) -> None:
    # 4,000 NOOPs and their replies: within the transcript a session keeps (MAX_LINES_KEPT).
    items = [*greeting(), *noops(4000), ("c", b"HELP\r\n"), ("s", REJECTED), *MESSAGE]
    found = commands.one_sided(session(tmp_path, items))
    assert [f.kind for f in found] == [FindingKind.COMMAND_MASKED]
    assert found[0].summary.startswith("1 command(s)")
