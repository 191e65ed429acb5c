"""A quickly constructed value is the value its dataclass makes: same type, equal, same hash and
repr, still frozen; classes it cannot copy faithfully are refused."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest

from analyzer._common import Direction, FrameMarks, FrameRef
from analyzer._quick import quick_constructor
from analyzer.capture.decode import new_frame_ref
from analyzer.flows.events import StreamData
from analyzer.flows.reassembly import new_stream_data
from analyzer.session.model import HeaderField, Line
from analyzer.smtp.events import (
    Command,
    MessageHeader,
    Reply,
    new_command,
    new_message_header,
    new_reply,
)

FRAME = FrameRef("c", 3, 1)
COMMAND = Command("MAIL", b"FROM:<a@b>", b"MAIL FROM:<a@b>", b"\r\n", 10, FRAME, 1.5, True)

CASES: list[tuple[Any, Any, tuple[object, ...]]] = [
    (new_frame_ref, FrameRef, ("cap", 7, 2)),
    (
        new_stream_data,
        StreamData,
        (
            Direction.CLIENT_TO_SERVER,
            7,
            b"ab",
            FRAME,
            1.5,
            FrameMarks([7, 8], [FRAME, FRAME], [1.5, 1.6]),
        ),
    ),
    (
        new_command,
        Command,
        ("MAIL", b"FROM:<a@b>", b"MAIL FROM:<a@b>", b"\r\n", 10, FRAME, 1.5, True),
    ),
    (new_reply, Reply, (250, (b"ok",), b"250 ok\r\n", COMMAND, False, 0, FRAME, FRAME, 1.0, 1.1)),
    (new_message_header, MessageHeader, (b"Subject", b"Subject: x\r\n", 5, 10, FRAME, FRAME, 2.0)),
    (
        quick_constructor(HeaderField),
        HeaderField,
        ("Subject", "x", 5, 10, FRAME, FRAME, 2.0, False),
    ),
    (
        quick_constructor(Line),
        Line,
        (Direction.SERVER_TO_CLIENT, "250 ok", 0, FRAME, 1.0, 250, None, 3),
    ),
]


@pytest.mark.parametrize("quick, cls, args", CASES, ids=[c[1].__name__ for c in CASES])
def test_a_quick_value_is_the_value_the_dataclass_makes(
    quick: Any, cls: type, args: tuple[object, ...]
) -> None:
    made, expected = quick(*args), cls(*args)
    assert type(made) is cls
    assert made == expected and hash(made) == hash(expected) and repr(made) == repr(expected)
    assert tuple(getattr(made, f.name) for f in dataclasses.fields(cls)) == args
    first = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, first, None)


def test_defaults_and_keywords_work_as_in_the_dataclass() -> None:
    assert (
        new_frame_ref("cap", 7) == FrameRef("cap", 7) == new_frame_ref(frame_no=7, capture_id="cap")
    )
    data = new_stream_data(Direction.CLIENT_TO_SERVER, 0, b"x", FRAME, 0.0)
    assert data.marks is None


@dataclass(slots=True)
class _Mutable:
    a: int


@dataclass(frozen=True)
class _WithoutSlots:
    a: int


@dataclass(frozen=True, slots=True)
class _WithPostInit:
    a: int

    def __post_init__(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class _WithFactory:
    a: list[int] = field(default_factory=list)


@pytest.mark.parametrize("cls", [_Mutable, _WithoutSlots, _WithPostInit, _WithFactory, int])
def test_classes_it_cannot_copy_faithfully_are_refused(cls: Any) -> None:
    with pytest.raises(TypeError):
        quick_constructor(cls)
