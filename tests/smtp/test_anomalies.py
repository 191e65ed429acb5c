"""The anomaly reporter: at most ANOMALY_REPORT_LIMIT events per kind and direction (one for
the kinds reported once), and every anomaly counted, reported or not."""

from __future__ import annotations

from analyzer._common import Direction
from analyzer.smtp.anomalies import REPORTED_ONCE, AnomalyReporter
from analyzer.smtp.events import AnomalySeen, Event, SmtpAnomaly
from analyzer.smtp.limits import ANOMALY_REPORT_LIMIT

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
