"""Judge what the targets did with one capture: a result, or a one-line error naming the file.

Everything else is a `Failure` with a bucket name:

- `crash:<Exception>@<file>:<function>` an exception escaped (innermost analyzer frame);
  `memory@...` a MemoryError (the RLIMIT_AS limit); `hang@...` the time limit, where it was
  spent; `hang:unresponsive` killed after ignoring the timer; `killed:<signal>`;
- `exit-status:<n>` the CLI exited with a status other than 0, 1 or 2;
- `traceback-on-stderr`; `error-unnamed` (exit 2 without a line naming the file),
  `error-format` (exit 2 with stderr lines other than smtpfw's own);
- `silent:<kind>` the CLI exited 0 or 1 and neither stderr nor stdout names the file although
  the reader noticed damage of that kind (`truncated_record`, `bad_block`, `malformed_packet`:
  as `analyzer.analyze` reports it in the capture's anomaly counts), or the file is empty
  (`silent:empty-file`), or damaged with not one record read (`silent:nothing-usable`), both of
  which must exit 2;
- `report-silent:<kind>` report.json does not mention damage the reader noticed;
- `unnoticed:<damage>` an intact file cut in the middle of a record, or gzip cut short or with
  a wrong trailer, read without a truncation or bad-block anomaly and without an error;
- `lost-sessions` fewer sessions than the file's readable prefix holds (files that were only cut
  short: the prefix is their header and complete records, read as an intact file);
- `cli-api-mismatch` `smtpfw sessions`/`analyze` count other sessions than the API;
- `workers-differ` `smtpfw sessions` prints other rows with two worker processes than with one.

The "names the file" test looks for the file's name in the output; the fuzzer's output folders
are named so that they cannot contain it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.fuzz.harness import Result, Task

DAMAGE_KINDS = ("truncated_record", "bad_block", "malformed_packet")
"""Anomaly kinds that say the file itself is damaged, which the CLI must say (issue: a file
cut short, with a bad block or malformed packets never exits 0 silently)."""
STOP_KINDS = ("truncated_record", "bad_block")
"""Anomaly kinds with which a reader says it could not read a file to its end."""
ALLOWED_EXIT = (0, 1, 2)

_SESSIONS_LINE = re.compile(r"^(\d+) SMTP session\(s\)$", re.MULTILINE)
_ANALYZE_LINE = re.compile(r"^(\d+) session\(s\)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Failure:
    bucket: str
    target: str
    detail: str


def innermost(frames: Sequence[tuple[str, str, int]]) -> str:
    """`file:function` of the innermost frame inside the analyzer package, else the last."""
    for filename, func, _ in reversed(frames):
        parts = Path(filename).parts
        if "analyzer" in parts:
            rel = parts[len(parts) - 1 - parts[::-1].index("analyzer") + 1 :]
            return f"{'/'.join(rel)}:{func}"
    if frames:
        filename, func, _ = frames[-1]
        return f"{Path(filename).name}:{func}"
    return "?"


def _exception_failure(result: Result) -> Failure | None:
    where = innermost(result.frames)
    if result.status == "timeout":
        if result.exception == "unresponsive":
            return Failure("hang:unresponsive", result.target, "killed after the time limit")
        return Failure(f"hang@{where}", result.target, f"time limit at {where}")
    if result.status == "raised":
        if result.exception == "MemoryError":
            return Failure(f"memory@{where}", result.target, result.message)
        return Failure(
            f"crash:{result.exception}@{where}",
            result.target,
            f"{result.exception}: {result.message}",
        )
    if result.status == "killed":
        return Failure(f"killed:{result.signal}", result.target, f"signal {result.signal}")
    if result.status == "lost":
        return Failure("lost-child", result.target, f"child exited {result.exit_code}")
    return None


def _names(text: str, path: Path) -> bool:
    return str(path) in text or path.name in text


def judge(
    tasks: Sequence[Task],
    results: Sequence[Result],
    tellable: str | None = None,
) -> list[Failure]:
    """Every failure among the results of one capture's targets (the first task is `api`)."""
    failures: list[Failure] = []
    by_target: dict[str, Result] = {}
    for task, result in zip(tasks, results, strict=True):
        by_target[task.target] = result
        failure = _exception_failure(result)
        if failure is not None:
            failures.append(failure)
    api = by_target.get("api")
    facts: Mapping[str, object] = api.facts if api is not None and api.status == "returned" else {}
    path = tasks[0].path
    if facts:
        failures += _judge_api(facts, tellable)
    for task, result in zip(tasks, results, strict=True):
        if task.target == "api" or result.status != "returned":
            continue
        failures += _judge_cli(task, result, facts, path)
    plain, workers = by_target.get("sessions"), by_target.get("sessions-workers")
    if (
        plain is not None
        and workers is not None
        and plain.status == workers.status == "returned"
        and (plain.stdout, plain.exit_code) != (workers.stdout, workers.exit_code)
    ):
        failures.append(
            Failure("workers-differ", "sessions-workers", "other rows with two worker processes")
        )
    return failures


def _anomalies(facts: Mapping[str, object]) -> Mapping[str, int]:
    value = facts.get("anomalies")
    return value if isinstance(value, dict) else {}


def _judge_api(facts: Mapping[str, object], tellable: str | None) -> list[Failure]:
    failures = []
    anomalies = _anomalies(facts)
    if tellable and "error" not in facts and not any(anomalies.get(k) for k in STOP_KINDS):
        failures.append(
            Failure(f"unnoticed:{tellable}", "api", f"read without a stop anomaly: {anomalies}")
        )
    sessions, prefix = facts.get("sessions"), facts.get("prefix_sessions")
    if isinstance(prefix, int) and prefix > (sessions if isinstance(sessions, int) else 0):
        failures.append(
            Failure("lost-sessions", "api", f"{sessions} session(s), the prefix holds {prefix}")
        )
    return failures


NO_OVERLAP_VERDICT = "These captures do not overlap"
"""The two-sided verdict's headline when the captures share no session (exit 2)."""


def _judge_cli(
    task: Task, result: Result, facts: Mapping[str, object], path: Path
) -> list[Failure]:
    failures = []
    target, code = task.target, result.exit_code
    said = result.stderr + result.stdout
    if "Traceback (most recent call last)" in result.stderr:
        failures.append(Failure("traceback-on-stderr", target, result.stderr[-300:]))
    if code not in ALLOWED_EXIT:
        failures.append(Failure(f"exit-status:{code}", target, result.stderr[-300:]))
        return failures
    if code == 2 and NO_OVERLAP_VERDICT in result.stdout and not result.stderr.strip():
        # Two sides that share no session: a verdict (README: exit 2), not a read error.
        return failures
    if code == 2:
        if not _names(result.stderr, path):
            failures.append(Failure("error-unnamed", target, result.stderr[-300:]))
        elif any(not line.startswith("smtpfw") for line in result.stderr.splitlines()):
            failures.append(Failure("error-format", target, result.stderr[-300:]))
        return failures
    size = path.stat().st_size if path.exists() else -1
    anomalies = _anomalies(facts)
    damage = [k for k in DAMAGE_KINDS if anomalies.get(k)]
    if size == 0:
        failures.append(Failure("silent:empty-file", target, f"exit {code} on a zero-byte file"))
    elif damage and facts.get("packets") == 0:
        failures.append(
            Failure("silent:nothing-usable", target, f"exit {code}, no record read: {damage}")
        )
    elif damage and not _names(said, path):
        failures.append(
            Failure(f"silent:{damage[0]}", target, f"exit {code}, file not named: {anomalies}")
        )
    if target.startswith("analyze") and damage:
        report = task.workdir / f"out-{target}" / "report.json"
        text = report.read_text(errors="replace") if report.exists() else ""
        for kind in damage:
            if kind not in text:
                failures.append(Failure(f"report-silent:{kind}", target, "not in report.json"))
    counted = _count(target, result.stdout)
    expected = facts.get("sessions" if target.startswith("sessions") else "analyze_sessions")
    if counted is not None and isinstance(expected, int) and counted != expected:
        failures.append(
            Failure("cli-api-mismatch", target, f"CLI {counted} session(s), API {expected}")
        )
    return failures


def _count(target: str, stdout: str) -> int | None:
    if target == "analyze2":
        return None
    pattern = _SESSIONS_LINE if target.startswith("sessions") else _ANALYZE_LINE
    found = pattern.findall(stdout)
    return int(found[-1]) if found else None
