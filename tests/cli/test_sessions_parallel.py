"""`smtpfw sessions` reads big captures with several processes and streams its output: the
sessions, their ids and their order are those of one reader reading the whole capture, and
nothing is kept for the length of the capture."""

from __future__ import annotations

import importlib.util
import io
import itertools
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import cli, parallel
from analyzer.capture import open_capture
from analyzer.capture.conversation import Shard
from analyzer.cli import main
from analyzer.jsontext import dumps_indented
from analyzer.parallel import SessionMerger, map_sessions, read_shard
from analyzer.pipeline import read_sessions
from analyzer.report import sessions as report_sessions
from analyzer.session.export import session_dict
from analyzer.session.model import SmtpSession

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
SAMPLES = sorted(p for p in CAPTURES.rglob("*.pcap*") if p.is_file())
SOME = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "smtpfw_bench_generate", ROOT / "benchmarks" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two megabytes of many interleaved SMTP connections with retransmissions, reordering,
    resets, STARTTLS, BDAT, HTTP and DNS noise (the benchmark's generator)."""
    path = tmp_path_factory.mktemp("busy") / "busy.pcap"
    _generator().generate(path, 2 << 20, seed=7, concurrency=60)
    return path


def summary(session: SmtpSession) -> dict[str, Any]:
    return session_dict(session)


class Collect:
    """A `read_shard` listener that keeps sessions with their conversation numbers."""

    def __init__(self, shard: int, merger: SessionMerger[dict[str, Any]]) -> None:
        self.shard = shard
        self.merger = merger
        self.events: list[tuple[int, int, int, dict[str, Any] | None]] = []

    def opened(self, position: int, index: int) -> None:
        self.events.append((position, 0, index, None))

    def closed(self, position: int, index: int, session: SmtpSession | None) -> None:
        self.events.append((position, 1, index, None if session is None else summary(session)))

    def progress(self, position: int) -> None:
        pass


def sharded(path: Path, count: int) -> list[tuple[int, dict[str, Any]]]:
    """Read `path` as `count` shards one after the other and merge them as the workers' reports
    are merged."""
    placed: list[tuple[int, dict[str, Any]]] = []
    merger: SessionMerger[dict[str, Any]] = SessionMerger(lambda item, n: placed.append((n, item)))
    listeners = [Collect(i, merger) for i in range(count)]
    for listener in listeners:
        read_shard(open_capture([path], "single"), listener, shard=Shard(listener.shard, count))
    merged = sorted(
        (event[0], listener.shard, seq, event)
        for listener in listeners
        for seq, event in enumerate(listener.events)
    )
    for _, shard, _, (_, kind, index, item) in merged:
        if kind == 0:
            merger.opened(shard, index)
        else:
            merger.closed(shard, index, item)
    merger.finish()
    return placed


def expected(path: Path) -> list[tuple[int, dict[str, Any]]]:
    sessions = sorted(read_sessions(path), key=lambda s: s.flow.index)
    return [(s.flow.index, summary(s)) for s in sessions]


def renumbered(placed: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """What the CLI does: the real number replaces the shard's own in id and tcp_stream."""
    return [(n, {**item, "id": f"single#{n}", "tcp_stream": n}) for n, item in placed]


@pytest.mark.parametrize("count", [1, 2, 3])
def test_shards_merged_give_every_session_with_the_ids_one_reader_gives(
    busy: Path, count: int
) -> None:
    want = expected(busy)
    assert len(want) > 30
    assert renumbered(sharded(busy, count)) == want


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: str(p.relative_to(CAPTURES)))
def test_sample_captures_read_in_shards_are_read_alike(path: Path) -> None:
    assert renumbered(sharded(path, 2)) == expected(path)


def as_text(session: SmtpSession) -> str:
    return json.dumps(summary(session))


def test_worker_processes_give_what_one_process_gives_with_the_real_numbers(busy: Path) -> None:
    results = []
    for workers in (1, 2, 3):
        placed: list[tuple[int, dict[str, Any]]] = []

        def place(text: str, n: int, into: list[Any] = placed) -> None:
            into.append((n, json.loads(text)))

        total = map_sessions([busy], "single", as_text, place, workers=workers)
        results.append((total, placed))
    assert results[0][1] == expected(busy)
    assert results[1] == results[0] == results[2]


def test_a_rotation_set_is_numbered_across_its_files_as_one_reader_numbers_it() -> None:
    files = sorted((CAPTURES / "rotation").glob("*.pcap*"))
    assert len(files) > 1
    want = [
        (s.flow.index, summary(s)) for s in sorted(read_sessions(files), key=lambda s: s.flow.index)
    ]
    for workers in (2, 3):
        placed: list[tuple[int, dict[str, Any]]] = []

        def place(text: str, n: int, into: list[Any] = placed) -> None:
            into.append((n, json.loads(text)))

        map_sessions(files, "single", as_text, place, workers=workers)
        assert placed == want


def _fail(session: SmtpSession) -> Any:
    raise ValueError("render broke")


def test_a_failing_worker_is_reported_not_hidden(busy: Path) -> None:
    with pytest.raises(RuntimeError, match="ValueError: render broke"):
        map_sessions([busy], "single", _fail, lambda item, n: None, workers=2)


# -- the merger ---------------------------------------------------------------------------------


@st.composite
def lifetimes(draw: st.DrawFn) -> list[tuple[int, int, int, bool]]:
    """(shard, opened at, closed at, has a session) per conversation, in order of opening."""
    out = []
    at = 0
    for _ in range(draw(st.integers(0, 40))):
        at += draw(st.integers(0, 3))
        out.append(
            (draw(st.integers(0, 2)), at, at + draw(st.integers(0, 50)), draw(st.booleans()))
        )
    return out


def replay(conversations: list[tuple[int, int, int, bool]], max_held: int) -> list[int]:
    placed: list[int] = []

    def place(item: int, n: int) -> None:
        placed.append(n)

    merger: SessionMerger[int] = SessionMerger(place, max_held=max_held)
    local: dict[int, int] = {}
    events = []
    for number, (shard, start, end, _) in enumerate(conversations):
        local[number] = sum(1 for s, *_ in conversations[:number] if s == shard)
        events.append((start, 0, number))
        events.append((end, 1, number))
    for _, kind, number in sorted(events):
        shard = conversations[number][0]
        if kind == 0:
            merger.opened(shard, local[number])
        else:
            merger.closed(shard, local[number], number if conversations[number][3] else None)
    merger.finish()
    return placed


@SOME
@given(lifetimes())
def test_sessions_come_out_in_conversation_order_whenever_they_end(
    conversations: list[tuple[int, int, int, bool]],
) -> None:
    with_session = [n for n, c in enumerate(conversations) if c[3]]
    assert replay(conversations, max_held=10_000) == with_session


@SOME
@given(lifetimes(), st.integers(1, 5))
def test_no_more_sessions_wait_than_allowed_and_none_is_lost(
    conversations: list[tuple[int, int, int, bool]], max_held: int
) -> None:
    placed = replay(conversations, max_held=max_held)
    assert sorted(placed) == [n for n, c in enumerate(conversations) if c[3]]
    out_of_order = sum(1 for a, b in itertools.pairwise(placed) if b < a)
    if len(placed) <= max_held:
        assert out_of_order == 0


# -- the command's output -------------------------------------------------------------------------


def run_cli(*args: str) -> str:
    out = io.StringIO()
    code = cli._cmd_sessions(cli.build_parser().parse_args(["sessions", *args]), out, io.StringIO())
    assert code == 0
    return out.getvalue()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_json_output_is_what_json_dump_writes_for_the_sessions_in_order(
    busy: Path, workers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(parallel.WORKERS_ENV, workers)
    printed = run_cli(str(busy), "--json")
    items = [summary(s) for s in sorted(read_sessions(busy), key=lambda s: s.flow.index)]
    assert printed == json.dumps(items, indent=2, ensure_ascii=True) + "\n"


def test_an_empty_capture_prints_an_empty_array_and_is_unusable_input(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    out, err = io.StringIO(), io.StringIO()
    args = cli.build_parser().parse_args(["sessions", str(empty), "--json"])
    assert cli._cmd_sessions(args, out, err) == 2
    assert out.getvalue() == "[]\n"
    assert err.getvalue() == f"smtpfw: error: {empty}: empty file (0 bytes): nothing to analyse\n"


def test_a_long_table_is_streamed_at_full_column_width(
    busy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_sessions, "TABLE_MEASURED_ROWS", 10)
    lines = run_cli(str(busy)).splitlines()
    sessions = len(read_sessions(busy))
    assert lines[-1] == f"{sessions} SMTP session(s)"
    assert len(lines) == sessions + 2
    assert lines[0].startswith("session" + " " * 7 + "client")  # 12 wide, then two spaces
    ids = [line.split()[0] for line in lines[1:-1]]
    assert ids == [f"single#{n}" for n in sorted(s.flow.index for s in read_sessions(busy))]


def test_a_short_table_is_sized_to_its_rows(busy: Path) -> None:
    lines = run_cli(str(busy)).splitlines()
    assert lines[0].startswith("session  ")  # as wide as the widest id, not the column limit
    assert main(["sessions", str(busy)]) == 0


# -- JSON text ------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@SOME
@given(json_values)
def test_indented_json_is_the_standard_librarys_text(value: object) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2, ensure_ascii=True)


def test_what_is_not_plain_json_is_left_to_the_standard_library() -> None:
    assert dumps_indented({1: (2, 3)}) == json.dumps({1: (2, 3)}, indent=2)
    with pytest.raises(TypeError):
        dumps_indented({"a": object()})


def test_a_connection_open_all_along_holds_back_a_bounded_number_of_sessions() -> None:
    import tracemalloc

    placed = [0, -1]  # how many, the last one

    def place(item: int, n: int) -> None:
        assert n > placed[1] or n == 0, "out of order while nothing forced it"
        placed[0] += 1
        placed[1] = max(placed[1], n)

    merger: SessionMerger[int] = SessionMerger(place, max_held=50)
    merger.opened(0, 0)  # stays open until the end
    tracemalloc.start()
    for local in range(1, 20_001):
        merger.opened(local % 2, local)
        merger.closed(local % 2, local, local)
        if local == 1_000:
            baseline = tracemalloc.get_traced_memory()[0]
    grown = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    assert grown < 20_000, grown
    assert placed[0] == 20_000 - 50
    merger.closed(0, 0, 0)
    merger.finish()
    assert placed[0] == 20_001
