"""How many of each SMTP anomaly one connection reports as events, and the count of all of them.

An `AnomalyReporter` turns each oddity its owner finds into an `AnomalySeen` event, up to
`ANOMALY_REPORT_LIMIT` of one kind per direction (one only for the kinds in `REPORTED_ONCE`),
and counts every one, reported or not: `counts` by kind, and `unreported` for what the limit
held back (the session's `dropped.anomaly_reports`). It is shared by the native observer and
the tshark engine, so both say the same about the same peer.

`line_anomalies` says what is odd about one command or reply line as a line (bare LF, bare
CR, NUL, too long, truncated), for both engines alike.

Beyond that it does not decide what is an anomaly; the reporter holds no events itself (the
caller hands the list the event goes to) and does no I/O.
"""

from __future__ import annotations

from typing import Final

from analyzer._common import Direction, FrameRef

from .events import AnomalySeen, Event, SmtpAnomaly
from .limits import ANOMALY_REPORT_LIMIT
from .lines import CR, NUL, Line

C2S: Final = Direction.CLIENT_TO_SERVER
BARE_LF_TERMINATOR: Final = b"\n"
TOO_LONG_COMMAND: Final = SmtpAnomaly.COMMAND_LINE_TOO_LONG
TOO_LONG_REPLY: Final = SmtpAnomaly.REPLY_LINE_TOO_LONG

REPORTED_ONCE: Final = frozenset(
    {
        SmtpAnomaly.BARE_LF,
        SmtpAnomaly.BARE_CR,
        SmtpAnomaly.NUL_BYTE,
        SmtpAnomaly.PIPELINING_NOT_ADVERTISED,
        SmtpAnomaly.CLEARTEXT_AFTER_TLS,
        SmtpAnomaly.TLS_WITHOUT_CLIENT_HELLO,
        SmtpAnomaly.DATA_AFTER_CLOSE,
        SmtpAnomaly.COMMAND_BEFORE_GREETING,
    }
)
"""Anomalies reported once per direction and session (the rest are only counted): one is
enough to characterise a peer, and a peer that does it on every line must not flood the output.
Their repeats are not counted as unreported."""


class AnomalyReporter:
    """The anomalies of one connection: which to report as events, and how many there were."""

    __slots__ = ("_reported", "counts", "unreported")

    def __init__(self) -> None:
        self._reported: dict[tuple[SmtpAnomaly, Direction], int] = {}
        self.counts: dict[SmtpAnomaly, int] = {}
        """Every anomaly seen, by kind, including those not reported as events."""
        self.unreported: dict[SmtpAnomaly, int] = {}
        """Anomalies only counted beyond `ANOMALY_REPORT_LIMIT`, by kind (not the repeats of
        `REPORTED_ONCE` kinds)."""

    def report(
        self,
        out: list[Event],
        kind: SmtpAnomaly,
        direction: Direction,
        detail: str,
        offset: int,
        frame: FrameRef | None,
        ts: float,
        count: int = 1,
    ) -> None:
        """`count` anomalies of `kind` (one event at most), appended to `out` while the limit
        allows, else only counted."""
        self.counts[kind] = self.counts.get(kind, 0) + count
        key = (kind, direction)
        reported = self._reported.get(key, 0)
        once = kind in REPORTED_ONCE
        if reported < (1 if once else ANOMALY_REPORT_LIMIT):
            self._reported[key] = reported + 1
            out.append(AnomalySeen(kind, direction, detail, offset, frame, ts))
        elif not once:
            self.unreported[kind] = self.unreported.get(kind, 0) + count


def line_anomalies(
    reporter: AnomalyReporter, out: list[Event], line: Line, direction: Direction, limit: int
) -> int:
    """Report what is odd about a command or reply line as a line (`limit`: its longest length
    on the wire, terminator included); returns the octets of it not kept (`Line.truncated`).
    Details never quote the line: it may be a secret."""
    content = line.content
    length = line.length
    if (
        line.terminator != BARE_LF_TERMINATOR
        and length < limit - 1
        and length == len(content)
        and CR not in content
        and NUL not in content
    ):
        return 0
    if line.terminator == BARE_LF_TERMINATOR:
        reporter.report(
            out,
            SmtpAnomaly.BARE_LF,
            direction,
            "line ended by a bare LF",
            line.offset,
            line.frame,
            line.ts,
        )
    if CR in content:
        reporter.report(
            out,
            SmtpAnomaly.BARE_CR,
            direction,
            "CR inside a line",
            line.offset,
            line.frame,
            line.ts,
        )
    if NUL in content:
        reporter.report(
            out,
            SmtpAnomaly.NUL_BYTE,
            direction,
            "NUL octet in a line",
            line.offset,
            line.frame,
            line.ts,
        )
    skipped = 0
    if line.truncated:
        skipped = length - len(content)
        reporter.report(
            out,
            SmtpAnomaly.LINE_TRUNCATED,
            direction,
            f"line of {line.length} octets: {len(content)} kept, the rest skipped",
            line.offset,
            line.frame,
            line.ts,
        )
    if line.wire_length > limit:
        reporter.report(
            out,
            SmtpAnomaly.COMMAND_LINE_TOO_LONG
            if direction is C2S
            else SmtpAnomaly.REPLY_LINE_TOO_LONG,
            direction,
            f"line of {line.wire_length} octets (limit {limit})",
            line.offset,
            line.frame,
            line.ts,
        )
    return skipped
