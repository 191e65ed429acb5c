"""A capture can come from a stream that is read once: `-`, /dev/stdin, a FIFO, `<(...)`.

`tcpdump -w - | smtpfw sessions -` must see the same sessions as the saved file, and a pipe
must never be read twice (a second open of a FIFO waits for a writer that is gone; a second
read of standard input starts in the middle).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from analyzer.capture import source
from analyzer.capture.source import STREAM_REPLAY_LIMIT, Source, is_stream
from analyzer.errors import CaptureError

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
CLIENT = CAPTURES / "clean-starttls" / "client-side.pcap"
SERVER = CAPTURES / "clean-starttls" / "server-side.pcap"
TIMEOUT_S = 60


class Run:
    """What one `smtpfw` process did."""

    def __init__(self, result: subprocess.CompletedProcess[bytes]) -> None:
        self.code = result.returncode
        self.out = result.stdout.decode()
        self.err = result.stderr.decode()


def _smtpfw(*args: str, stdin: bytes = b"") -> Run:
    return Run(
        subprocess.run(
            [sys.executable, "-m", "analyzer", *args],
            input=stdin,
            capture_output=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    )


def _count_line(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_sessions_from_standard_input_equal_the_file_s() -> None:
    from_file = _smtpfw("sessions", str(CLIENT)).out
    run = _smtpfw("sessions", "-", stdin=CLIENT.read_bytes())
    assert run.code == 0, run.err
    assert run.out == from_file
    assert _count_line(run.out) == "3 SMTP session(s)"


def test_dev_stdin_on_a_pipe_is_read_once_and_whole() -> None:
    run = _smtpfw("sessions", "/dev/stdin", stdin=CLIENT.read_bytes())
    assert run.code == 0, run.err
    assert _count_line(run.out) == "3 SMTP session(s)"


def test_a_gzip_compressed_stream_is_read_like_a_gzip_file() -> None:
    run = _smtpfw("sessions", "-", stdin=gzip.compress(CLIENT.read_bytes()))
    assert run.code == 0, run.err
    assert _count_line(run.out) == "3 SMTP session(s)"


def test_a_fifo_is_read_without_waiting_for_a_second_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(CLIENT.read_bytes())

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    run = _smtpfw("sessions", str(fifo))
    writer.join(TIMEOUT_S)
    assert run.code == 0, run.err
    assert _count_line(run.out) == "3 SMTP session(s)"


def test_a_process_substitution_is_read_like_a_file() -> None:
    result = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m analyzer sessions <(cat "{CLIENT}")'],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _count_line(result.stdout) == "3 SMTP session(s)"


def test_one_side_of_a_pair_from_standard_input(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    run = _smtpfw(
        "analyze",
        "--client-side",
        "-",
        "--server-side",
        str(SERVER),
        "--out",
        str(out_dir),
        "--format",
        "json",
        stdin=CLIENT.read_bytes(),
    )
    assert run.code == 0, run.err
    report = json.loads((out_dir / "report.json").read_text())
    assert len(report["pairs"]) == 3
    assert report["findings"] == []


def test_a_stream_given_the_wrong_way_round_is_read_again_from_what_was_kept(
    tmp_path: Path,
) -> None:
    out_dir = tmp_path / "out"
    run = _smtpfw(
        "analyze",
        "--client-side",
        "-",
        "--server-side",
        str(CLIENT),
        "--out",
        str(out_dir),
        "--format",
        "json",
        stdin=SERVER.read_bytes(),
    )
    assert run.code == 0, run.err
    report = json.loads((out_dir / "report.json").read_text())
    assert report["orientation"]["swapped"] is True
    assert len(report["pairs"]) == 3


def test_standard_input_for_both_sides_is_refused_as_one_capture(tmp_path: Path) -> None:
    run = _smtpfw(
        "analyze",
        "--client-side",
        "-",
        "--server-side",
        "/dev/stdin",
        "--out",
        str(tmp_path / "out"),
        stdin=CLIENT.read_bytes(),
    )
    assert run.code == 2
    assert "are the same capture" in run.err


def test_a_stream_that_is_not_a_capture_is_named_standard_input() -> None:
    run = _smtpfw("sessions", "-", stdin=b"hello, this is not a pcap file\n" * 4)
    assert run.code == 2
    assert run.err.startswith("smtpfw: error: standard input: not a pcap or pcapng file")
    assert len(run.err.strip().splitlines()) == 1


def test_the_tshark_engine_refuses_a_stream_instead_of_reading_it_twice() -> None:
    run = _smtpfw("sessions", "--engine", "tshark", "-", stdin=CLIENT.read_bytes())
    assert run.code == 2
    assert "the tshark engine reads files only" in run.err


# -- the shared stream, below the CLI ---------------------------------------------------------


def _pipe_with(data: bytes) -> tuple[Path, threading.Thread]:
    read_fd, write_fd = os.pipe()

    def write() -> None:
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return Path(f"/dev/fd/{read_fd}"), writer


def _read_all(path: Path) -> bytes:
    with Source(path) as src:
        parts = []
        buf = b""
        while True:
            buf = src.chunks.refill(b"", 0, 1)
            if not buf:
                return b"".join(parts)
            parts.append(buf)


def test_every_reader_of_a_small_stream_starts_at_its_first_byte() -> None:
    data = os.urandom(300_000)
    path, writer = _pipe_with(data)
    assert is_stream(path)
    with Source(path) as probe:
        assert probe.chunks.refill(b"", 0, 100)[:100] == data[:100]
    assert _read_all(path) == data
    assert _read_all(path) == data, "a stream within the replay limit is kept whole"
    writer.join(TIMEOUT_S)


def test_a_stream_beyond_the_replay_limit_is_read_once_then_refused() -> None:
    data = b"\xd4" * (STREAM_REPLAY_LIMIT + 1_000_000)
    path, writer = _pipe_with(data)
    assert _read_all(path) == data
    writer.join(TIMEOUT_S)
    assert not source.rereadable(path)
    with pytest.raises(CaptureError, match="can be read only once"):
        Source(path)


def test_a_regular_file_is_no_stream(tmp_path: Path) -> None:
    assert not is_stream(CLIENT)
    assert not is_stream(tmp_path)
    assert is_stream("-")
