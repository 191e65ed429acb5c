"""Sessions are plain values in both builds: they survive pickle and deepcopy unchanged (a
notebook saves them, a process pool hands them on), frames included."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from pathlib import Path

import pytest

import analyzer
from analyzer._common import FrameRef

CAPTURE = Path(__file__).parents[2] / "captures" / "pix-dkim-reset" / "client-side.pcap"


def test_sessions_survive_pickle_and_deepcopy() -> None:
    sessions = analyzer.read_sessions(CAPTURE)
    assert sessions
    assert pickle.loads(pickle.dumps(sessions)) == sessions
    assert copy.deepcopy(sessions) == sessions


def test_a_frame_reference_is_a_frozen_ordered_value() -> None:
    frame = FrameRef("client", 7, 1)
    assert pickle.loads(pickle.dumps(frame)) == frame == copy.copy(frame)
    assert hash(frame) == hash(FrameRef("client", 7, 1))
    assert sorted([FrameRef("c", 9), FrameRef("c", 2, 1), FrameRef("c", 2)]) == [
        FrameRef("c", 2),
        FrameRef("c", 2, 1),
        FrameRef("c", 9),
    ]
    assert str(frame) == "client[1]#7" and str(FrameRef("client", 7)) == "client#7"
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.frame_no = 8  # type: ignore[misc]
