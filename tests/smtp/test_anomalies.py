"""The anomaly reporter: at most ANOMALY_REPORT_LIMIT events per kind and direction (one for
the kinds reported once), and every anomaly counted, reported or not; and what is odd about a
line as a line."""

from __future__ import annotations

from analyzer._common import Direction
from analyzer.smtp.anomalies import REPORTED_ONCE, AnomalyReporter, line_anomalies
from analyzer.smtp.events import AnomalySeen, Event, SmtpAnomaly
from analyzer.smtp.limits import ANOMALY_REPORT_LIMIT, COMMAND_LINE_MAX, REPLY_LINE_MAX
from analyzer.smtp.lines import Line

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT
UNKNOWN = SmtpAnomaly.UNKNOWN_COMMAND


def report(reporter: AnomalyReporter, kind: SmtpAnomaly, direction: Direction, n: int) -> int:
    """Report `kind` `n` times; how many events came out."""
    out: list[Event] = []
    for i in range(n):
        reporter.report(out, kind, direction, f"number {i}", i, None, float(i))
    assert all(isinstance(e, AnomalySeen) and e.kind is kind for e in out)
    return len(out)


def test_up_to_the_limit_every_anomaly_is_an_event_and_none_is_only_counted() -> None:
    reporter = AnomalyReporter()
    assert report(reporter, UNKNOWN, C2S, ANOMALY_REPORT_LIMIT) == ANOMALY_REPORT_LIMIT
    assert reporter.counts == {UNKNOWN: ANOMALY_REPORT_LIMIT}
    assert reporter.unreported == {}


def test_beyond_the_limit_anomalies_are_only_counted() -> None:
    reporter = AnomalyReporter()
    assert report(reporter, UNKNOWN, C2S, ANOMALY_REPORT_LIMIT + 3) == ANOMALY_REPORT_LIMIT
    assert reporter.counts == {UNKNOWN: ANOMALY_REPORT_LIMIT + 3}
    assert reporter.unreported == {UNKNOWN: 3}


def test_the_limit_holds_per_direction() -> None:
    reporter = AnomalyReporter()
    kind = SmtpAnomaly.LINE_TRUNCATED
    assert report(reporter, kind, C2S, ANOMALY_REPORT_LIMIT + 1) == ANOMALY_REPORT_LIMIT
    assert report(reporter, kind, S2C, ANOMALY_REPORT_LIMIT) == ANOMALY_REPORT_LIMIT
    assert reporter.unreported == {kind: 1}
    assert reporter.counts == {kind: 2 * ANOMALY_REPORT_LIMIT + 1}


def test_the_limit_holds_per_kind() -> None:
    reporter = AnomalyReporter()
    assert report(reporter, UNKNOWN, C2S, ANOMALY_REPORT_LIMIT) == ANOMALY_REPORT_LIMIT
    assert report(reporter, SmtpAnomaly.MASKED_COMMAND, C2S, 1) == 1


def test_a_kind_reported_once_is_one_event_and_its_repeats_are_counted_but_not_unreported() -> None:
    reporter = AnomalyReporter()
    kind = SmtpAnomaly.BARE_LF
    assert kind in REPORTED_ONCE
    assert report(reporter, kind, C2S, 5) == 1
    assert report(reporter, kind, S2C, 1) == 1  # once per direction
    assert reporter.counts == {kind: 6}
    assert reporter.unreported == {}


def test_one_report_may_stand_for_several_anomalies() -> None:
    reporter = AnomalyReporter()
    out: list[Event] = []
    for _ in range(ANOMALY_REPORT_LIMIT + 1):
        reporter.report(out, SmtpAnomaly.BARE_CR, C2S, "x", 0, None, 0.0, 4)
    kind = SmtpAnomaly.BARE_CR
    assert kind in REPORTED_ONCE and len(out) == 1
    reporter.report(out, UNKNOWN, C2S, "x", 0, None, 0.0)
    for _ in range(ANOMALY_REPORT_LIMIT):
        reporter.report(out, UNKNOWN, C2S, "x", 0, None, 0.0, 3)
    assert reporter.counts[UNKNOWN] == 1 + 3 * ANOMALY_REPORT_LIMIT
    assert reporter.unreported == {UNKNOWN: 3}


def test_the_event_carries_what_was_reported() -> None:
    reporter = AnomalyReporter()
    out: list[Event] = []
    reporter.report(out, UNKNOWN, S2C, "the detail", 42, None, 7.5)
    assert out == [AnomalySeen(UNKNOWN, S2C, "the detail", 42, None, 7.5)]


def _line(content: bytes, terminator: bytes = b"\r\n", length: int | None = None) -> Line:
    n = len(content) if length is None else length
    return Line(content, terminator, 3, n, None, None, 1.0, 1.0)


def test_a_plain_line_is_no_anomaly() -> None:
    reporter = AnomalyReporter()
    out: list[Event] = []
    assert line_anomalies(reporter, out, _line(b"MAIL FROM:<a@b>"), C2S, COMMAND_LINE_MAX) == 0
    assert out == [] and reporter.counts == {}


def test_what_is_odd_about_a_line_is_reported_in_order_and_skipped_bytes_returned() -> None:
    reporter = AnomalyReporter()
    out: list[Event] = []
    line = _line(b"NOOP\rx\x00", b"\n", length=COMMAND_LINE_MAX + 10)
    skipped = line_anomalies(reporter, out, line, C2S, COMMAND_LINE_MAX)
    assert skipped == COMMAND_LINE_MAX + 10 - len(line.content)
    assert [e.kind for e in out if isinstance(e, AnomalySeen)] == [
        SmtpAnomaly.BARE_LF,
        SmtpAnomaly.BARE_CR,
        SmtpAnomaly.NUL_BYTE,
        SmtpAnomaly.LINE_TRUNCATED,
        SmtpAnomaly.COMMAND_LINE_TOO_LONG,
    ]


def test_a_reply_line_over_its_limit_is_a_reply_line_too_long() -> None:
    reporter = AnomalyReporter()
    out: list[Event] = []
    line = _line(b"250 " + b"x" * REPLY_LINE_MAX)
    assert line_anomalies(reporter, out, line, S2C, REPLY_LINE_MAX) == 0
    assert [e.kind for e in out if isinstance(e, AnomalySeen)] == [SmtpAnomaly.REPLY_LINE_TOO_LONG]


def test_a_line_exactly_at_its_limit_is_not_too_long() -> None:
    reporter = AnomalyReporter()
    out: list[Event] = []
    line = _line(b"x" * (COMMAND_LINE_MAX - 2))  # with CRLF: exactly the limit
    assert line_anomalies(reporter, out, line, C2S, COMMAND_LINE_MAX) == 0
    assert out == []
