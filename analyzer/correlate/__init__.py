"""Correlate two captures of the same traffic: clock offset, session pairs, byte alignment.

`clock` estimates the offset between the capture hosts, `match` pairs sessions through NAT and
sequence randomisation, `align` lines up each pair's streams and classifies the differences,
`placement` says where in the dialogue each difference lies.
No severity or cause is decided here (that is `detect`).
"""

from .align import Divergence, DivergenceKind, EndMismatch, PairAlignment, align_pair
from .clock import ClockEstimate, estimate_offset
from .match import Pairing, SessionPair, pair_sessions

__all__ = [
    "ClockEstimate",
    "Divergence",
    "DivergenceKind",
    "EndMismatch",
    "PairAlignment",
    "Pairing",
    "SessionPair",
    "align_pair",
    "estimate_offset",
    "pair_sessions",
]
