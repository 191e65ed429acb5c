"""Drive one headless Chromium over the DevTools protocol on a pipe, for the browser tests.

What it does: starts Chromium once (`--remote-debugging-pipe`: commands on fd 3, replies on
fd 4, NUL-terminated JSON), then for each page opens a tab of the given size, loads the file,
waits for its load event and returns the rendered DOM, a PNG screenshot of the window and what
the page reported on its console (uncaught exceptions, Content-Security-Policy refusals, errors).
One browser for all pages: starting Chromium costs about a second each time.
What it does not do: download a browser (Debian's `chromium` package provides it), reach the
network (every networking feature that could is switched off), or interact with the page.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-pipe",
)
CDP_IN_FD = 3
"""Chromium reads DevTools commands from this descriptor (`--remote-debugging-pipe`)."""
CDP_OUT_FD = 4
"""Chromium writes DevTools replies and events to this descriptor."""


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@dataclass
class Page:
    """A page as the browser rendered it."""

    dom: str
    png: bytes
    console: list[str] = field(default_factory=list)
    """Uncaught exceptions and console/log errors, as text."""


class BrowserError(Exception):
    pass


class Chromium:
    def __init__(self, executable: str, profile: Path, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        commands_r, self._commands = os.pipe()
        self._replies, replies_w = os.pipe()

        def plumb() -> None:  # in the child: the pipe ends at fds 3 and 4
            a = fcntl.fcntl(commands_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(replies_w, fcntl.F_DUPFD, 10)
            os.dup2(a, CDP_IN_FD)
            os.dup2(b, CDP_OUT_FD)

        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(CDP_IN_FD, CDP_OUT_FD),
            preexec_fn=plumb,
        )
        os.close(commands_r)
        os.close(replies_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self._send("Browser.close", {})
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._commands, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- protocol ------------------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("timed out waiting for the browser")
            ready, _, _ = select.select([self._replies], [], [], left)
            if ready:
                chunk = os.read(self._replies, 1 << 20)
                if not chunk:
                    raise BrowserError("the browser closed its pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def _send(self, method: str, params: dict[str, Any], session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        return self._next_id

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        wanted = self._send(method, params or {}, session)
        deadline = time.monotonic() + self.timeout_s
        while True:
            message = self._read_message(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self._events.append(message)

    def wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            for i, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session:
                    del self._events[i]
                    return
            message = self._read_message(deadline)
            if "method" in message:
                self._events.append(message)

    # -- pages ---------------------------------------------------------------------------------

    def render(self, path: Path, width: int, height: int) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(domain, {}, session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session)
        self.wait_for("Page.loadEventFired", session)
        dom = self.call(
            "Runtime.evaluate",
            {
                "expression": "document.documentElement.outerHTML",
                "returnByValue": True,
            },
            session,
        )["result"]["value"]
        shot = self.call("Page.captureScreenshot", {"format": "png"}, session)["data"]
        console = [
            self._describe(e)
            for e in self._events
            if e.get("sessionId") == session and self._is_problem(e)
        ]
        self._events = [e for e in self._events if e.get("sessionId") != session]
        self.call("Target.closeTarget", {"targetId": target})
        return Page(dom=dom, png=base64.b64decode(shot), console=console)

    @staticmethod
    def _is_problem(event: dict[str, Any]) -> bool:
        method = event.get("method")
        params = event.get("params", {})
        if method == "Runtime.exceptionThrown":
            return True
        if method == "Log.entryAdded":
            return bool(params.get("entry", {}).get("level") in ("error", "warning"))
        if method == "Runtime.consoleAPICalled":
            return bool(params.get("type") in ("error", "warning", "assert"))
        return False

    @staticmethod
    def _describe(event: dict[str, Any]) -> str:
        params = event.get("params", {})
        if event.get("method") == "Log.entryAdded":
            return str(params.get("entry", {}).get("text"))
        if event.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            return str(details.get("exception", {}).get("description") or details.get("text"))
        return json.dumps(params)[:500]
