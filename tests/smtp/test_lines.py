"""Line splitting: terminators, partial lines across segments, and the cap on what is kept."""

from __future__ import annotations

from analyzer._common import FrameRef
from analyzer.smtp.lines import Line, LineReader

F1 = FrameRef("t", 1)
F2 = FrameRef("t", 2)


def take_all(reader: LineReader, data: bytes, offset: int = 0, frame: FrameRef = F1) -> list[Line]:
    lines = []
    pos = 0
    while pos < len(data):
        line, pos = reader.take(data, pos, len(data), offset, frame, 1.0)
        if line is not None:
            lines.append(line)
    return lines


def test_a_crlf_line_keeps_its_terminator_and_offset() -> None:
    lines = take_all(LineReader(100), b"EHLO a\r\nQUIT\r\n", offset=40)
    assert [(line.content, line.terminator, line.offset) for line in lines] == [
        (b"EHLO a", b"\r\n", 40),
        (b"QUIT", b"\r\n", 48),
    ]


def test_a_bare_lf_ends_a_line_and_is_recorded_as_such() -> None:
    (line,) = take_all(LineReader(100), b"NOOP\n")
    assert line.content == b"NOOP"
    assert line.terminator == b"\n"


def test_a_cr_alone_in_the_last_byte_of_a_segment_joins_the_lf_of_the_next() -> None:
    reader = LineReader(100)
    assert take_all(reader, b"QUIT\r", frame=F1) == []
    (line,) = take_all(reader, b"\n", offset=5, frame=F2)
    assert (line.content, line.terminator, line.offset) == (b"QUIT", b"\r\n", 0)
    assert (line.frame, line.last_frame) == (F1, F2)


def test_a_partial_line_is_kept_until_its_end_arrives() -> None:
    reader = LineReader(100)
    assert take_all(reader, b"MAIL FR") == []
    assert reader.pending == 7
    (line,) = take_all(reader, b"OM:<a@b>\r\nRC", offset=7, frame=F2)
    assert line.content == b"MAIL FROM:<a@b>"
    assert line.frame == F1 and line.last_frame == F2
    assert reader.pending == 2


def test_a_line_longer_than_the_cap_is_cut_but_its_length_is_exact() -> None:
    reader = LineReader(10)
    lines = take_all(reader, b"A" * 25 + b"\r\nNOOP\r\n")
    assert lines[0].content == b"A" * 10
    assert lines[0].length == 25 and lines[0].truncated
    assert lines[0].terminator == b"\r\n"
    assert lines[1].offset == 27 and lines[1].content == b"NOOP"


def test_a_long_line_fed_in_pieces_never_holds_more_than_the_cap() -> None:
    reader = LineReader(64)
    for i in range(1000):
        take_all(reader, b"x" * 100, offset=i * 100)
        assert reader.buffered <= 64
    (line,) = take_all(reader, b"\r\n", offset=100_000)
    assert line.length == 100_000 and len(line.content) == 64 and line.terminator == b"\r\n"


def test_a_cap_boundary_crlf_is_not_part_of_the_content() -> None:
    reader = LineReader(4)
    take_all(reader, b"ABCD\r")
    (line,) = take_all(reader, b"\n", offset=5)
    assert line.content == b"ABCD" and line.length == 4 and not line.truncated


def test_flush_gives_the_partial_line_without_terminator() -> None:
    reader = LineReader(100)
    take_all(reader, b"QUI")
    line = reader.flush(F2, 2.0)
    assert line is not None
    assert (line.content, line.terminator, line.last_frame) == (b"QUI", b"", F2)
    assert reader.flush(F2, 2.0) is None


def test_detach_hands_over_the_partial_line_and_drop_forgets_it() -> None:
    reader = LineReader(100)
    take_all(reader, b"From: a", offset=30)
    assert reader.detach() == (b"From: a", 30, F1, 1.0)
    assert reader.pending == 0
    take_all(reader, b"xyz")
    assert reader.drop() == 3
    assert reader.pending == 0


def test_take_stops_at_the_given_end() -> None:
    reader = LineReader(100)
    data = b"AB\r\nCD\r\n"
    line, pos = reader.take(data, 0, 3, 0, F1, 1.0)
    assert line is None and pos == 3
    line, pos = reader.take(data, 3, len(data), 0, F1, 1.0)
    assert line is not None and line.content == b"AB" and pos == 4
