"""Errors for unusable *input* (unreadable files, bad arguments).

Odd content on the wire is never an error: it becomes an `Anomaly`. These exceptions are for
the cases where smtpfw cannot go on with a file at all; the CLI prints them as one line and
exits with status 2.
"""

from __future__ import annotations

from pathlib import Path


class SmtpfwError(Exception):
    """Base class of every error smtpfw raises on purpose."""


class CaptureError(SmtpfwError):
    """A capture file cannot be read: missing, bad magic, unknown format."""

    def __init__(self, path: Path | str, problem: str) -> None:
        # `-` is how standard input is given as a capture
        super().__init__(f"{'standard input' if str(path) == '-' else path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class UsageError(SmtpfwError):
    """Arguments that do not make sense together."""
