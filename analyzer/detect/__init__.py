"""Detectors: pure functions from sessions and aligned pairs to `Finding`s with evidence.

Two-sided detectors (`paired`) confirm what the middlebox did; one-sided ones (`single`) name
the same kinds from symptoms with a lower confidence. Nothing here reads files.
"""

from .base import Confidence, Evidence, Finding, FindingKind, Severity
from .registry import detect_pair, detect_single, number, unmatched

__all__ = [
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
