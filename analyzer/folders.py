"""Find capture pairs in a folder by their names: `client-side*` and `server-side*`.

A folder of incidents is laid out as one sub-folder per pair, each holding the client-side
(outside) and server-side (inside) capture, or their rotation sets (`client-side-00.pcap`,
`client-side-01.pcap`, …). Nothing is read here but directory listings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")
CLIENT_PREFIX = "client-side"
SERVER_PREFIX = "server-side"


@dataclass(frozen=True, slots=True)
class PairFolder:
    name: str
    client_side: tuple[Path, ...]
    server_side: tuple[Path, ...]


def _captures(folder: Path, prefix: str) -> tuple[Path, ...]:
    return tuple(
        sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and p.name.startswith(prefix) and p.name.endswith(CAPTURE_SUFFIXES)
        )
    )


def pair_in(folder: Path) -> PairFolder | None:
    """The pair a folder holds, if it holds both sides."""
    client, server = _captures(folder, CLIENT_PREFIX), _captures(folder, SERVER_PREFIX)
    if client and server:
        return PairFolder(folder.name, client, server)
    return None


def find_pairs(folder: Path) -> list[PairFolder]:
    """The folder itself when it is a pair, else each of its sub-folders that is one."""
    own = pair_in(folder)
    if own is not None:
        return [own]
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        pair = pair_in(sub)
        if pair is not None:
            found.append(pair)
    return found
