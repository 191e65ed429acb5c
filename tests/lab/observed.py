"""What a run's two captures show, side by side: connections per side, paired across the box.

What it does: reads both captures of a `ScenarioRun` once (tshark), groups frames into
connections, and pairs each client-side connection with the server-side connection it became —
by the ISN offset the middlebox logged (server-side SYN = client-side SYN + offset), by the
unchanged 4-tuple when nothing translated, or by order when a proxy re-terminated TCP.
What it does not do: decide whether what it shows is right (the tests do).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from .pcapread import Connection, Frame, connections, read_frames
from .runner import ScenarioRun
from .tcpip import SEQ_MODULUS


@functools.lru_cache(maxsize=64)
def _frames(path: str, mtime_ns: int) -> tuple[Frame, ...]:
    return tuple(read_frames(Path(path)))


def frames_of(path: Path) -> list[Frame]:
    return list(_frames(str(path), path.stat().st_mtime_ns))


@dataclass(frozen=True, slots=True)
class Offsets:
    """The middlebox's ISN offsets for one connection (0 when it did not randomize)."""

    client: int
    server: int


@dataclass(frozen=True, slots=True)
class SidePair:
    """One TCP connection as captured outside (client side) and inside (server side)."""

    client_side: Connection
    server_side: Connection
    offsets: Offsets | None


def conn_key(c: Connection) -> str:
    return f"{c.client}:{c.client_port}>{c.server}:{c.server_port}"


def middlebox_offsets(run: ScenarioRun) -> dict[str, Offsets]:
    return {
        str(note["conn"]): Offsets(int(note["client_isn_offset"]), int(note["server_isn_offset"]))
        for note in run.middlebox_log
        if note.get("event") == "connection"
    }


@dataclass
class Observed:
    run: ScenarioRun
    client_frames: list[Frame]
    server_frames: list[Frame]
    client_conns: list[Connection]
    server_conns: list[Connection]
    pairs: list[SidePair]

    def pair_for(self, client: str) -> SidePair:
        matches = [p for p in self.pairs if p.client_side.client == client]
        if len(matches) != 1:
            raise AssertionError(f"{len(matches)} paired connections for client {client}")
        return matches[0]

    @property
    def only_pair(self) -> SidePair:
        if len(self.pairs) != 1:
            raise AssertionError(f"expected one connection pair, found {len(self.pairs)}")
        return self.pairs[0]


def _pair(run: ScenarioRun, outside: list[Connection], inside: list[Connection]) -> list[SidePair]:
    offsets = middlebox_offsets(run)
    pairs = []
    unused = list(inside)
    for c in outside:
        off = offsets.get(conn_key(c))
        match: Connection | None = None
        syn = c.syn(True)
        if off is not None and syn is not None:
            want = (syn.seq + off.client) % SEQ_MODULUS
            match = next((s for s in unused if (s.syn(True) or syn).seq == want), None)
        elif not run.scenario.nat:
            match = next((s for s in unused if conn_key(s) == conn_key(c)), None)
        elif unused:
            match = unused[0]
        if match is not None:
            unused.remove(match)
            pairs.append(SidePair(c, match, off))
    return pairs


def observe(run: ScenarioRun) -> Observed:
    cf = frames_of(run.client_side)
    sf = frames_of(run.server_side)
    cc = connections(cf)
    sc = connections(sf)
    return Observed(run, cf, sf, cc, sc, _pair(run, cc, sc))
