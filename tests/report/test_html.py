"""The HTML report: one self-contained page, a ladder diagram per affected connection, the
changed bytes marked, and nothing a capture holds able to become markup or script."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from html.parser import HTMLParser
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.report import digest
from analyzer.report.html import render_html
from analyzer.report.model import Report
from analyzer.text import visible

from .conftest import FIXTURES, load

ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "header",
    "h1",
    "h2",
    "h3",
    "h4",
    "p",
    "nav",
    "a",
    "section",
    "dl",
    "dt",
    "dd",
    "div",
    "span",
    "pre",
    "code",
    "article",
    "ul",
    "li",
    "b",
    "em",
    "br",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "mark",
    "details",
    "summary",
    "input",
    "footer",
    "script",
    "svg",
    "g",
    "rect",
    "line",
    "polygon",
    "circle",
    "path",
    "text",
    "tspan",
}
VOID = {"meta", "br", "input", "rect", "line", "polygon", "circle", "path"}


class Page(HTMLParser):
    """What a browser would build from the page: elements, attributes, text, script bodies."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self.stack: list[str] = []
        self.unbalanced: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        else:
            self.unbalanced.append(tag)

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "script":
            self.scripts.append(data)
        else:
            self.text.append(data)

    def of(self, tag: str, cls: str | None = None) -> list[dict[str, str | None]]:
        return [
            a
            for t, a in self.tags
            if t == tag and (cls is None or cls in (a.get("class") or "").split())
        ]


def _check_safe(html_text: str) -> Page:
    html_text.encode("utf-8")  # no surrogate survives
    assert "\x00" not in html_text
    page = Page(html_text)
    assert not page.unbalanced and not page.stack, (page.unbalanced, page.stack)
    assert {t for t, _ in page.tags} <= ALLOWED_TAGS
    assert len(page.of("script")) == 1 and page.of("script")[0] == {}
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src", "xlink:href", "action"):
                assert (value or "").startswith("#"), (tag, name, value)
    (csp,) = [a["content"] for a in page.of("meta") if a.get("http-equiv")]
    script_hash = base64.b64encode(hashlib.sha256(page.scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{script_hash}'" in (csp or "")
    assert "default-src 'none'" in (csp or "")
    return page


@pytest.mark.parametrize("name", FIXTURES)
def test_every_report_is_one_safe_self_contained_page(name: str) -> None:
    page = _check_safe(render_html(load(name)))
    assert not re.search(r"https?:|//[a-z]", "".join(a.get("href") or "" for _, a in page.tags))


def test_each_affected_connection_has_a_ladder_with_three_lifelines() -> None:
    report = load("pix-starttls-masked")
    page = Page(render_html(report))
    ladders = page.of("svg", "ladder")
    assert len(ladders) == len(digest.affected_connections(report, digest.Index(report))) == 3
    assert len(page.of("rect", "wall")) == 3  # the firewall lifeline
    assert len(page.of("g", "differs")) == 6  # banner and EHLO reply, in each connection
    text = "".join(page.text)
    assert "client-side capture" in text and "server-side capture" in text


def test_changed_bytes_are_marked_on_both_sides() -> None:
    html_text = render_html(load("pix-starttls-masked"))
    assert '<mark class="got">XXXXXXXA</mark>' in html_text
    assert '<mark class="sent">STARTTLS</mark>' in html_text
    assert '<tspan class="chg">XXXXXXXA</tspan>' in html_text
    assert '<tspan class="chg">STARTTLS</tspan>' in html_text


def test_forged_resets_and_lost_bytes_are_drawn_from_and_to_the_firewall() -> None:
    page = Page(render_html(load("pix-dkim-reset")))
    assert len(page.of("g", "forged")) == 4  # two per reset connection, one per capture
    assert len(page.of("g", "lost")) == 2
    assert "RST forged by the firewall" in "".join(page.text)


def test_one_capture_has_no_firewall_lifeline() -> None:
    page = Page(render_html(load("pix-starttls-masked-client-only")))
    assert len(page.of("svg", "ladder")) == 3
    assert not page.of("rect", "wall")
    assert page.of("g", "flagged")


def test_the_sessions_table_sorts_and_filters_and_reads_without_script() -> None:
    page = Page(render_html(load("pix-dkim-reset")))
    (table,) = page.of("table", "sortable")
    assert table["id"] == "sessions-table"
    (box,) = page.of("input", "filter")
    assert "hidden" in box and box["data-table"] == "sessions-table"  # shown by the script
    rows = [a for t, a in page.tags if t == "tr" and "affected" in (a.get("class") or "")]
    assert len(rows) == 4
    assert 'document.body.setAttribute("data-ok", "1")' in page.scripts[0]


def test_hostile_captured_strings_render_as_text() -> None:
    report = load("hostile")
    page = _check_safe(render_html(report))
    text = "".join(page.text)
    for attack in (
        "<script>document.title='pwned'</script>",
        "</svg></table></pre><script>alert(1)</script>",
        "\"'><img src=x onerror=alert(1)>",
        "${css} $$ &amp; &lt; <!-- ]]> {{x}}",
        visible("\x1b[31mred\x1b[0m\x00NUL\x07bell\r\rCR"),
        visible("\udcff\udcfe undecodable \ud800 lone surrogate \u202e bidi"),
    ):
        assert attack in text, attack
    assert [t for t, _ in page.tags].count("img") == 0
    title = page.of("title")
    assert title and "pwned" not in "".join(page.text[:3])


FIELDS = (
    "banner",
    "transcript",
    "summary",
    "excerpt",
    "note",
    "mail_from",
    "client",
    "path",
    "cause",
    "kind",
    "severity",
    "id",
)


def _inject(report: Report, field: str, value: str) -> Report:
    out = cast(dict[str, Any], copy.deepcopy(report))
    finding = out["findings"][0]
    session = out["sessions"][0]
    if field == "transcript":
        out["transcripts"][session["id"]][2]["text"] = value
    elif field in ("banner", "client"):
        session[field] = value
    elif field == "mail_from":
        session["transactions"][0]["mail_from"] = value
    elif field == "path":
        out["captures"][0]["files"][0]["path"] = value
    elif field in ("excerpt", "note"):
        finding["evidence"][0][field] = value
    else:
        finding[field] = value
    return cast(Report, out)


BASE = load("pix-starttls-masked")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELDS), st.text(min_size=1, max_size=40))
def test_any_captured_text_in_any_field_stays_text(field: str, value: str) -> None:
    page = _check_safe(render_html(_inject(BASE, field, "<i>" + value + "</i>")))
    assert "i" not in {t for t, _ in page.tags}


def test_a_report_of_thousands_of_connections_renders_in_bounded_time_and_size() -> None:
    import time

    from analyzer.report.markdown import render_markdown

    from .scale import scaled

    report = scaled(load("pix-starttls-masked"), 200)  # 1,200 sessions, 1,800 findings
    started = time.perf_counter()
    page = render_html(report)
    text = render_markdown(report)
    assert time.perf_counter() - started < 15.0  # about 1.5 s on an idle laptop core
    assert len(Page(page).of("svg", "ladder")) == 20  # MAX_LADDERS
    assert "… and 575 more findings of this kind" in text
    assert len(text) < 300_000 and len(page) < 1_500_000
