"""Blank AUTH credentials in kept raw bytes, in place and length for length.

The observer finds where credentials lie (`SmtpObserver.take_secrets`); whoever keeps a copy of
the stream's bytes for later comparison calls `blank_secrets` on it, so that offsets, lengths
and every other byte stay as captured. It does not find secrets itself, nor decode them.
"""

from __future__ import annotations

from typing import Final

SECRET_FILL: Final = 0x2A
"""The octet (`*`) written over each octet of a credential: a base64 alphabet outsider, so a
blanked response can never be read as the one it replaced."""


def blank_secrets(data: bytearray, base: int, secrets: list[tuple[int, int]]) -> None:
    """Overwrite the stream ranges [start, end) of `secrets` in `data`, whose first byte lies at
    stream offset `base`; the parts outside `data` (before it, or past a recording cap) are
    skipped."""
    size = len(data)
    for start, end in secrets:
        lo = max(start - base, 0)
        hi = min(end - base, size)
        if lo < hi:
            data[lo:hi] = bytes([SECRET_FILL]) * (hi - lo)
