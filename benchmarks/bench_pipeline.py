"""Where the time of `smtpfw sessions --json` goes, stage by stage, on a given capture.

Each stage is a complete pass over the capture that does a little more than the one before;
its CPU time (user + system, of this process) and the capture's size over that time are
printed, with the increment over the previous stage:

1. `read`      walk the records, decode nothing;
2. `segments`  decode every TCP segment into a `Segment` (the general path);
3. `offered`   decode inline and offer each segment's fields to a consumer that takes them all
               (the flow table's short path costs nothing here);
4. `flows`     the flow table, fed as the pipeline feeds it, with a sink that does nothing;
5. `observer`  the pipeline with its SMTP observers, the session builder's `add` disabled;
6. `sessions`  every session built (`iter_sessions`);
7. `rendered`  every session rendered as `smtpfw sessions --json` renders it.

Then each shard of a `--workers`-way split read on its own (the slowest shard is about the wall
time of a parallel run on an idle machine), and the parallel run itself (`map_sessions`), with
its wall time and the CPU time of all its processes. CPU time is the figure to compare on a busy
machine (with `--repeat N` the smallest of N passes counts: on a shared machine a pass is only
ever slowed down, never sped up); the load average is printed.

    .venv/bin/python benchmarks/bench_pipeline.py CAPTURE [--workers 2] [--stages 1-7] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analyzer._common import Anomaly
from analyzer.capture import open_capture
from analyzer.capture.conversation import Shard
from analyzer.capture.decode import TakeFunction
from analyzer.capture.reader import _records
from analyzer.capture.records import FileTally
from analyzer.capture.source import Source
from analyzer.flows import FlowTable
from analyzer.flows.events import FlowInfo, FlowStats, StreamData, StreamEnd, StreamGap
from analyzer.jsontext import dumps_indented
from analyzer.parallel import map_sessions, read_shard
from analyzer.pipeline import iter_sessions
from analyzer.session.builder import SessionBuilder
from analyzer.session.export import session_dict
from analyzer.session.model import SmtpSession


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def render(session: SmtpSession) -> str:
    """What the CLI does with each session in a worker."""
    return dumps_indented(session_dict(session))


class NullSink:
    """A flow sink that does nothing."""

    def on_flow_start(self, flow: FlowInfo) -> None:
        pass

    def on_data(self, flow: FlowInfo, data: StreamData) -> None:
        pass

    def on_gap(self, flow: FlowInfo, gap: StreamGap) -> None:
        pass

    def on_end(self, flow: FlowInfo, end: StreamEnd) -> None:
        pass

    def on_anomaly(self, flow: FlowInfo, anomaly: Anomaly) -> None:
        pass

    def on_flow_closed(self, flow: FlowInfo, stats: FlowStats) -> None:
        pass


def _nothing(*args: Any) -> None:
    return None


def _take_all(*args: Any) -> bool:
    return True


def stage_read(path: Path) -> int:
    tally = FileTally()
    with Source(path) as source:
        for _ in _records(source, _nothing, tally):
            pass
    return tally.packets


def stage_segments(path: Path) -> int:
    return sum(1 for _ in open_capture([path], "b").segments())


def stage_offered(path: Path) -> int:
    return sum(1 for _ in open_capture([path], "b").segments(take=TakeFunction(_take_all)))


def stage_flows(path: Path) -> int:
    table = FlowTable(NullSink())
    add = table.add
    for segment in open_capture([path], "b").segments(take=table):
        add(segment)
    table.finish()
    return table.next_index


def stage_observer(path: Path) -> int:
    add = SessionBuilder.add
    SessionBuilder.add = _nothing  # type: ignore[method-assign,assignment]
    try:
        return sum(1 for _ in iter_sessions(open_capture([path], "b")))
    finally:
        SessionBuilder.add = add  # type: ignore[method-assign]


def stage_sessions(path: Path) -> int:
    return sum(1 for _ in iter_sessions(open_capture([path], "b")))


def stage_rendered(path: Path) -> int:
    return sum(len(render(s)) > 0 for s in iter_sessions(open_capture([path], "b")))


STAGES: tuple[tuple[str, Callable[[Path], int]], ...] = (
    ("read", stage_read),
    ("segments", stage_segments),
    ("offered", stage_offered),
    ("flows", stage_flows),
    ("observer", stage_observer),
    ("sessions", stage_sessions),
    ("rendered", stage_rendered),
)


class _Count:
    """A `read_shard` listener that renders and counts."""

    def __init__(self) -> None:
        self.sessions = 0

    def opened(self, position: int, index: int) -> None:
        pass

    def closed(self, position: int, index: int, session: SmtpSession | None) -> None:
        if session is not None:
            render(session)
            self.sessions += 1

    def progress(self, position: int) -> None:
        pass


def _stage_range(text: str) -> range:
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stages", default="1-7", help="which stages, e.g. 1-7, 4-6 or 6")
    parser.add_argument(
        "--repeat", type=int, default=1, help="passes per stage; the fastest counts"
    )
    args = parser.parse_args(argv)
    repeat = max(1, args.repeat)
    size = args.capture.stat().st_size
    mb = size / 1e6
    print(f"{args.capture} ({mb:.0f} MB); load average {os.getloadavg()[0]:.2f}")
    print(f"{'stage':<12} {'CPU s':>7} {'MB/s':>7} {'+ s':>7}  count")
    previous = 0.0
    for number in _stage_range(args.stages):
        name, stage = STAGES[number - 1]
        spent = float("inf")
        for _ in range(repeat):
            started = cpu_self()
            count = stage(args.capture)
            spent = min(spent, cpu_self() - started)
        print(f"{name:<12} {spent:7.2f} {mb / spent:7.1f} {spent - previous:7.2f}  {count}")
        previous = spent
    if args.workers > 1:
        slowest = 0.0
        for index in range(args.workers):
            spent = float("inf")
            for _ in range(repeat):
                started = cpu_self()
                listener = _Count()
                shard = Shard(index, args.workers)
                read_shard(open_capture([args.capture], "b"), listener, shard=shard)
                spent = min(spent, cpu_self() - started)
            slowest = max(slowest, spent)
            print(
                f"{f'shard {index}/{args.workers}':<12} {spent:7.2f} {mb / spent:7.1f}"
                f"          {listener.sessions} sessions"
            )
        print(f"{'slowest':<12} {slowest:7.2f} {mb / slowest:7.1f}")
    wall = spent = float("inf")
    for _ in range(repeat):
        before_children = cpu_children()
        before_self = cpu_self()
        started = time.perf_counter()
        sessions = map_sessions([args.capture], "b", render, _nothing, workers=args.workers)
        if time.perf_counter() - started < wall:
            wall = time.perf_counter() - started
            spent = cpu_children() - before_children + cpu_self() - before_self
    print(
        f"map_sessions with {args.workers} worker(s): wall {wall:.2f} s ({mb / wall:.1f} MB/s), "
        f"CPU of all processes {spent:.2f} s, {sessions} TCP conversations; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
