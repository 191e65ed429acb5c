"""Name a TCP conversation from raw header bytes: its lookup key, and the shard it belongs to.

The *raw key* of one direction is the source and destination addresses as they sit in the IP
header (4 bytes each for IPv4, 16 for IPv6) followed by the source and destination ports (2 bytes
each, network order). For IPv4 without options these 12 bytes lie side by side in the packet,
so the key is a single slice. A consumer that files conversations under raw keys can look a
segment up without ever turning its addresses into text (see `SegmentTaker`).

A *shard* splits a capture's conversations between several readers: both directions of a
conversation hash to the same shard, and the hash needs only the addresses and ports.

Nothing here reads files or keeps state.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Final

_PORTS: Final = struct.Struct("!HH")

SHARD_MULTIPLIER: Final = 0x2545F491
"""An odd multiplier for Knuth's multiplicative hash (the high half of Marsaglia's xorshift64*
constant): spreads near-equal port numbers. Below 2**30, so that the product with a 32-bit value
stays below 2**62 and the compiled build multiplies natively instead of in big integers."""
_MASK32: Final = (1 << 32) - 1
_MASK64: Final = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Shard:
    """Conversations `index` of `count`: a reader of this shard decodes only their segments."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count}")


def raw_key(src: str, sport: int, dst: str, dport: int) -> bytes:
    """The raw key of the direction `src:sport` → `dst:dport` (addresses in text form)."""
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    return socket.inet_pton(family, src) + socket.inet_pton(family, dst) + _PORTS.pack(sport, dport)


def fold_addresses(addresses: bytes) -> int:
    """Source and destination address (concatenated, as in a raw key) XORed and folded to 32
    bits: the same for both directions. For IPv4 it is simply `src ^ dst`."""
    half = len(addresses) // 2
    x = int.from_bytes(addresses[:half], "big") ^ int.from_bytes(addresses[half:], "big")
    x = (x ^ (x >> 64)) & _MASK64
    return (x ^ (x >> 32)) & _MASK32


def shard_index(folded: int, sport: int, dport: int, count: int) -> int:
    """Which of `count` shards a conversation belongs to; symmetric in its two endpoints.

    `folded` is `fold_addresses` of its addresses. Readers inline this formula on their hot path;
    it must stay the same everywhere.
    """
    return ((((folded ^ sport ^ dport) * SHARD_MULTIPLIER) & _MASK32) >> 16) % count


def shard_of(src: str, sport: int, dst: str, dport: int, count: int) -> int:
    """The shard of a conversation given in text form (one direction of it)."""
    key = raw_key(src, sport, dst, dport)
    return shard_index(fold_addresses(key[:-4]), sport, dport, count)
