"""Read one capture with several processes and hand on its sessions in `tcp.stream` order.

Each worker process reads every record of the capture but decodes only the TCP conversations of
its own shard (`analyzer.capture.conversation`: both directions of a conversation land in the
same shard); for the others' segments it only lets the flow table's idle clock tick, so that
each conversation is treated exactly as a single reader would treat it. A worker renders each
session it finishes (`render`, in the worker) and reports, with the position of the record that
caused it, every conversation it numbered and every one that ended (`read_shard`).

The calling process merges those reports in capture order: a conversation's `tcp.stream`
number is how many conversations, of any shard, were numbered before it -- the number a single
reader gives it, so session ids do not depend on the number of workers. Rendered sessions are
handed to `place` in `tcp.stream` order, each as soon as every earlier conversation has ended;
at most `MAX_HELD` wait for an earlier one, beyond which the earliest waiting one is handed on
at once (a connection that stays open while ten thousand later ones come and go). So memory
follows the number of open connections, never the size of the capture.

Small captures, and platforms without `fork`, are read in this process by the same code. The
flow table's capacity (`FlowTable` `max_flows`) applies per worker, so when more connections
than that are open at once, which ones are evicted depends on the number of workers; and in a
worker a `port_reuse` anomaly's detail quotes the earlier connection's number in the shard.

This module starts processes and merges; it decodes and parses nothing itself.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Final, Generic, NamedTuple, Protocol, TypeVar

from analyzer.capture import Capture, CaptureStats, PathLike, open_capture
from analyzer.capture.conversation import Shard
from analyzer.capture.source import is_stream
from analyzer.dispatch import PipelineStats, SessionSink, fewer_collections, role_hint
from analyzer.errors import CaptureError, SmtpfwError
from analyzer.flows import FlowTable
from analyzer.flows.events import FlowInfo
from analyzer.session.model import SmtpSession

T = TypeVar("T")
Rendered = str | tuple[str, ...]
"""What `map_sessions` renders a session into: text, or a row of texts."""

WORKERS_ENV = "SMTPFW_WORKERS"
"""Environment variable that sets the number of worker processes (1: read in this process)."""
MAX_WORKERS = 4
"""Workers used at most by default: every worker reads the whole file, so beyond a few the
reading they all repeat outweighs the decoding they share."""
PARALLEL_MIN_BYTES = 32 << 20
"""Captures smaller than this (all files together) are read in this process: starting workers
would cost more than it saves."""
TOKEN_LOW: Final = 10**18
"""The smallest provisional session number (see `map_sessions`)."""
BATCH_RECORDS = 8192
"""A worker sends what it found at least every this many progress reports of `read_shard` (one
per segment the flow table did not take, one per `PROGRESS_INTERVAL` of capture
time)..."""
BATCH_EVENTS = 512
"""...and whenever this many conversations began or ended since it last sent."""
MAX_HELD = 10_000
"""Rendered sessions kept waiting for an earlier conversation to end."""

_OPENED = 0
_CLOSED = 1

Event = tuple[int, int, int, object]
"""(position, _OPENED or _CLOSED, conversation number in the shard, rendered session or None)."""
Batch = tuple[list[Event], int]
"""Events, and the position up to which the worker has read."""


# -- one reader of one shard -------------------------------------------------------------------


END_POSITION: Final = 1 << 62
"""A position after every record of every file: where `FlowTable.finish` closes what is left."""
FRAME_BITS: Final = 40
"""A record's position is `file_no << FRAME_BITS | frame_no`: file number, then frame number
(files of up to 2**40 records)."""
PROGRESS_INTERVAL: Final = 0.01
"""Seconds of capture time after which a shard reader reports how far it got, even while it
reads only other shards' segments."""


class ShardListener(Protocol):
    """What `read_shard` reports, each call with the position of the record being read.

    Positions never decrease. A conversation is `opened` at exactly the record that made the
    flow table number it; `closed` and `progress` may name an earlier record than the one
    being read (segments the flow table took straight from the decoder do not report theirs).
    """

    def opened(self, position: int, index: int) -> None:
        """The conversation numbered `index` (in this shard) began."""

    def closed(self, position: int, index: int, session: SmtpSession | None) -> None:
        """Conversation `index` ended: its session, or None when it carried no SMTP."""

    def progress(self, position: int) -> None:
        """Every record up to and including `position` has been read."""


class _Cursor:
    """Where `read_shard` is, and how many conversations it has announced."""

    __slots__ = ("announced", "position")

    def __init__(self) -> None:
        self.position = 0
        self.announced = 0


def read_shard(
    capture: Capture,
    listener: ShardListener,
    *,
    shard: Shard | None = None,
    stats: PipelineStats | None = None,
) -> None:
    """Read `capture`, or only the conversations of `shard`, telling `listener` as conversations
    begin and end (see `ShardListener`).

    Conversation numbers count the conversations this reader sees: with a shard they are local
    to it, and `position`s let a caller number every conversation of the capture as one reader
    would. Each session's `id` and `flow.index` carry the local number. The idle sweep runs on
    the timestamps of every TCP segment, the other shards' included, so that each conversation
    is treated exactly as when the whole capture is read at once.
    """
    sink = SessionSink(capture.capture_id, keep_streams=False)
    if stats is not None:
        sink.stats = stats
    table = FlowTable(sink, role_hint=role_hint)
    sink.table = table
    cursor = _Cursor()
    opened, progress = listener.opened, listener.progress

    def announce() -> None:
        while cursor.announced < table.next_index:
            opened(cursor.position, cursor.announced)
            cursor.announced += 1

    def closed(flow: FlowInfo, session: SmtpSession | None) -> None:
        announce()
        listener.closed(cursor.position, flow.index, session)

    def skipped(ts: float, file_no: int, frame_no: int) -> float:
        cursor.position = where = (file_no << FRAME_BITS) | frame_no
        next_sweep = table.tick(ts)
        progress(where)
        return min(next_sweep, ts + PROGRESS_INTERVAL)

    sink.on_closed = closed
    add = table.add
    segments = capture.segments(
        shard=shard, skipped=skipped if shard is not None else None, take=table
    )
    with fewer_collections():
        for segment in segments:
            frame = segment.frame
            cursor.position = where = (frame.file_no << FRAME_BITS) | frame.frame_no
            add(segment)
            announce()
            progress(where)
        cursor.position = END_POSITION
        table.finish()
        sink.table = None  # the table holds the sink: no cycle to leave behind
        announce()
        progress(END_POSITION)


# -- many readers ------------------------------------------------------------------------------


def default_workers(paths: Sequence[PathLike]) -> int:
    """How many processes should read `paths`: `SMTPFW_WORKERS` if set, else one per CPU this
    process may use (at most `MAX_WORKERS`) for captures of `PARALLEL_MIN_BYTES` or more."""
    wanted = os.environ.get(WORKERS_ENV, "").strip()
    if wanted:
        try:
            return max(1, int(wanted))
        except ValueError:
            pass
    try:
        size = sum(os.path.getsize(p) for p in paths)
    except OSError:
        return 1
    if size < PARALLEL_MIN_BYTES:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


class SessionMerger(Generic[T]):
    """Numbers the conversations of all shards as one reader would, and hands rendered sessions
    to `place(rendered, tcp_stream)` in `tcp.stream` order (see the module docstring).

    Feed it each shard's reports in capture order across shards: `opened` and `closed` with the
    shard's own conversation numbers; call `finish` at the end.
    """

    def __init__(self, place: Callable[[T, int], None], max_held: int = MAX_HELD) -> None:
        self._place = place
        self._max_held = max(1, max_held)
        self._next = 0
        self._numbers: dict[tuple[int, int], int] = {}
        """tcp.stream number of each open conversation, by (shard, number in the shard)."""
        self._open: OrderedDict[int, None] = OrderedDict()
        """The numbers of open conversations, lowest first (they are opened in order)."""
        self._held: list[tuple[int, T]] = []
        """Heap of rendered sessions waiting for an earlier conversation to end."""

    @property
    def conversations(self) -> int:
        """Conversations numbered so far."""
        return self._next

    def opened(self, shard: int, local: int) -> None:
        number = self._next
        self._next += 1
        self._numbers[(shard, local)] = number
        self._open[number] = None

    def closed(self, shard: int, local: int, rendered: T | None) -> None:
        number = self._numbers.pop((shard, local))
        del self._open[number]
        if rendered is not None:
            heapq.heappush(self._held, (number, rendered))
        self._release()

    def finish(self) -> None:
        """Hand on everything still held, in order."""
        held = self._held
        while held:
            number, rendered = heapq.heappop(held)
            self._place(rendered, number)

    def _release(self) -> None:
        held = self._held
        first_open = next(iter(self._open), None)
        while held and (
            first_open is None or held[0][0] < first_open or len(held) > self._max_held
        ):
            number, rendered = heapq.heappop(held)
            self._place(rendered, number)


class _Local(Generic[T]):
    """`read_shard`'s listener when this process reads the whole capture: straight to the
    merger."""

    def __init__(self, merger: SessionMerger[T], render: Callable[[SmtpSession], T]) -> None:
        self._merger = merger
        self._render = render

    def opened(self, position: int, index: int) -> None:
        self._merger.opened(0, index)

    def closed(self, position: int, index: int, session: SmtpSession | None) -> None:
        self._merger.closed(0, index, None if session is None else self._render(session))

    def progress(self, position: int) -> None:
        pass


class _Sender(Generic[T]):
    """`read_shard`'s listener in a worker: batches of events down a pipe. Each session is
    rendered numbered `token` (its real number is known only once the shards are merged)."""

    def __init__(self, conn: Connection, render: Callable[[SmtpSession], T], token: int) -> None:
        self._conn = conn
        self._render = render
        self._token = token
        self._events: list[Event] = []
        self._records = 0

    def opened(self, position: int, index: int) -> None:
        self._events.append((position, _OPENED, index, None))

    def closed(self, position: int, index: int, session: SmtpSession | None) -> None:
        rendered = None
        if session is not None:
            rendered = self._render(numbered(session, self._token))
        self._events.append((position, _CLOSED, index, rendered))

    def progress(self, position: int) -> None:
        self._records += 1
        if (
            self._records >= BATCH_RECORDS
            or len(self._events) >= BATCH_EVENTS
            or position == END_POSITION
        ):
            batch: Batch = (self._events, position)
            self._conn.send(batch)
            self._events = []
            self._records = 0


class _Failure(NamedTuple):
    """Why a worker stopped: sent down its pipe instead of a batch. (A NamedTuple: it is
    pickled, which a frozen dataclass of the compiled build cannot be.)"""

    kind: str
    """"capture" (a CaptureError), "usage" (another SmtpfwError) or "crash" (a bug)."""
    message: str
    path: str = ""


def numbered(session: SmtpSession, number: int) -> SmtpSession:
    """`session` as conversation `number` of its capture: its id and `flow.index`."""
    flow = replace(session.flow, index=number)
    return replace(session, id=f"{session.capture_id}#{number}", flow=flow)


def _token() -> int:
    """A number no rendered session holds by chance: 19 random digits."""
    return TOKEN_LOW + secrets.randbelow(9 * TOKEN_LOW)


def _renumber(rendered: Rendered, token: str, number: int) -> Rendered:
    """`rendered` with the provisional number `token` replaced by the conversation's own."""
    text = str(number)
    if isinstance(rendered, str):
        return rendered.replace(token, text)
    return tuple(cell.replace(token, text) for cell in rendered)


def _work(
    conn: Connection,
    paths: list[PathLike],
    capture_id: str,
    shard: Shard,
    render: Callable[[SmtpSession], object],
    token: int,
) -> None:
    """A worker process: read one shard and send what it found; errors go down the pipe."""
    try:
        capture = open_capture(paths, capture_id)
        read_shard(capture, _Sender(conn, render, token), shard=shard)
        if shard.index == 0:
            # every shard reads every record: the first one's record counters are the file's
            conn.send(capture.stats)
    except CaptureError as exc:
        conn.send(_Failure("capture", exc.problem, str(exc.path)))
    except SmtpfwError as exc:
        conn.send(_Failure("usage", str(exc)))
    except BaseException as exc:  # reported by the parent; a worker never prints
        conn.send(_Failure("crash", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _raise(failure: _Failure) -> None:
    if failure.kind == "capture":
        raise CaptureError(failure.path, failure.message)
    if failure.kind == "usage":
        raise SmtpfwError(failure.message)
    raise RuntimeError(f"a worker process failed: {failure.message}")


def _merge(conns: list[Connection], merger: SessionMerger[T]) -> CaptureStats:
    """Feed the workers' events to `merger` in capture order; return the capture's record
    counters (sent by the first worker once it is done).

    Events at or before the position every worker has read past are final; the worker that is
    furthest behind is the one read from next, so the others wait (their pipes fill) instead of
    piling up events here.
    """
    count = len(conns)
    queues: list[deque[Event]] = [deque() for _ in range(count)]
    progress = [-1] * count
    while True:
        settled = min(progress)
        while True:
            best = -1
            best_position = settled + 1
            for shard in range(count):
                queue = queues[shard]
                if queue and queue[0][0] < best_position:
                    best, best_position = shard, queue[0][0]
            if best < 0:
                break
            _, kind, local, rendered = queues[best].popleft()
            if kind == _OPENED:
                merger.opened(best, local)
            else:
                merger.closed(best, local, rendered)  # type: ignore[arg-type]
        if settled >= END_POSITION:
            try:
                stats = conns[0].recv()
            except EOFError:
                raise RuntimeError("a worker process ended without reporting") from None
            if isinstance(stats, _Failure):
                _raise(stats)
            return stats  # type: ignore[no-any-return]
        behind = progress.index(settled)
        try:
            message = conns[behind].recv()
        except EOFError:
            raise RuntimeError("a worker process ended without reporting") from None
        if isinstance(message, _Failure):
            _raise(message)
        events, reached = message
        queues[behind].extend(events)
        progress[behind] = reached


def map_sessions(
    paths: Sequence[PathLike],
    capture_id: str,
    render: Callable[[SmtpSession], Rendered],
    place: Callable[[Rendered, int], None],
    *,
    workers: int | None = None,
    on_stats: Callable[[CaptureStats], None] | None = None,
) -> int:
    """Render every SMTP session of a capture and place them in `tcp.stream` order.

    `render(session)` runs where the session was read, possibly in a worker process, and
    returns text or a row of texts. There the session's number is not known yet: it is
    rendered numbered with a token of 19 random digits, replaced in the rendered text by its
    real number before `place(rendered, tcp_stream)` runs, in this process. (The number of the
    earlier connection that a `port_reuse` anomaly's detail quotes stays the shard's own.)
    Returns the number of TCP conversations;
    `on_stats`, if given, is told what reading the files found (packets, damage anomalies).
    Raises CaptureError as `open_capture` does, also for a file that fails while being read.
    """
    files = list(paths)
    open_capture(files, capture_id)  # refuse unusable files here, before any worker starts
    count = default_workers(files) if workers is None else max(1, workers)
    if any(is_stream(os.fspath(p)) for p in files):
        count = 1  # a stream is read once, by this process
    if count == 1 or "fork" not in multiprocessing.get_all_start_methods():
        merger: SessionMerger[Rendered] = SessionMerger(place)
        capture = open_capture(files, capture_id)
        read_shard(capture, _Local(merger, render))
        merger.finish()
        if on_stats is not None:
            on_stats(capture.stats)
        return merger.conversations
    token = _token()
    token_text = str(token)

    def place_numbered(rendered: Rendered, number: int) -> None:
        place(_renumber(rendered, token_text, number), number)

    merger = SessionMerger(place_numbered)
    context = multiprocessing.get_context("fork")
    conns: list[Connection] = []
    processes = []
    try:
        for index in range(count):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_work,
                args=(sender, files, capture_id, Shard(index, count), render, token),
                name=f"smtpfw-shard-{index}",
                daemon=True,
            )
            process.start()
            sender.close()
            conns.append(receiver)
            processes.append(process)
        stats = _merge(conns, merger)
        merger.finish()
        if on_stats is not None:
            on_stats(stats)
    finally:
        for conn in conns:
            conn.close()
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    return merger.conversations
