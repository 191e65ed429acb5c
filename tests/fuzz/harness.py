"""Run one fuzz target on one capture in a child process with a time and a memory limit.

A target is the public API (`analyzer.read_sessions` and `analyzer.analyze`, which also give
the facts the oracles need: how many sessions, what the reader noticed) or one CLI command
(`sessions`, `analyze` one-sided, `analyze` two-sided against an intact other side, `sessions`
read by two worker processes). Each runs in a forked child: its address space limited to what
it had plus `Limits.memory` (RLIMIT_AS), a timer raising `Timeout` after `Limits.seconds`, its
stdout and stderr in files. What happened comes back as a `Result`; judging it is `oracles`'
job. With `subprocess=True` a CLI target runs as a real `python -m analyzer` instead.

The CLI runs with SMTPFW_DEBUG=1, so that a bug surfaces as its traceback (without it the same
bug is exit status 3 and one line, which is a failure too) and can be bucketed by frame.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("api", "sessions", "analyze", "analyze2", "sessions-workers")
"""Every target; `api` always runs, since the oracles judge the others by its facts."""
OUTPUT_KEPT = 20_000
"""Characters of a child's stdout and stderr kept in its `Result`."""


class Timeout(BaseException):
    """Raised in a child when its time is up: a BaseException, so no `except Exception` in the
    code under test swallows it, and its traceback says where the time went."""


@dataclass(frozen=True, slots=True)
class Limits:
    seconds: float = 20.0
    """Wall time per target run."""
    memory: int = 1 << 30
    """Address space a run may add to what the child had when it started (RLIMIT_AS)."""


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Task:
    """One target to run on one capture file."""

    target: str
    path: Path
    """The capture under test."""
    workdir: Path
    """Where outputs go (`--out` folders)."""
    other: Path | None = None
    """The intact capture for `analyze2`."""
    mutant_side: str = "client"
    """`analyze2`: which side the capture under test is given as."""
    prefix: Path | None = None
    """`api`: the readable prefix of `path`, whose sessions are counted too."""
    subprocess: bool = False

    def argv(self) -> list[str]:
        """The CLI arguments of a CLI target."""
        if self.target in ("sessions", "sessions-workers"):
            return ["sessions", str(self.path)]
        out = ["--out", str(self.workdir / f"out-{self.target}")]
        if self.target == "analyze":
            return ["analyze", str(self.path), *out]
        assert self.target == "analyze2" and self.other is not None
        client, server = (
            (self.path, self.other) if self.mutant_side == "client" else (self.other, self.path)
        )
        return ["analyze", "--client-side", str(client), "--server-side", str(server), *out]

    def environment(self) -> dict[str, str]:
        return {
            "SMTPFW_DEBUG": "1",
            "SMTPFW_WORKERS": "2" if self.target == "sessions-workers" else "1",
        }


@dataclass(slots=True)
class Result:
    """What one target run did."""

    target: str
    status: str
    """"returned" (the API returned or the CLI exited with `exit_code`), "raised" (an
    exception escaped: `exception`, `frames`), "timeout", "killed" (`signal`), or "lost" (the
    child died without a word)."""
    exit_code: int | None = None
    exception: str | None = None
    """Type name of the exception that escaped (MemoryError, Timeout, ...)."""
    message: str = ""
    frames: list[tuple[str, str, int]] = field(default_factory=list)
    """(file, function, line) of the traceback, outermost first."""
    stdout: str = ""
    stderr: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    """`api`: sessions, analyze_sessions, prefix_sessions, packets, anomalies, error."""
    signal: int | None = None
    seconds: float = 0.0
    max_rss_kb: int = 0


def _vm_size() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise Timeout("time limit")


def _api(task: Task) -> dict[str, Any]:
    import analyzer

    facts: dict[str, Any] = {}
    try:
        facts["sessions"] = len(analyzer.read_sessions(task.path))
        analysis = analyzer.analyze(task.path)
    except analyzer.SmtpfwError as exc:
        facts["error"] = str(exc)
    else:
        stats = analysis.captures[0].stats
        facts["analyze_sessions"] = len(analysis.sessions)
        facts["packets"] = stats.packets
        facts["anomalies"] = dict(stats.anomaly_counts)
        facts["findings"] = len(analysis.findings)
    if task.prefix is not None:
        facts["prefix_sessions"] = len(analyzer.read_sessions(task.prefix))
    return facts


def _child(task: Task, limits: Limits, result_path: Path) -> None:
    """Body of the forked child: never returns."""
    code = 0
    try:
        os.setpgid(0, 0)
        base = _vm_size()
        if base and limits.memory:
            cap = base + limits.memory
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        out = os.open(task.workdir / f"{task.target}.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        err = os.open(task.workdir / f"{task.target}.err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(err, 2)
        stdout = open(1, "wb", closefd=False)  # noqa: SIM115 - the child's own stdout
        stderr = open(2, "wb", closefd=False)  # noqa: SIM115
        sys.stdout = io.TextIOWrapper(stdout, write_through=True)
        sys.stderr = io.TextIOWrapper(stderr, write_through=True)
        sys.stdin = io.TextIOWrapper(io.BytesIO())
        os.environ.update(task.environment())
        result = Result(task.target, "returned")
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limits.seconds)
        try:
            if task.target == "api":
                result.facts = _api(task)
            else:
                from analyzer.cli import main

                result.exit_code = main(task.argv())
        except SystemExit as exc:
            result.exit_code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:
            signal.setitimer(signal.ITIMER_REAL, 0)
            result.status = "timeout" if isinstance(exc, Timeout) else "raised"
            result.exception = type(exc).__name__
            result.message = str(exc)[:500]
            result.frames = [
                (f.filename, f.name, f.lineno or 0) for f in traceback.extract_tb(exc.__traceback__)
            ]
            del exc
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout.flush()
        sys.stderr.flush()
        result_path.write_text(json.dumps(asdict(result)))
    except BaseException:
        code = 70
    os._exit(code)


def _read_output(task: Task, result: Result) -> None:
    for stream in ("stdout", "stderr"):
        path = task.workdir / f"{task.target}.{stream[3:]}"
        with contextlib.suppress(OSError):
            setattr(result, stream, path.read_text(errors="replace")[:OUTPUT_KEPT])


class _Running:
    __slots__ = ("deadline", "pid", "result_path", "started", "task")

    def __init__(self, task: Task, pid: int, result_path: Path, limits: Limits) -> None:
        self.task = task
        self.pid = pid
        self.result_path = result_path
        self.started = time.monotonic()
        self.deadline = self.started + limits.seconds + 10.0


def _collect(running: _Running, status: int, rusage: Any) -> Result:
    task = running.task
    try:
        data = json.loads(running.result_path.read_text())
        data["frames"] = [tuple(f) for f in data["frames"]]
        result = Result(**data)
    except (OSError, ValueError, TypeError):
        if os.WIFSIGNALED(status):
            result = Result(task.target, "killed", signal=os.WTERMSIG(status))
        else:
            result = Result(task.target, "lost", exit_code=os.waitstatus_to_exitcode(status))
    result.seconds = time.monotonic() - running.started
    result.max_rss_kb = int(rusage.ru_maxrss)
    _read_output(task, result)
    return result


def _kill(running: _Running) -> None:
    """Kill a child that has not been reaped yet, and its process group."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(OSError):
            kill(running.pid, signal.SIGKILL)


def _finished(pids: Sequence[int]) -> int | None:
    """One of `pids` that has exited, left unreaped (so its pid and group stay ours)."""
    for pid in pids:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None and info.si_pid == pid:
            return pid
    return None


def run_tasks(
    tasks: Sequence[Task], limits: Limits = DEFAULT_LIMITS, jobs: int = 1
) -> list[Result]:
    """Run every task, `jobs` at a time, and return their results in task order."""
    results: list[Result | None] = [None] * len(tasks)
    pending = list(enumerate(tasks))
    pending.reverse()
    running: dict[int, tuple[int, _Running]] = {}
    while pending or running:
        while pending and len(running) < max(1, jobs):
            index, task = pending.pop()
            if task.subprocess and task.target != "api":
                results[index] = _run_subprocess(task, limits)
                continue
            started = _start(task, limits)
            running[started.pid] = (index, started)
        if not running:
            continue
        finished = _finished(list(running))
        if finished is None:
            now = time.monotonic()
            for index, child in list(running.values()):
                if now > child.deadline:
                    _kill(child)
                    os.waitpid(child.pid, 0)
                    del running[child.pid]
                    late = Result(child.task.target, "timeout", exception="unresponsive")
                    late.seconds = now - child.started
                    _read_output(child.task, late)
                    results[index] = late
            time.sleep(0.001)
            continue
        index, child = running.pop(finished)
        _kill(child)  # grandchildren (worker processes) must not outlive it
        _, status, rusage = os.wait4(finished, 0)
        results[index] = _collect(child, status, rusage)
    return [r for r in results if r is not None]


def _start(task: Task, limits: Limits) -> _Running:
    task.workdir.mkdir(parents=True, exist_ok=True)
    result_path = task.workdir / f"{task.target}.result.json"
    result_path.unlink(missing_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(task, limits, result_path)
    return _Running(task, pid, result_path, limits)


def _run_subprocess(task: Task, limits: Limits) -> Result:
    """A CLI target as a real `python -m analyzer`, its traceback read from stderr."""
    task.workdir.mkdir(parents=True, exist_ok=True)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory * 2, limits.memory * 2))

    started = time.monotonic()
    env = {**os.environ, **task.environment(), "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "analyzer", *task.argv()],
            capture_output=True,
            timeout=limits.seconds + 5,
            env=env,
            preexec_fn=limit,
            cwd=task.workdir,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        result = Result(task.target, "timeout", exception="unresponsive")
        result.stderr = (exc.stderr or b"").decode(errors="replace")[:OUTPUT_KEPT]
        return result
    result = Result(task.target, "returned", exit_code=done.returncode)
    result.stdout = done.stdout.decode(errors="replace")[:OUTPUT_KEPT]
    result.stderr = done.stderr.decode(errors="replace")[:OUTPUT_KEPT]
    result.seconds = time.monotonic() - started
    if done.returncode < 0:
        result.status, result.signal = "killed", -done.returncode
    parsed = parse_traceback(result.stderr)
    if parsed is not None:
        result.status = "raised"
        result.exception, result.frames = parsed
    return result


def parse_traceback(text: str) -> tuple[str, list[tuple[str, str, int]]] | None:
    """The exception type and frames of the last Python traceback in `text`, if any."""
    start = text.rfind("Traceback (most recent call last):")
    if start < 0:
        return None
    frames: list[tuple[str, str, int]] = []
    exception = "?"
    for line in text[start:].splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith('File "'):
            try:
                name, rest = stripped[6:].split('", line ', 1)
                number, _, func = rest.partition(", in ")
                frames.append((name, func, int(number)))
            except ValueError:
                continue
        elif line and not line.startswith(" "):
            exception = line.split(":", 1)[0].rsplit(".", 1)[-1]
    return exception, frames
