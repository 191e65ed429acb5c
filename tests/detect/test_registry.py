"""The table of kinds and the registry of detectors cover every finding kind exactly once."""

from __future__ import annotations

from analyzer.detect import DETECTORS, FindingKind
from analyzer.detect.kinds import KINDS
from analyzer.report import digest


def test_every_kind_has_a_title_a_cause_and_a_remediation() -> None:
    assert set(KINDS) == set(FindingKind)
    for kind, text in KINDS.items():
        assert text.title and text.happened and text.cause and text.remediation, kind


def test_the_reports_name_each_kind_as_the_table_does() -> None:
    for kind, text in KINDS.items():
        assert digest.title(str(kind)) == text.title
        assert digest.HAPPENED[str(kind)] == text.happened


def test_each_kind_belongs_to_one_detector_and_only_unmatched_runs_outside_the_registry() -> None:
    owned = [kind for detector in DETECTORS for kind in detector.kinds]
    assert len(owned) == len(set(owned))
    assert set(FindingKind) - set(owned) == {FindingKind.SESSION_UNMATCHED}
    assert len({d.name for d in DETECTORS}) == len(DETECTORS)
    for detector in DETECTORS:
        assert detector.two_sided or detector.one_sided, detector.name
