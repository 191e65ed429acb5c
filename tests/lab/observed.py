"""What a run's two captures show, side by side: connections per side, paired across the box.

What it does: reads both captures of a `ScenarioRun` once (tshark), groups frames into
connections, and pairs each client-side connection with the server-side connection it became —
the ground truth, from what the boxes themselves recorded: conntrack's NAT table (client
"ip:port" → translated "ip:port"), a proxy's log of which client it relayed from which local
port (then translated by conntrack), the unchanged 4-tuple when nothing translated, or by order
when nothing recorded it (one session at a time through nginx). The ISN offset the rewriter
logged is kept per pair.
What it does not do: decide whether what it shows is right (the tests do).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from .pcapread import Connection, Frame, connections, read_frames
from .runner import ScenarioRun


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


def _endpoint(c: Connection) -> str:
    return f"{c.client}:{c.client_port}"


def ground_truth(run: ScenarioRun) -> dict[str, str]:
    """Client-side client "ip:port" → the server-side client "ip:port" it became, where known."""
    truth: dict[str, str] = {}
    for note in run.middlebox_log:
        if note.get("event") == "proxied":
            via = str(note["via"])
            truth[str(note["client"])] = run.translations.get(via, via)
    if not run.scenario.full_proxy:
        truth |= run.translations
    return truth


def _pair(run: ScenarioRun, outside: list[Connection], inside: list[Connection]) -> list[SidePair]:
    offsets = middlebox_offsets(run)
    truth = ground_truth(run)
    by_endpoint = {_endpoint(s): s for s in inside}
    pairs = []
    unused = list(inside)
    for c in outside:
        off = offsets.get(conn_key(c))
        match: Connection | None = None
        if _endpoint(c) in truth:
            match = by_endpoint.get(truth[_endpoint(c)])
        elif not run.scenario.nat:
            match = by_endpoint.get(_endpoint(c))
        elif run.scenario.full_proxy and unused:
            match = unused[0]
        if match is not None and match in unused:
            unused.remove(match)
            pairs.append(SidePair(c, match, off))
    return pairs


def observe(run: ScenarioRun) -> Observed:
    cf = frames_of(run.client_side)
    sf = frames_of(run.server_side)
    cc = connections(cf)
    sc = connections(sf)
    return Observed(run, cf, sf, cc, sc, _pair(run, cc, sc))
