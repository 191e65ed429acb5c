"""Character and line differences: they rebuild both versions and mark exactly what changed."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from analyzer.report.diff import (
    MAX_DIFF_CHARS,
    RowKind,
    Span,
    caret_line,
    char_diff,
    clip_spans,
    fold,
    line_diff,
    plain,
    width,
)

texts = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n"), max_size=60)


@given(texts, texts)
def test_the_runs_of_each_side_rebuild_that_side(a: str, b: str) -> None:
    a_spans, b_spans = char_diff(a, b)
    assert plain(a_spans) == a
    assert plain(b_spans) == b


@given(texts)
def test_identical_versions_have_no_change(a: str) -> None:
    a_spans, b_spans = char_diff(a, a)
    assert not any(s.changed for s in a_spans + b_spans)


@given(st.data())
def test_same_length_versions_mark_exactly_the_overwritten_positions(data: st.DataObject) -> None:
    a = data.draw(texts)
    b = data.draw(st.text(alphabet="XA*", min_size=len(a), max_size=len(a)))
    a_spans, b_spans = char_diff(a, b)
    marked: list[bool] = []
    for span in a_spans:
        marked.extend([span.changed] * len(span.text))
    assert marked == [x != y for x, y in zip(a, b, strict=True)]
    assert [s.changed for s in a_spans] == [s.changed for s in b_spans]


@given(texts, texts)
def test_a_difference_is_always_marked(a: str, b: str) -> None:
    a_spans, b_spans = char_diff(a, b)
    if a != b:
        assert any(s.changed for s in a_spans + b_spans)


def test_a_masked_keyword_is_marked_after_the_reply_code() -> None:
    sent, received = char_diff("250-STARTTLS", "250-XXXXXXXA")
    assert sent == (Span("250-", False), Span("STARTTLS", True))
    assert received == (Span("250-", False), Span("XXXXXXXA", True))


def test_short_equal_runs_between_changes_join_the_change() -> None:
    a, b = char_diff("6150 bytes", "1448 bytes, incomplete")
    assert a[0] == Span("6150", True)
    assert b == (Span("1448", True), Span(" bytes", False), Span(", incomplete", True))


def test_long_different_inputs_are_bounded() -> None:
    a = "a" * (MAX_DIFF_CHARS * 5)
    b = "b" * (MAX_DIFF_CHARS * 5 + 1)
    started = time.perf_counter()
    a_spans, b_spans = char_diff(a, b)
    assert time.perf_counter() - started < 1.0
    assert plain(a_spans) == a and plain(b_spans) == b


@given(st.lists(texts, max_size=8), st.lists(texts, max_size=8))
def test_line_diff_keeps_every_line_of_both_versions_in_order(a: list[str], b: list[str]) -> None:
    rows = line_diff("\n".join(a), "\n".join(b))
    assert [plain(r.a) for r in rows if r.kind is not RowKind.ONLY_B] == ("\n".join(a)).split("\n")
    assert [plain(r.b) for r in rows if r.kind is not RowKind.ONLY_A] == ("\n".join(b)).split("\n")


def test_line_diff_pairs_the_changed_line_of_an_ehlo_reply() -> None:
    rows = line_diff("250-A\n250-STARTTLS\n250 B", "250-A\n250-XXXXXXXA\n250 B")
    assert [r.kind for r in rows] == [RowKind.SAME, RowKind.CHANGED, RowKind.SAME]


def test_a_removed_line_is_only_on_the_sending_side() -> None:
    rows = line_diff("250-A\n250-STARTTLS\n250 B", "250-A\n250 B")
    assert [r.kind for r in rows] == [RowKind.SAME, RowKind.ONLY_A, RowKind.SAME]


def test_carets_sit_under_the_changed_characters() -> None:
    _, received = char_diff("250-STARTTLS", "250-XXXXXXXA")
    assert caret_line(received) == "    ^^^^^^^^"


def test_carets_count_wide_characters_twice() -> None:
    _, received = char_diff("名前 OK", "名前 XX")
    assert width("名前 ") == 5
    assert caret_line(received) == "     ^^"


@given(st.lists(st.tuples(texts, st.booleans()), max_size=6), st.integers(1, 40))
def test_clipped_runs_never_exceed_the_limit(parts: list[tuple[str, bool]], limit: int) -> None:
    spans = tuple(Span(t, c) for t, c in parts if t)
    clipped = clip_spans(spans, limit)
    assert len(plain(clipped)) <= max(limit, 1)
    if len(plain(spans)) <= limit:
        assert clipped == spans


def test_fold_keeps_changes_and_their_context() -> None:
    lines = [f"250-K{i}" for i in range(20)]
    changed = list(lines)
    changed[10] = "250-XXX"
    folded = fold(line_diff("\n".join(lines), "\n".join(changed)), 2)
    kinds = [x if isinstance(x, int) else x.kind for x in folded]
    assert kinds == [8, RowKind.SAME, RowKind.SAME, RowKind.CHANGED, RowKind.SAME, RowKind.SAME, 7]
