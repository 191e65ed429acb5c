"""The Markdown report: verdict first, evidence with the changed bytes marked, every captured
string escaped. Golden files hold the reviewed output for each fixture; to accept a reviewed
change run `SMTPFW_UPDATE_GOLDEN=1 pytest tests/report` and read the diff before committing.
"""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzer.report.markdown import cell, code_span, fenced, render_markdown
from analyzer.report.model import Report

from .conftest import FIXTURES, GOLDEN, load

UPDATE = bool(os.environ.get("SMTPFW_UPDATE_GOLDEN"))


@pytest.mark.parametrize("name", FIXTURES)
def test_markdown_matches_the_reviewed_golden(name: str) -> None:
    text = render_markdown(load(name))
    golden = GOLDEN / f"{name}.md"
    if UPDATE:
        golden.write_text(text, encoding="utf-8", errors="surrogateescape")
    assert golden.exists(), f"no golden for {name}: run with SMTPFW_UPDATE_GOLDEN=1 and review it"
    assert text == golden.read_text(encoding="utf-8"), f"{name}.md differs from its golden"


def _sections(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("## ")]


def test_the_verdict_comes_first_and_answers_the_questions() -> None:
    text = render_markdown(load("pix-starttls-masked"))
    assert _sections(text) == [
        "## Verdict",
        "## Findings",
        "## Affected sessions",
        "## Timeline",
        "## Appendix",
    ]
    verdict = text.split("## Findings")[0]
    for fact in (
        "| What happened |",
        "| Between | client 198.51.100.7 → server 203.0.113.25:25",
        "| Affected | 3 of 3 connections, 2 messages |",
        "| Since | 2024-03-05 09:14:02.250 UTC",
        "| Until | 2024-03-05 09:17:05.500 UTC",
        "| Security impact | 2 messages crossed the network in cleartext",
        "| Most likely cause | Cisco PIX/ASA ESMTP inspection masks EHLO keywords",
        "### The one change that fixes it",
        "allow-tls action log",
    ):
        assert fact in verdict


def test_the_masked_keyword_is_shown_as_sent_and_as_received_with_carets() -> None:
    lines = render_markdown(load("pix-starttls-masked")).splitlines()
    i = lines.index("- 250-STARTTLS")
    assert lines[i + 1 : i + 3] == ["+ 250-XXXXXXXA", "      ^^^^^^^^"]


def test_verification_names_files_frames_and_filters() -> None:
    text = render_markdown(load("pix-dkim-reset"))
    assert (
        "| F1 | client-side: captures/pix-dkim-reset/client-side.pcap | 13, 18 | "
        "`tcp.stream eq 0` and `frame.number == 13 \\|\\| frame.number == 18` |"
    ) in text


def test_a_clean_pair_says_so() -> None:
    text = render_markdown(load("clean"))
    assert "**No difference between the two sides.**" in text
    assert "## Findings" not in text


def test_one_capture_says_how_sure_it_is() -> None:
    text = render_markdown(load("pix-starttls-masked-client-only"))
    assert "(likely, from the symptoms in one capture)" in text


# -- hostile captures ----------------------------------------------------------------------------

FENCE = re.compile(r"^(`{3,})(.*)$")
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def _outside_code(text: str) -> list[str]:
    """Lines outside fenced blocks, with code spans removed (CommonMark: backtick runs pair)."""
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        match = FENCE.match(stripped)
        if fence is None and match:
            fence = match.group(1)
            continue
        if fence is not None:
            if stripped.startswith(fence) and set(stripped) == {"`"}:
                fence = None
            continue
        out.append(_without_code_spans(line))
    assert fence is None, "a fenced block was never closed"
    return out


def _without_code_spans(line: str) -> str:
    """The line with its code spans cut out, as CommonMark §6.1 pairs backtick runs."""
    out: list[str] = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            out.append(line[i : i + 2])  # an escaped character (a backtick here cannot open)
            i += 2
            continue
        if ch != "`":
            out.append(ch)
            i += 1
            continue
        run = len(line[i:]) - len(line[i:].lstrip("`"))
        closing = re.compile(r"(?<!`)" + "`" * run + r"(?!`)")
        match = closing.search(line, i + run)
        if match is None:
            out.append("`" * run)  # no closing run: literal backticks
            i += run
        else:
            i = match.end()
    return "".join(out)


def test_hostile_strings_cannot_escape_their_place() -> None:
    text = render_markdown(load("hostile"))
    text.encode("utf-8")  # no surrogate survives
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e\u2028]", text)
    prose = _outside_code(text)
    for line in prose:
        assert not re.search(r"(?<!\\)<", line), line  # no HTML tag outside code
        assert not re.search(r"(?<!\\)\[[^\]]*(?<!\\)\]\(", line), line  # no link
    header_cells: int | None = None
    for line in prose:
        if not line.startswith("|"):
            header_cells = None
            continue
        cells = len(UNESCAPED_PIPE.findall(line.replace("\\\\", "")))
        if header_cells is None:
            header_cells = cells
        assert cells == header_cells, line


def test_hostile_captured_code_stays_inside_its_fence() -> None:
    lines = fenced(["``` not the end", "````"], "text")
    assert lines[0] == "`````text" and lines[-1] == "`````"


@given(st.text())
def test_a_table_cell_has_no_live_markup(text: str) -> None:
    out = cell(text)
    assert not UNESCAPED_PIPE.search(out.replace("\\\\", ""))
    assert not re.search(r"(?<!\\)[<>`*_\[\]#&]", out.replace("\\\\", ""))
    assert "\n" not in out


@given(st.text(), st.booleans())
def test_a_code_span_holds_any_text_whole(text: str, in_table: bool) -> None:
    span = code_span(text, in_table=in_table)
    ticks = re.match(r"`+", span)
    assert ticks is not None and span.endswith(ticks.group(0))
    inner = span[len(ticks.group(0)) : -len(ticks.group(0))]
    assert ticks.group(0) not in inner  # the opening run is never repeated inside
    assert "\n" not in span


def test_reports_render_fast() -> None:
    import time

    report: Report = load("hostile")
    started = time.perf_counter()
    render_markdown(report)
    assert time.perf_counter() - started < 10.0  # well under a second on an idle core
