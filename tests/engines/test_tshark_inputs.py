"""What the tshark engine reads: formats only Wireshark reads, rotation sets, and bad input.

- A capture converted by `editcap -F` to Sun snoop, Microsoft NetMon 2 or K12 text is refused by
  the native reader and read by the tshark engine into the sessions the native engine finds in
  the original pcap, frame numbers included.
- A capture cut into a rotation set (`editcap -c`) gives the sessions of the whole file, with
  every frame traced back to its file and its frame number there.
- No tshark, a missing file, a file that is not a capture: one clear error, no traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from analyzer import read_sessions
from analyzer.capture import open_capture
from analyzer.cli import main
from analyzer.engines.tshark import TSHARK_MISSING, read_sessions_tshark
from analyzer.errors import CaptureError, SmtpfwError
from analyzer.session.model import SmtpSession

from ..craft import MESSAGE, Conversation, smtp_dialogue
from .conftest import comparable, needs_tshark

pytestmark = [pytest.mark.tshark, needs_tshark]

EDITCAP = shutil.which("editcap")


def _frames(sessions: list[SmtpSession]) -> list[tuple[int, int]]:
    """(file_no, frame_no) of every command and reply, in order."""
    return [
        (line.frame.file_no, line.frame.frame_no)
        for s in sessions
        for line in s.lines
        if line.frame is not None
    ]


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two SMTP connections one after the other, written to one pcap."""
    first = smtp_dialogue([MESSAGE + b".\r\n"])
    second = Conversation(t0=first.packets[-1].time + 1, client_isn=7000, server_isn=90_000)
    second.handshake()
    second.send("server", b"220 mx.example.net ESMTP\r\n")
    second.send("client", b"HELO second.example.org\r\n")
    second.send("server", b"250 mx.example.net\r\n")
    second.send("client", b"QUIT\r\n")
    second.send("server", b"221 Bye\r\n")
    second.close()
    first.packets.extend(second.packets)
    return first.write(tmp_path_factory.mktemp("two") / "two.pcap")


@pytest.mark.skipif(EDITCAP is None, reason="editcap is not installed")
@pytest.mark.parametrize("file_type", ["snoop", "netmon2", "k12text"])
def test_format_only_wireshark_reads(file_type: str, two_sessions: Path, tmp_path: Path) -> None:
    assert EDITCAP is not None
    converted = tmp_path / f"two.{file_type}"
    subprocess.run(
        [EDITCAP, "-F", file_type, str(two_sessions), str(converted)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(CaptureError):
        open_capture([converted], "probe")

    native = read_sessions(two_sessions)
    tshark = read_sessions_tshark([converted])
    assert len(native) == 2
    assert [comparable(s) for s in tshark] == [comparable(s) for s in native]
    assert _frames(tshark) == _frames(native)


@pytest.mark.skipif(EDITCAP is None, reason="editcap is not installed")
def test_rotation_set_reads_as_the_whole_capture(two_sessions: Path, tmp_path: Path) -> None:
    """Cut every 9 frames (files named so that name order is not time order), given shuffled:
    the sessions are the whole file's, and each frame number is the one in its own file."""
    assert EDITCAP is not None
    subprocess.run(
        [EDITCAP, "-c", "9", str(two_sessions), str(tmp_path / "part.pcap")],
        check=True,
        capture_output=True,
    )
    parts = sorted(tmp_path.glob("part*.pcap"))
    assert len(parts) >= 4
    renamed = []
    for i, part in enumerate(parts):
        target = tmp_path / f"{len(parts) - i:02d}-rotated.pcap"
        part.rename(target)
        renamed.append(target)
    shuffled = renamed[1::2] + renamed[::2]

    whole = read_sessions_tshark([two_sessions])
    rotated = read_sessions_tshark(shuffled)
    assert [comparable(s) for s in rotated] == [comparable(s) for s in whole]

    # Frame n of the whole file is frame ((n - 1) % 9) + 1 of file (n - 1) // 9.
    expected: list[tuple[int, int]] = []
    for _, n in _frames(whole):
        expected.append(((n - 1) // 9, (n - 1) % 9 + 1))
    assert _frames(rotated) == expected
    # The native reader joins the set the same way.
    assert _frames(read_sessions(shuffled)) == expected


def test_missing_tshark_is_one_clear_error(
    two_sessions: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SmtpfwError) as caught:
        read_sessions_tshark([two_sessions])
    assert str(caught.value) == TSHARK_MISSING
    assert str(caught.value) == (
        "tshark not found: install Wireshark's tshark (Debian package tshark)"
    )


def test_missing_file_is_named_with_tsharks_complaint(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pcap"
    with pytest.raises(CaptureError) as caught:
        read_sessions_tshark([missing])
    assert caught.value.path == missing
    assert "doesn't exist" in caught.value.problem
    assert "\n" not in str(caught.value)


def test_file_that_is_no_capture_is_named_with_tsharks_complaint(tmp_path: Path) -> None:
    junk = tmp_path / "notes.pcap"
    junk.write_bytes(b"these are not packets\n" * 10)
    with pytest.raises(CaptureError) as caught:
        read_sessions_tshark([junk])
    assert caught.value.path == junk
    assert "isn't a capture file in a format TShark understands" in caught.value.problem


def test_bad_file_in_a_rotation_set_is_the_one_named(two_sessions: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(CaptureError) as caught:
        read_sessions_tshark([two_sessions, junk])
    assert caught.value.path == junk


def test_capture_cut_short_still_gives_what_was_read(two_sessions: Path, tmp_path: Path) -> None:
    """A file that ends in the middle of a packet is not an error (as in the native reader)."""
    data = two_sessions.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 20])
    sessions = read_sessions_tshark([cut])
    assert len(sessions) == 2
    assert sessions[0].transactions[0].complete


def test_cli_lists_sessions_with_the_tshark_engine(
    two_sessions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sessions", "--engine", "tshark", str(two_sessions)]) == 0
    out = capsys.readouterr().out
    assert "second.example.org" in out
    assert out.rstrip().endswith("2 SMTP session(s)")


def test_cli_json_is_the_same_with_both_engines(
    two_sessions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sessions", "--json", str(two_sessions)]) == 0
    native = capsys.readouterr().out
    assert main(["sessions", "--json", "--engine", "tshark", str(two_sessions)]) == 0
    assert capsys.readouterr().out == native


def test_environment_is_left_alone(two_sessions: Path) -> None:
    """tshark runs with a private configuration folder; the caller's environment is untouched."""
    before = dict(os.environ)
    read_sessions_tshark([two_sessions])
    assert dict(os.environ) == before


def test_too_many_open_connections_are_given_up_oldest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two connections open at once with room for one: the first is finished early, marked
    evicted, and both still come out."""
    from analyzer.engines import tshark as engine

    monkeypatch.setattr(engine, "MAX_OPEN_FLOWS", 1)
    a = Conversation().handshake().send("server", b"220 a ESMTP\r\n")
    b = Conversation(client_port=40001, t0=a.packets[-1].time + 0.001).handshake()
    b.send("server", b"220 b ESMTP\r\n")
    a.packets.extend(b.packets)
    path = a.write(tmp_path / "two-open.pcap")
    sessions = read_sessions_tshark([path])
    assert [s.banner for s in sessions] == ["a ESMTP", "b ESMTP"]
    assert [s.stats.evicted for s in sessions] == [True, False]
    assert "flow_evicted" in sessions[0].anomaly_kinds


@pytest.mark.skipif(EDITCAP is None, reason="editcap is not installed")
def test_probe_accepts_what_tshark_reads_and_names_what_it_does_not(
    two_sessions: Path, tmp_path: Path
) -> None:
    """`check_capture_tshark` is the tshark engine's counterpart of the native probe."""
    from analyzer.engines.tshark import check_capture_tshark

    assert EDITCAP is not None
    snoop = tmp_path / "two.snoop"
    subprocess.run([EDITCAP, "-F", "snoop", str(two_sessions), str(snoop)], check=True)
    check_capture_tshark(snoop)
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"no packets here\n")
    with pytest.raises(CaptureError) as caught:
        check_capture_tshark(junk)
    assert caught.value.path == junk


@pytest.mark.skipif(EDITCAP is None, reason="editcap is not installed")
def test_the_command_reads_a_format_only_tshark_knows_with_engine_tshark(
    two_sessions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from analyzer.cli import main

    assert EDITCAP is not None
    snoop = tmp_path / "two.snoop"
    subprocess.run([EDITCAP, "-F", "snoop", str(two_sessions), str(snoop)], check=True)
    assert main(["sessions", str(snoop)]) == 2  # the native reader names the format it refuses
    capsys.readouterr()
    assert main(["sessions", "--engine", "tshark", str(snoop)]) == 0
    assert "2 SMTP session(s)" in capsys.readouterr().out
