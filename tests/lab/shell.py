"""Run commands and long-lived programs for the lab, optionally inside a network namespace.

What it does: runs a command and raises `LabError` (with its output) when it fails; starts a
background program and waits for a line on its output that says it is ready (or until it
listens, for programs that say nothing); stops programs by
their own process id (SIGTERM or SIGINT, then SIGKILL after a grace period).
What it does not do: know anything about the topology or SMTP.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 5.0


class LabError(RuntimeError):
    """The lab itself could not do what a scenario needs (not a finding about the traffic)."""


def in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    """`argv` prefixed so that it runs inside `netns` (unchanged when netns is None)."""
    if netns is None:
        return list(argv)
    return ["ip", "netns", "exec", netns, *argv]


def python_module(module: str, *args: str) -> list[str]:
    """argv running `python -m lab.<module>` with this interpreter."""
    return [sys.executable, "-m", f"lab.{module}", *args]


def lab_env() -> dict[str, str]:
    """Environment for lab programs: this package importable as `lab`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), env.get("PYTHONPATH", "")) if p)
    return env


def run(
    argv: Sequence[str],
    *,
    netns: str | None = None,
    check: bool = True,
    timeout: float = 60.0,
    input_bytes: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command to completion; LabError naming it when it fails and `check` is set."""
    full = in_netns(netns, argv)
    try:
        proc = subprocess.run(
            full,
            capture_output=True,
            timeout=timeout,
            input=input_bytes,
            env=lab_env(),
            check=False,
        )
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {full[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(full)}") from exc
    if check and proc.returncode != 0:
        raise LabError(
            f"{' '.join(full)} exited {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace').strip()[-2000:]}"
        )
    return proc


@dataclass
class Program:
    """A background program the lab started, known by its own process id."""

    name: str
    popen: subprocess.Popen[bytes]
    output: list[str] = field(default_factory=list)
    stop_signal: int = signal.SIGTERM
    """What asks it to finish cleanly (haproxy: SIGUSR1, its soft stop)."""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, sig: int | None = None, grace: float = STOP_GRACE_SECONDS) -> int:
        """Signal the program, wait, kill it if it lingers; return its exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(self.stop_signal if sig is None else sig)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=grace)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                rest = stream.read()
                if rest:
                    self.output.extend(rest.decode(errors="replace").splitlines())
                stream.close()
        return self.popen.returncode


def listening(netns: str | None, port: int) -> bool:
    """True when a TCP socket listens on `port` (any address) inside `netns`."""
    out = run(["ss", "-Hltn", "sport", "=", f":{port}"], netns=netns, check=False).stdout
    return bool(out.strip())


def start(
    name: str,
    argv: Sequence[str],
    *,
    netns: str | None = None,
    ready_marker: str | None = None,
    ready: Callable[[], bool] | None = None,
    timeout: float = 15.0,
) -> Program:
    """Start a program; wait until `ready_marker` appears on its stdout or stderr, or `ready()`.

    Programs that print nothing when they are ready (nginx, haproxy) are asked by `ready`.
    """
    full = in_netns(netns, argv)
    try:
        popen = subprocess.Popen(
            full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=lab_env(),
        )
    except FileNotFoundError as exc:
        raise LabError(f"{name}: command not found: {full[0]}") from exc
    prog = Program(name, popen)
    streams = [s for s in (popen.stdout, popen.stderr) if s is not None]
    for s in streams:
        os.set_blocking(s.fileno(), False)
    pending = {s.fileno(): b"" for s in streams}
    sel = selectors.DefaultSelector()
    for s in streams:
        sel.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.05):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                pending[key.fd] += chunk
                *lines, pending[key.fd] = pending[key.fd].split(b"\n")
                prog.output.extend(line.decode(errors="replace") for line in lines)
                if ready_marker is not None and any(ready_marker in x for x in prog.output):
                    return prog
            if ready is not None and popen.poll() is None and ready():
                return prog
            if popen.poll() is not None and not sel.get_map():
                break
        prog.stop(signal.SIGKILL, grace=1.0)
        raise LabError(
            f"{name} was not ready ({ready_marker or 'listening'}) within {timeout}s "
            f"(exit {popen.returncode}): {' | '.join(prog.output)[-2000:]}"
        )
    finally:
        sel.close()
        for s in streams:
            if not s.closed:
                os.set_blocking(s.fileno(), True)
