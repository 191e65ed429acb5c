"""What a notebook shows for an analysis: verdict, findings, one connection drawn — and never a
captured string unescaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import analyzer
from analyzer import Analysis
from analyzer.display import (
    MAX_FINDING_ROWS,
    analysis_html,
    show_session,
    verdict_sentence,
)
from analyzer.errors import UsageError
from analyzer.report import build_report
from tests import craft

from .conftest import CAPTURES

HOSTILE_BANNER = b"220 " + b"*" * 60 + b'<script>alert("banner")</script>\x1b[2J ESMTP\r\n'
"""Mostly asterisks, so the one-sided detector calls it masked and quotes it in its summary."""


class Tags(HTMLParser):
    """Every start tag of a fragment, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def tags(fragment: str) -> Tags:
    parser = Tags()
    parser.feed(fragment)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    path = tmp_path_factory.mktemp("hostile") / "hostile.pcap"
    dialogue = craft.connection(
        [
            ("s", HOSTILE_BANNER),
            ("c", b"EHLO <img src=x onerror=alert(1)>\r\n"),
            ("s", b"250-mx.example.net\r\n250-<svg onload=alert(2)>\r\n250 XXXXXXXA\r\n"),
            ("c", b'MAIL FROM:<"</td><script>alert(3)</script>"@example.org>\r\n'),
            ("s", b"250 2.1.0 Ok\r\n"),
            ("c", b"QUIT\r\n"),
            ("s", b"221 2.0.0 Bye\r\n"),
        ]
    )
    return analyzer.analyze(craft.write(path, dialogue))


def assert_inert(fragment: str) -> None:
    """Only the markup the renderer writes: no script, no event handler, no foreign tag."""
    parsed = tags(fragment)
    names = {name for name, _ in parsed.tags}
    assert names <= {
        "style",
        "div",
        "p",
        "span",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "code",
        "h4",
        "em",
        "br",
        "mark",
        "svg",
        "title",
        "line",
        "polygon",
        "rect",
        "text",
        "tspan",
        "g",
        "circle",
        "path",
    }, names
    for name, attrs in parsed.tags:
        assert not [a for a, _ in attrs if a.lower().startswith("on")], (name, attrs)
    assert re.search(r"<\s*script", fragment, re.IGNORECASE) is None
    assert "\x1b" not in fragment


def test_a_hostile_banner_is_escaped_everywhere(hostile: Analysis) -> None:
    session = hostile.sessions[0].id
    assert [f.kind.value for f in hostile.findings if f.kind.value == "banner_masked"]
    shown = hostile._repr_html_()
    assert_inert(shown)
    assert "&lt;script&gt;alert(&quot;banner&quot;)&lt;/script&gt;" in shown
    assert "\\x1b[2J" in shown
    drawn = show_session(hostile, session)._repr_html_()
    assert_inert(drawn)
    for text in (
        "&lt;img src=x onerror=alert(1)&gt;",
        "&lt;svg onload=alert(2)&gt;",
        "&lt;/td&gt;&lt;script&gt;alert(3)&lt;/script&gt;",
    ):
        assert text in drawn
    assert_inert(analysis_html(hostile, session))


def test_the_repr_is_the_verdict_the_findings_and_the_first_affected_connection(
    masked: Analysis,
) -> None:
    shown = masked._repr_html_()
    assert shown == analysis_html(masked)
    assert (
        "Critical: mail that could have been encrypted crossed in cleartext — 6 findings "
        "(3 critical, 3 high) in 3 of 4 connections, confirmed by both captures."
    ) in shown
    assert shown.count("<tr><td>F") == 6
    assert "<h4>client#0 ⇄ server#0: 198.51.100.25:48978 → 203.0.113.10:25</h4>" in shown
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="ladder"' in shown
    # the side-by-side transcript marks the masked keyword on the client side, the original on
    # the server side
    assert '<mark class="got">XXXXXXXA</mark>' in shown
    assert '<mark class="sent">STARTTLS</mark>' in shown


def test_any_session_can_be_drawn_from_either_capture(masked: Analysis) -> None:
    probe = show_session(masked, "server#1")._repr_html_()
    assert "<h4>client#1 ⇄ server#1:" in probe
    assert "HELO mail.example.org" in probe
    assert "<mark" not in probe  # nothing changed on this connection
    assert repr(show_session(masked, "client#1")).startswith("<session client#1 198.51.100.25:")
    with pytest.raises(UsageError, match="no session 'client#9'"):
        show_session(masked, "client#9")
    with pytest.raises(UsageError):
        analysis_html(masked, "nope")


def test_the_verdict_says_no_difference_for_a_clean_pair(pairs: dict[str, Analysis]) -> None:
    report = build_report(pairs["clean-starttls"])
    assert verdict_sentence(report) == (
        "No difference: 3 paired sessions are byte-identical on both sides of the firewall.",
        "clean",
    )
    shown = pairs["clean-starttls"]._repr_html_()
    assert '<p class="verdict clean">No difference' in shown
    assert "<svg" not in shown and "<table" not in shown


def test_the_verdict_of_one_clean_capture_and_of_no_session(tmp_path: Path) -> None:
    single = analyzer.analyze(CAPTURES / "clean-starttls" / "client-side.pcap")
    assert verdict_sentence(build_report(single))[0] == (
        "No symptoms: none of the 3 SMTP sessions in this capture shows a sign of SMTP inspection."
    )
    web = craft.connection([("c", b"GET / HTTP/1.1\r\n\r\n")], server=("203.0.113.80", 80))
    empty = analyzer.analyze(craft.write(tmp_path / "web.pcap", web))
    assert verdict_sentence(build_report(empty)) == ("No SMTP session in these captures.", "clean")
    assert "No SMTP session" in empty._repr_html_()


def test_one_sided_findings_say_how_sure_they_are(rotation: Analysis) -> None:
    shown = rotation._repr_html_()
    sentence = re.search(r'<p class="verdict critical">(.*?)</p>', shown)
    assert sentence is not None
    assert sentence.group(1).endswith("likely, from one capture&#x27;s symptoms.")
    # many findings: a table by kind first, then the first ones, then a pointer to the rest
    assert "<th>worst severity</th>" in shown
    assert shown.count("<tr><td>F") == MAX_FINDING_ROWS
    assert f"… and {len(rotation.findings) - MAX_FINDING_ROWS} more findings" in shown
