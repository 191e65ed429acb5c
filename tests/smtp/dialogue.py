"""Feed scripted SMTP dialogues to an observer the way the flow layer would, and pick events.

A dialogue is a list of (direction, bytes) steps in capture order; each step is one segment
with its own frame number, so tests can check which frame an event cites.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields, replace
from typing import TypeVar

from analyzer._common import Direction, FrameRef
from analyzer.smtp import SmtpObserver
from analyzer.smtp.events import AnomalySeen, Event, SmtpAnomaly

C = Direction.CLIENT_TO_SERVER
S = Direction.SERVER_TO_CLIENT

CAPTURE = "test"

E = TypeVar("E")


class Dialogue:
    """An observer plus the stream offsets, frame numbers and clock a flow table would keep."""

    def __init__(self, observer: SmtpObserver | None = None) -> None:
        self.observer = observer or SmtpObserver()
        self.offsets = {C: 0, S: 0}
        self.frame_no = 0
        self.events: list[Event] = []

    def _next_frame(self) -> tuple[FrameRef, float]:
        self.frame_no += 1
        return FrameRef(CAPTURE, self.frame_no), 1000.0 + self.frame_no / 1000

    def send(self, direction: Direction, data: bytes) -> list[Event]:
        frame, ts = self._next_frame()
        events = self.observer.feed(
            direction, data, offset=self.offsets[direction], ts=ts, frame=frame
        )
        self.offsets[direction] += len(data)
        self.events += events
        return events

    def client(self, data: bytes) -> list[Event]:
        return self.send(C, data)

    def server(self, data: bytes) -> list[Event]:
        return self.send(S, data)

    def gap(self, direction: Direction, length: int) -> list[Event]:
        frame, ts = self._next_frame()
        events = self.observer.feed_gap(
            direction, offset=self.offsets[direction], length=length, ts=ts, frame=frame
        )
        self.offsets[direction] += length
        self.events += events
        return events

    def close(self, direction: Direction, *, reset: bool = False) -> list[Event]:
        frame, ts = self._next_frame()
        events = self.observer.feed_close(
            direction, reset=reset, offset=self.offsets[direction], ts=ts, frame=frame
        )
        self.events += events
        return events

    def eof(self) -> list[Event]:
        events = self.observer.feed_eof(ts=2000.0)
        self.events += events
        return events

    def play(self, steps: Iterable[tuple[Direction, bytes]]) -> list[Event]:
        for direction, data in steps:
            self.send(direction, data)
        return self.events

    def of(self, kind: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, kind)]

    def anomalies(self, kind: SmtpAnomaly | None = None) -> list[AnomalySeen]:
        return [a for a in self.of(AnomalySeen) if kind is None or a.kind is kind]


def run(steps: Iterable[tuple[Direction, bytes]], *, eof: bool = True, **kwargs: int) -> Dialogue:
    """Play a whole dialogue through a fresh observer (and end the capture)."""
    dialogue = Dialogue(SmtpObserver(**kwargs))
    dialogue.play(steps)
    if eof:
        dialogue.eof()
    return dialogue


def kinds(events: Sequence[Event]) -> list[str]:
    """Event type names, anomalies with their kind: a compact picture of what happened."""
    return [
        f"AnomalySeen:{e.kind.value}" if isinstance(e, AnomalySeen) else type(e).__name__
        for e in events
    ]


def without_frames(event: Event) -> Event:
    """The event with every frame and time field blanked, for comparing feeds of the same bytes
    cut into different segments."""
    changes: dict[str, object] = {}
    for f in fields(event):
        if f.name in ("frame", "last_frame"):
            changes[f.name] = None
        elif f.name in ("ts", "end_ts"):
            changes[f.name] = 0.0
        elif f.name == "command" and getattr(event, "command", None) is not None:
            changes[f.name] = without_frames(event.command)
    return replace(event, **changes)
