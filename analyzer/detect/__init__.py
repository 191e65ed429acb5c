"""Detectors: pure functions from sessions and aligned pairs to `Finding`s with evidence.

One module per family of findings (`banner`, `ehlo`, `commands`, `starttls`, `downgrade`,
`resets`, `drops`, `changes`, `unmatched`), each with its two-sided rule (both captures: what
the middlebox did, `confirmed`) beside its one-sided rule (one capture: the same kinds from
symptoms, `likely` or `possible`); `kinds` holds each kind's title, cause, remediation and
default severity; `registry` lists the detectors once and runs them. Nothing here reads files.
"""

from .base import Confidence, Evidence, Finding, FindingKind, Severity
from .registry import DETECTORS, detect_pair, detect_single, number, unmatched

__all__ = [
    "DETECTORS",
    "Confidence",
    "Evidence",
    "Finding",
    "FindingKind",
    "Severity",
    "detect_pair",
    "detect_single",
    "number",
    "unmatched",
]
