"""The fuzzer's judge tells a failure from a good outcome: each bucket fires on its case, and
a result or a one-line error naming the file passes.

A fuzzer whose oracle never fires finds nothing; one that fires on good outcomes buries the
real failures. These cases are the outcomes the CLI and the API can have, written out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.harness import Result, Task
from tests.fuzz.oracles import Failure, innermost, judge

INTACT = {"sessions": 3, "analyze_sessions": 3, "packets": 89, "anomalies": {}}
CUT = {"sessions": 3, "analyze_sessions": 3, "packets": 88, "anomalies": {"truncated_record": 1}}


def _capture(tmp_path: Path, data: bytes = b"\xd4\xc3\xb2\xa1" + b"\0" * 40) -> Path:
    path = tmp_path / "mutant.pcap"
    path.write_bytes(data)
    return path


def _judge(tmp_path: Path, facts: dict[str, object], *cli: Result) -> list[Failure]:
    path = _capture(tmp_path)
    tasks = [Task("api", path, tmp_path)] + [Task(r.target, path, tmp_path) for r in cli]
    results = [Result("api", "returned", facts=facts), *cli]
    return judge(tasks, results)


def _buckets(failures: list[Failure]) -> list[str]:
    return [f.bucket for f in failures]


def test_a_result_with_its_session_count_passes(tmp_path: Path) -> None:
    ok = Result("sessions", "returned", exit_code=0, stdout="...\n3 SMTP session(s)\n")
    assert _judge(tmp_path, INTACT, ok) == []


def test_a_one_line_error_naming_the_file_passes(tmp_path: Path) -> None:
    path = _capture(tmp_path)
    error = Result("sessions", "returned", exit_code=2, stderr=f"smtpfw: error: {path}: bad\n")
    assert _judge(tmp_path, INTACT, error) == []


def test_an_error_that_does_not_name_the_file_fails(tmp_path: Path) -> None:
    error = Result("sessions", "returned", exit_code=2, stderr="smtpfw: error: bad input\n")
    assert _buckets(_judge(tmp_path, INTACT, error)) == ["error-unnamed"]


def test_an_error_with_other_lines_than_smtpfw_s_own_fails(tmp_path: Path) -> None:
    path = _capture(tmp_path)
    noisy = Result(
        "sessions", "returned", exit_code=2, stderr=f"smtpfw: error: {path}: bad\nwarning: x\n"
    )
    assert _buckets(_judge(tmp_path, INTACT, noisy)) == ["error-format"]


def test_an_exit_status_outside_0_1_2_fails(tmp_path: Path) -> None:
    internal = Result("sessions", "returned", exit_code=3, stderr="smtpfw: internal error\n")
    assert _buckets(_judge(tmp_path, INTACT, internal)) == ["exit-status:3"]


def test_a_traceback_on_stderr_fails_whatever_the_status(tmp_path: Path) -> None:
    crashed = Result(
        "sessions",
        "returned",
        exit_code=1,
        stderr="Traceback (most recent call last):\n  ...\nValueError: x\n",
        stdout="3 SMTP session(s)\n",
    )
    assert "traceback-on-stderr" in _buckets(_judge(tmp_path, INTACT, crashed))


def test_exit_0_on_a_damaged_file_without_naming_it_is_silent(tmp_path: Path) -> None:
    quiet = Result("sessions", "returned", exit_code=0, stdout="3 SMTP session(s)\n")
    assert _buckets(_judge(tmp_path, CUT, quiet)) == ["silent:truncated_record"]


def test_exit_0_on_a_damaged_file_that_names_it_passes(tmp_path: Path) -> None:
    path = _capture(tmp_path)
    warned = Result(
        "sessions",
        "returned",
        exit_code=0,
        stdout="3 SMTP session(s)\n",
        stderr=f"smtpfw: warning: {path}: cut short in the middle of a record (1)\n",
    )
    assert _judge(tmp_path, CUT, warned) == []


def test_exit_0_on_a_zero_byte_file_fails(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    tasks = [Task("api", empty, tmp_path), Task("sessions", empty, tmp_path)]
    results = [
        Result("api", "returned", facts={"sessions": 0, "packets": 0, "anomalies": {}}),
        Result("sessions", "returned", exit_code=0, stdout="0 SMTP session(s)\n"),
    ]
    assert _buckets(judge(tasks, results)) == ["silent:empty-file"]


def test_fewer_sessions_than_the_readable_prefix_holds_are_lost(tmp_path: Path) -> None:
    facts = dict(CUT, sessions=2, prefix_sessions=3)
    assert "lost-sessions" in _buckets(_judge(tmp_path, facts))


def test_the_cli_counting_other_sessions_than_the_api_fails(tmp_path: Path) -> None:
    other = Result("sessions", "returned", exit_code=0, stdout="2 SMTP session(s)\n")
    assert _buckets(_judge(tmp_path, INTACT, other)) == ["cli-api-mismatch"]


def test_two_worker_processes_printing_other_rows_fail(tmp_path: Path) -> None:
    one = Result("sessions", "returned", exit_code=0, stdout="a\n3 SMTP session(s)\n")
    two = Result("sessions-workers", "returned", exit_code=0, stdout="b\n3 SMTP session(s)\n")
    assert _buckets(_judge(tmp_path, INTACT, one, two)) == ["workers-differ"]


@pytest.mark.parametrize(
    ("result", "bucket"),
    [
        (Result("api", "timeout", exception="Timeout"), "hang@"),
        (Result("api", "timeout", exception="unresponsive"), "hang:unresponsive"),
        (Result("api", "raised", exception="MemoryError"), "memory@"),
        (Result("api", "raised", exception="KeyError", message="'x'"), "crash:KeyError@"),
        (Result("api", "killed", signal=9), "killed:9"),
        (Result("api", "lost", exit_code=139), "lost-child"),
    ],
)
def test_an_api_run_that_did_not_return_is_bucketed_by_what_happened(
    tmp_path: Path, result: Result, bucket: str
) -> None:
    path = _capture(tmp_path)
    failures = judge([Task("api", path, tmp_path)], [result])
    assert len(failures) == 1
    assert failures[0].bucket.startswith(bucket)


def test_a_crash_is_bucketed_by_the_innermost_analyzer_frame() -> None:
    frames = [
        ("/x/tests/fuzz/harness.py", "_api", 1),
        ("/x/analyzer/pipeline.py", "analyze", 2),
        ("/x/analyzer/capture/pcap.py", "read_records", 3),
        ("/usr/lib/python3/struct.py", "unpack", 4),
    ]
    assert innermost(frames) == "capture/pcap.py:read_records"
