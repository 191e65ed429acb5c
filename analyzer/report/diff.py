"""Character-level differences between two versions of captured text, for the renderers.

What it does: splits two versions of a line (the bytes as sent and as received, already decoded)
into runs of equal and changed characters, pairs up the lines of two multi-line excerpts, and
measures how wide text is in a monospace font so a caret line can sit under the changed
characters. Same-length versions are compared position by position (a length-preserving
middlebox overwrites in place); others with `difflib` on the characters.
What it does not do: escape anything (each renderer escapes the runs it prints) or read the
report model. Work is bounded: longer inputs than `MAX_DIFF_CHARS` are compared as one change.
"""

from __future__ import annotations

import difflib
import enum
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MAX_DIFF_CHARS = 4000
"""Characters of each version compared by `difflib` (quadratic); a longer middle is one change."""
MIN_EQUAL_RUN = 3
"""Equal runs shorter than this between two changes are shown as changed (no confetti)."""
MAX_DIFF_LINES = 2000
"""Lines of each excerpt aligned; the rest of a longer excerpt is shown as one block."""


@dataclass(frozen=True, slots=True)
class Span:
    """A run of characters of one version, and whether it differs from the other version."""

    text: str
    changed: bool


Spans = tuple[Span, ...]


def _merge(spans: list[Span]) -> Spans:
    """Adjacent runs of the same kind joined, empty runs dropped."""
    out: list[Span] = []
    for span in spans:
        if not span.text:
            continue
        if out and out[-1].changed == span.changed:
            out[-1] = Span(out[-1].text + span.text, span.changed)
        else:
            out.append(span)
    return tuple(out)


def _positional(a: str, b: str) -> tuple[Spans, Spans]:
    a_spans: list[Span] = []
    b_spans: list[Span] = []
    for x, y in zip(a, b, strict=True):
        a_spans.append(Span(x, x != y))
        b_spans.append(Span(y, x != y))
    return _merge(a_spans), _merge(b_spans)


def char_diff(a: str, b: str) -> tuple[Spans, Spans]:
    """`a` and `b` as runs, with the characters that differ from the other version marked."""
    if a == b:
        return _merge([Span(a, False)]), _merge([Span(b, False)])
    if len(a) == len(b):
        return _positional(a, b)
    prefix = 0
    limit = min(len(a), len(b))
    while prefix < limit and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and a[len(a) - 1 - suffix] == b[len(b) - 1 - suffix]:
        suffix += 1
    a_mid, b_mid = a[prefix : len(a) - suffix], b[prefix : len(b) - suffix]
    head = [Span(a[:prefix], False)], [Span(b[:prefix], False)]
    tail = [Span(a[len(a) - suffix :], False)], [Span(b[len(b) - suffix :], False)]
    if len(a_mid) > MAX_DIFF_CHARS or len(b_mid) > MAX_DIFF_CHARS or not a_mid or not b_mid:
        middle = [Span(a_mid, True)], [Span(b_mid, True)]
    else:
        middle = ([], [])
        matcher = difflib.SequenceMatcher(None, a_mid, b_mid, autojunk=False)
        opcodes = matcher.get_opcodes()
        for k, (tag, i1, i2, j1, j2) in enumerate(opcodes):
            # a short equal run between two changes reads better as part of one change
            same = tag == "equal" and not (i2 - i1 < MIN_EQUAL_RUN and 0 < k < len(opcodes) - 1)
            middle[0].append(Span(a_mid[i1:i2], not same))
            middle[1].append(Span(b_mid[j1:j2], not same))
    return (
        _merge(head[0] + middle[0] + tail[0]),
        _merge(head[1] + middle[1] + tail[1]),
    )


class RowKind(enum.StrEnum):
    SAME = "same"
    """The line is identical in both versions."""
    CHANGED = "changed"
    """Both versions have the line, with different characters."""
    ONLY_A = "only_a"
    """Only the first version has the line."""
    ONLY_B = "only_b"
    """Only the second version has the line."""


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One line of two aligned excerpts; `a` or `b` is empty when that version lacks the line."""

    kind: RowKind
    a: Spans
    b: Spans


def _row(a: str | None, b: str | None) -> DiffRow:
    if a is None:
        return DiffRow(RowKind.ONLY_B, (), (Span(b or "", True),))
    if b is None:
        return DiffRow(RowKind.ONLY_A, (Span(a, True),), ())
    if a == b:
        spans = _merge([Span(a, False)])
        return DiffRow(RowKind.SAME, spans, spans)
    a_spans, b_spans = char_diff(a, b)
    return DiffRow(RowKind.CHANGED, a_spans, b_spans)


def line_diff(a: str, b: str) -> list[DiffRow]:
    """The lines of two excerpts ("\\n"-separated) aligned, changed lines diffed by character."""
    a_lines, b_lines = a.split("\n"), b.split("\n")
    if len(a_lines) == len(b_lines):
        return [_row(x, y) for x, y in zip(a_lines, b_lines, strict=True)]
    rest_a, rest_b = a_lines[MAX_DIFF_LINES:], b_lines[MAX_DIFF_LINES:]
    a_lines, b_lines = a_lines[:MAX_DIFF_LINES], b_lines[:MAX_DIFF_LINES]
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(None, a_lines, b_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows.extend(_row(x, x) for x in a_lines[i1:i2])
            continue
        old, new = a_lines[i1:i2], b_lines[j1:j2]
        paired = min(len(old), len(new)) if tag == "replace" else 0
        rows.extend(_row(x, y) for x, y in zip(old[:paired], new[:paired], strict=True))
        rows.extend(_row(x, None) for x in old[paired:])
        rows.extend(_row(None, y) for y in new[paired:])
    if rest_a or rest_b:
        rows.append(_row("\n".join(rest_a), "\n".join(rest_b)))
    return rows


def fold(rows: list[DiffRow], context: int) -> list[DiffRow | int]:
    """Runs of identical rows longer than needed replaced by their length, `context` rows kept
    next to each change (none at the edges)."""
    out: list[DiffRow | int] = []
    run: list[DiffRow] = []

    def flush(at_start: bool, at_end: bool) -> None:
        keep_head = 0 if at_start else context
        keep_tail = 0 if at_end else context
        if len(run) > keep_head + keep_tail + 2:
            out.extend(run[:keep_head])
            out.append(len(run) - keep_head - keep_tail)
            out.extend(run[len(run) - keep_tail :])
        else:
            out.extend(run)
        run.clear()

    started = False
    for row in rows:
        if row.kind is RowKind.SAME:
            run.append(row)
            continue
        flush(not started, False)
        started = True
        out.append(row)
    flush(not started, True)
    return out


def mark_tokens(line: str, tokens: Sequence[str]) -> Spans:
    """A line with every occurrence of the given tokens marked (what a finding points at)."""
    wanted = [t for t in tokens if t]
    if not wanted:
        return _merge([Span(line, False)])
    pattern = re.compile("|".join(re.escape(t) for t in sorted(wanted, key=len, reverse=True)))
    spans: list[Span] = []
    pos = 0
    for match in pattern.finditer(line):
        spans.append(Span(line[pos : match.start()], False))
        spans.append(Span(match.group(0), True))
        pos = match.end()
    spans.append(Span(line[pos:], False))
    return _merge(spans)


def changed(spans: Spans) -> bool:
    return any(span.changed for span in spans)


def plain(spans: Spans) -> str:
    return "".join(span.text for span in spans)


def clip_spans(spans: Spans, limit: int) -> Spans:
    """At most `limit` characters of the runs, the cut marked with '…' (an unchanged run)."""
    total = sum(len(span.text) for span in spans)
    if total <= limit:
        return spans
    out: list[Span] = []
    room = max(0, limit - 1)
    for span in spans:
        if room <= 0:
            break
        out.append(Span(span.text[:room], span.changed))
        room -= len(span.text[:room])
    out.append(Span("…", False))
    return _merge(out)


def map_spans(spans: Spans, transform: Callable[[str], str]) -> Spans:
    """Each run's text passed through `transform` (an escaping function), marks kept."""
    return _merge([Span(transform(span.text), span.changed) for span in spans])


def char_width(ch: str) -> int:
    """Columns a character takes in a monospace font: 0 combining, 2 wide (East Asian), else 1."""
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def width(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(char_width(ch) for ch in text)


def caret_line(spans: Spans, mark: str = "^") -> str:
    """Spaces under unchanged runs and `mark`s under changed ones, trailing spaces dropped."""
    return "".join((mark if span.changed else " ") * width(span.text) for span in spans).rstrip()
