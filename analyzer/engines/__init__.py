"""The engines that read a capture into `SmtpSession`s, by name: `ENGINES`.

`native` is smtpfw's own reader (`pipeline` through `parallel`, sharded over processes).
`tshark` reads captures with Wireshark's command-line tool: its file readers (every format
Wireshark opens), its TCP reassembly and its SMTP dissector, folded into sessions with the same
`SessionBuilder` (`engines.tshark`); it is a second opinion on a capture and a way in for
formats the native reader does not know, and it is imported only when chosen. Each engine says
whether it can read a file (`check`) and hands on every session rendered, in `tcp.stream` order
(`map_sessions`). Nothing in this package is needed by the native pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from analyzer.capture import CaptureStats, open_capture
from analyzer.capture.source import is_stream
from analyzer.errors import CaptureError
from analyzer.parallel import Rendered, map_sessions
from analyzer.session.model import SmtpSession


def _check_native(path: str) -> None:
    open_capture([path], "probe")


def _check_tshark(path: str) -> None:
    if is_stream(path):
        raise CaptureError(path, "the tshark engine reads files only: save it first")
    from analyzer.engines.tshark import check_capture_tshark

    check_capture_tshark(path)


def _map_native(
    paths: Sequence[str],
    capture_id: str,
    render: Callable[[SmtpSession], Rendered],
    place: Callable[[Rendered, int], None],
    on_stats: Callable[[CaptureStats], None] | None,
) -> int:
    return map_sessions(paths, capture_id, render, place, on_stats=on_stats)


def _map_tshark(
    paths: Sequence[str],
    capture_id: str,
    render: Callable[[SmtpSession], Rendered],
    place: Callable[[Rendered, int], None],
    on_stats: Callable[[CaptureStats], None] | None,
) -> int:
    """tshark's sessions, sorted as the native engine hands them on; `on_stats` is never
    called (tshark reports no record counters)."""
    from analyzer.engines.tshark import read_sessions_tshark

    sessions = read_sessions_tshark(paths, capture_id)
    for session in sorted(sessions, key=lambda s: (s.start_ts, s.flow.index)):
        place(render(session), session.flow.index)
    return len(sessions)


@dataclass(frozen=True, slots=True)
class Engine:
    """One way of reading captures into sessions."""

    name: str
    summary: str
    """What `--engine` help says of it."""
    check: Callable[[str], None]
    """Raise `CaptureError` when this engine cannot read the file."""
    map_sessions: Callable[
        [
            Sequence[str],
            str,
            Callable[[SmtpSession], Rendered],
            Callable[[Rendered, int], None],
            Callable[[CaptureStats], None] | None,
        ],
        int,
    ]
    """(paths, capture id, render, place, on_stats): as `parallel.map_sessions`; returns how
    many connections (native) or sessions (tshark) were read."""


ENGINES: dict[str, Engine] = {
    engine.name: engine
    for engine in (
        Engine("native", "fast, default", _check_native, _map_native),
        Engine("tshark", "reads every format Wireshark reads", _check_tshark, _map_tshark),
    )
}
"""The engines by name, the default first."""


def check_captures(
    paths: Sequence[str], engine: str = "native"
) -> tuple[list[str], list[CaptureError]]:
    """The files that `engine` can read, and the problem with each one it cannot."""
    check = ENGINES[engine].check
    good: list[str] = []
    problems: list[CaptureError] = []
    for path in paths:
        try:
            check(path)
        except CaptureError as exc:
            problems.append(exc)
        else:
            good.append(path)
    return good, problems
