"""Blank AUTH credentials in kept raw bytes, and digest them under a key that is never kept.

The observer finds where credentials lie (`SmtpObserver.take_secrets`); whoever keeps a copy of
the stream's bytes for later comparison first digests each credential (`digest_secrets`) and
then calls `blank_secrets` on the copy, so that offsets, lengths and every other byte stay as
captured. The digests let the two captures of one connection say whether a middlebox changed a
credential without either of them keeping it: they are keyed (BLAKE2b, RFC 7693 §2.5) with a
random `CredentialKey` made once per analysis and never stored, printed or pickled, so a saved
session cannot be tested against a list of likely passwords. This module does not find
secrets itself, nor decode them, nor compare sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from typing import Final, NoReturn

SECRET_FILL: Final = 0x2A
"""The octet (`*`) written over each octet of a credential: a base64 alphabet outsider, so a
blanked response can never be read as the one it replaced."""

KEY_BYTES: Final = 32
"""Length of a credential key (BLAKE2b takes keys of up to 64 octets, RFC 7693 §2.1)."""
DIGEST_BYTES: Final = 16
"""Length of a credential digest: 128 bits, ample to tell two credentials apart, and short."""
TAG_BYTES: Final = 8
"""Length of a key's public tag, which says which key made a digest (not the key)."""


class CredentialKey:
    """The random key of one analysis's credential digests.

    Both captures of one analysis are read with the same key, so that their digests of one
    credential are equal exactly when the credential is. It lives only while the captures are
    read: it is never pickled (`__reduce__` refuses; a reader in another process must get it
    by `fork`), never printed, and never stored on a session. Its `tag` is random too and
    stored with every digest, so that digests made under different keys are never compared.
    """

    __slots__ = ("_key", "tag")

    def __init__(self) -> None:
        self._key = os.urandom(KEY_BYTES)
        self.tag: bytes = os.urandom(TAG_BYTES)

    def digest(self, data: bytes) -> bytes:
        return hashlib.blake2b(data, key=self._key, digest_size=DIGEST_BYTES).digest()

    def __repr__(self) -> str:
        return "CredentialKey(<not shown>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a credential key is never pickled")


@dataclass(frozen=True, slots=True)
class CredentialDigest:
    """One credential's keyed digest and the client stream range [start, end) it covers.

    Opaque: it says only whether two credentials of one analysis are the same, and appears in
    no report or DataFrame."""

    start: int
    end: int
    digest: bytes | None = field(repr=False)
    """None when the kept bytes do not hold the whole credential (a capture gap, the recording
    cap, a capture that began inside it): such a credential is compared with nothing."""
    key_tag: bytes = field(repr=False)
    """The tag of the `CredentialKey` that made `digest`."""

    @property
    def length(self) -> int:
        return self.end - self.start

    def differs_from(self, other: CredentialDigest) -> bool:
        """Both digests are whole and made under one key, and the credentials differ."""
        if self.digest is None or other.digest is None or self.key_tag != other.key_tag:
            return False
        return not hmac.compare_digest(self.digest, other.digest)


def digest_secrets(
    key: CredentialKey,
    data: bytearray,
    base: int,
    gaps: list[tuple[int, int]],
    secrets: list[tuple[int, int]],
) -> list[CredentialDigest]:
    """The digest of each stream range [start, end) of `secrets` in `data`, whose first byte
    lies at stream offset `base`; call it before `blank_secrets`. A range that `data` does not
    hold whole, or that overlaps one of `gaps` ((offset, length) of bytes never captured), has
    no digest."""
    size = len(data)
    out: list[CredentialDigest] = []
    for start, end in secrets:
        lo, hi = start - base, end - base
        whole = 0 <= lo <= hi <= size and not any(
            offset < end and start < offset + length for offset, length in gaps
        )
        digest = key.digest(bytes(data[lo:hi])) if whole else None
        out.append(CredentialDigest(start, end, digest, key.tag))
    return out


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
