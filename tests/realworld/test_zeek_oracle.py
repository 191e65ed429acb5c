"""Every SMTP trace in Zeek's test suite gives the sessions Zeek's own smtp.log baselines state.

Per smtp.log row (one row per transaction), the session with the same client and server
endpoints must have the same HELO name, MAIL FROM, RCPT TO set and TLS flag at that
transaction. Where smtpfw deliberately differs from Zeek, the difference is listed in
`KNOWN_DIFFERENCES` with the reason; it is asserted, not skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import read_sessions
from analyzer.session.model import SmtpSession

from .zeek import ZeekRow, read_smtp_log, traces_by_test

ZEEK = Path(__file__).resolve().parents[3] / "shared" / "realworld" / "zeek"

# (btest name, client endpoint, trans_depth, field) → why smtpfw's value differs from Zeek's.
KNOWN_DIFFERENCES: dict[tuple[str, str, int, str], str] = {}


def _cases() -> list[tuple[str, str, Path]]:
    if not ZEEK.is_dir():
        return []
    traces = traces_by_test(ZEEK / "TESTS.md")
    cases = []
    for log in sorted(ZEEK.glob("baselines/*/smtp.log")):
        test = log.parent.name
        if test in traces:
            cases.append((test, traces[test], log))
    return cases


CASES = _cases()


def _session_for(sessions: list[SmtpSession], row: ZeekRow) -> SmtpSession | None:
    return next(
        (s for s in sessions if s.client == row.client and s.server == row.server), None
    )


def _ours(session: SmtpSession, row: ZeekRow) -> dict[str, object]:
    index = row.trans_depth - 1
    txn = session.transactions[index] if index < len(session.transactions) else None
    return {
        "helo": session.helo,
        "mailfrom": txn.mail_from if txn else None,
        "rcptto": frozenset(txn.rcpt_to) if txn else frozenset(),
        "tls": session.starttls.reply_code == 220,
    }


@pytest.mark.skipif(not CASES, reason="Zeek baselines not available")
@pytest.mark.parametrize(("test", "trace", "log"), CASES, ids=[c[0] for c in CASES])
def test_sessions_agree_with_zeek_smtp_log(test: str, trace: str, log: Path) -> None:
    sessions = read_sessions(ZEEK / "traces" / trace)
    rows = read_smtp_log(log)
    assert rows, f"{log} has no rows"
    for row in rows:
        session = _session_for(sessions, row)
        assert session is not None, f"no session {row.client} → {row.server} in {trace}"
        ours = _ours(session, row)
        theirs = {"helo": row.helo, "mailfrom": row.mailfrom, "rcptto": row.rcptto, "tls": row.tls}
        for field, expected in theirs.items():
            key = (test, row.client, row.trans_depth, field)
            if key in KNOWN_DIFFERENCES:
                assert ours[field] != expected, f"{key} now agrees with Zeek: drop the exception"
                continue
            assert ours[field] == expected, (
                f"{trace} {row.client} transaction {row.trans_depth}: {field} = {ours[field]!r}, "
                f"Zeek says {expected!r}"
            )
