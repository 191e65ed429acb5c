"""Every SMTP trace in Zeek's test suite gives the sessions Zeek's own smtp.log baselines state.

Per smtp.log row (one row per transaction), the session with the same client and server
endpoints must have the same HELO name, MAIL FROM, RCPT TO set and TLS flag at that
transaction. Where smtpfw deliberately differs from Zeek, the difference is listed in
`KNOWN_DIFFERENCES` with the reason; it is asserted, not skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from analyzer import read_sessions
from analyzer.session.model import SmtpSession
from tests.realworld_path import REALWORLD

from .zeek import ZeekRow, read_smtp_log, traces_by_test

ZEEK = REALWORLD / "zeek"


@dataclass(frozen=True)
class Known:
    """A smtp.log row that maps to another of smtpfw's transactions (or none), and why."""

    why: str
    ours: int | None
    """Index of smtpfw's transaction that holds this row's values; None: smtpfw has none."""


# (btest name, 0-based row of smtp.log) → how smtpfw differs from Zeek, and why.
KNOWN_DIFFERENCES: dict[tuple[str, int], Known] = {
    ("scripts.base.protocols.smtp.one-side", 1): Known(
        "Zeek counts a new transaction only when it sees the server's reply to the end of data; "
        "in a client-only capture both messages stay at depth 1. smtpfw starts a transaction at "
        "every MAIL, so the second message is its transaction 2.",
        ours=1,
    ),
    **{
        (test, 1): Known(
            "Zeek logs a row for a RCPT sent with no MAIL (rejected 503) and reuses depth 2 for "
            "the next rows; smtpfw opens a transaction only with MAIL: no counterpart here.",
            ours=None,
        )
        for test in (
            "scripts.base.protocols.smtp.mail-transactions-invalid",
            "scripts.base.protocols.smtp.mail-transactions-invalid-disable-analyzer",
        )
    },
    **{
        (test, row): Known("Zeek's depth 2 again (see row 1): smtpfw's next transaction.", ours)
        for test in (
            "scripts.base.protocols.smtp.mail-transactions-invalid",
            "scripts.base.protocols.smtp.mail-transactions-invalid-disable-analyzer",
        )
        for row, ours in ((2, 1), (3, 2))
    },
}


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
    return next((s for s in sessions if s.client == row.client and s.server == row.server), None)


def _ours(session: SmtpSession, index: int) -> dict[str, object]:
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
    for number, row in enumerate(rows):
        session = _session_for(sessions, row)
        assert session is not None, f"no session {row.client} → {row.server} in {trace}"
        index: int | None = row.trans_depth - 1
        known = KNOWN_DIFFERENCES.get((test, number))
        if known is not None:
            index = known.ours
        if index is None:
            assert all(t.mail_from is not None for t in session.transactions), known
            continue
        ours = _ours(session, index)
        theirs = {"helo": row.helo, "mailfrom": row.mailfrom, "rcptto": row.rcptto, "tls": row.tls}
        for field, expected in theirs.items():
            assert ours[field] == expected, (
                f"{trace} {row.client} transaction {row.trans_depth}: {field} = {ours[field]!r}, "
                f"Zeek says {expected!r}"
            )
