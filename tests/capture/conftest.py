"""Fixtures for the capture-layer tests: write crafted bytes to files and read them back."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from analyzer.capture import Capture, Segment, open_capture

Reader = Callable[..., tuple[list[Segment], Capture]]


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """write(data, name="capture.pcap", compress=False) -> path of the new file."""

    def _write(data: bytes, name: str = "capture.pcap", compress: bool = False) -> Path:
        path = tmp_path / name
        path.write_bytes(gzip.compress(data) if compress else data)
        return path

    return _write


@pytest.fixture
def read(write: Callable[..., Path]) -> Reader:
    """read(data, name=..., compress=...) -> (every segment, the exhausted Capture)."""

    def _read(
        data: bytes, name: str = "capture.pcap", compress: bool = False
    ) -> tuple[list[Segment], Capture]:
        capture = open_capture([write(data, name, compress)], "t")
        return list(capture.segments()), capture

    return _read
