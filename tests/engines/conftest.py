"""Shared pieces of the engine tests: where the captures are, and both engines' view of them.

tshark starts slowly (about a quarter of a second per run, three runs per capture), so the
tshark engine reads all the compared captures once per test session, two at a time.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from analyzer.session.model import SmtpSession
from tests.realworld_path import REALWORLD as _REALWORLD

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "captures"
REALWORLD = _REALWORLD

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")


def sample_captures() -> list[Path]:
    return sorted(p for p in SAMPLES.glob("*/*.pcap*") if p.is_file())


def comparable(session: SmtpSession) -> dict[str, Any]:
    """What both engines must agree on for one session."""
    tls = session.starttls
    return {
        "id": session.id,
        "client": session.client,
        "server": session.server,
        "helo": session.helo,
        "ehlo_keywords": session.ehlo_keywords,
        "starttls": (tls.advertised, tls.attempted, tls.reply_code, tls.established),
        "transactions": [
            {
                "mail_from": t.mail_from,
                "rcpt_to": t.rcpt_to,
                "message_id": t.message_id,
                "size": t.size,
                "complete": t.complete,
                "reply_code": t.reply_code,
                "dkim_signed": t.dkim_signed,
            }
            for t in session.transactions
        ],
        "end_reason": str(session.end_reason),
    }


class TsharkViews:
    """The tshark engine's sessions of many captures, read in parallel on first use."""

    def __init__(self, read: Callable[[list[str]], list[SmtpSession]]) -> None:
        self._read = read
        self._done: dict[Path, list[SmtpSession] | BaseException] = {}

    def prefetch(self, paths: list[Path]) -> None:
        todo = [p for p in paths if p not in self._done]

        def one(path: Path) -> tuple[Path, list[SmtpSession] | BaseException]:
            try:
                return path, self._read([str(path)])
            except Exception as exc:  # reported by the test that asks for this capture
                return path, exc

        with ThreadPoolExecutor(max_workers=2) as pool:
            for path, result in pool.map(one, todo):
                self._done[path] = result

    def sessions(self, path: Path) -> list[SmtpSession]:
        if path not in self._done:
            self.prefetch([path])
        result = self._done[path]
        if isinstance(result, BaseException):
            raise result
        return result


@pytest.fixture(scope="session")
def tshark_views() -> Iterator[TsharkViews]:
    if TSHARK is None:
        pytest.skip("tshark is not installed")
    from analyzer.engines.tshark import read_sessions_tshark

    yield TsharkViews(read_sessions_tshark)
