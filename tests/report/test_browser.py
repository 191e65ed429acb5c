"""Each sample report opened in a real browser (Debian's headless Chromium): the page runs its
script without errors, the ladder diagrams and marked differences are in the rendered DOM, and
the screenshot is a real picture. Skipped without Chromium, except under CI where it must exist.

Set SMTPFW_SCREENSHOT_DIR=/some/dir to keep the screenshots for a look.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyzer.report import digest
from analyzer.report.html import render_html

from .browser import Chromium, Page, find_browser
from .conftest import FIXTURES, load

WINDOW = (1280, 2000)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Page]]:
    browser = find_browser()
    if browser is None:
        if _in_ci():
            pytest.fail("Chromium is required under CI (scripts/system-deps.sh installs it)")
        pytest.skip("Chromium is not installed")
    work = tmp_path_factory.mktemp("browser")
    results: dict[str, Page] = {}
    with Chromium(browser, work / "profile") as chromium:
        for name in FIXTURES:
            page = work / f"{name}.html"
            page.write_text(render_html(load(name)), encoding="utf-8")
            results[name] = chromium.render(page, *WINDOW)
    keep = os.environ.get("SMTPFW_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for name, result in results.items():
            (Path(keep) / f"{name}.png").write_bytes(result.png)
    yield results


def _png_pixels(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed (filtered) scanlines of a PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, width, height, data = 8, 0, 0, b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            data += body
        pos += 12 + length
    return width, height, zlib.decompress(data)


@pytest.mark.parametrize("name", FIXTURES)
def test_the_page_runs_its_script_without_errors(rendered: dict[str, Page], name: str) -> None:
    result = rendered[name]
    assert result.console == [], result.console  # no uncaught error, no CSP refusal
    assert re.search(r'<body[^>]*\bdata-ok="1"', result.dom)  # the script ran to its end
    assert '<button type="button" class="sort">' in result.dom  # headers made sortable
    assert re.search(r'<input class="filter" type="search" placeholder', result.dom)  # shown


@pytest.mark.parametrize("name", FIXTURES)
def test_the_diagrams_and_marked_differences_are_rendered(
    rendered: dict[str, Page], name: str
) -> None:
    report = load(name)
    dom = rendered[name].dom
    expected = min(20, len(digest.affected_connections(report, digest.Index(report))))
    assert dom.count('<svg xmlns="http://www.w3.org/2000/svg" class="ladder"') == expected
    two_sided_damage = any(not p.get("identical") for p in report.get("pairs") or [])
    if two_sided_damage:
        assert re.search(r'<mark class="(got|sent)">', dom)
        assert re.search(r'<g class="step (differs|lost|forged|inserted) flagged">', dom)
    if name == "clean":
        assert "No difference between the two sides" in dom


@pytest.mark.parametrize("name", FIXTURES)
def test_the_screenshot_is_a_real_picture(rendered: dict[str, Page], name: str) -> None:
    width, height, pixels = _png_pixels(rendered[name].png)
    assert (width, height) == WINDOW
    assert len(set(pixels[:: max(1, len(pixels) // 20000)])) > 16  # not a blank page


def test_a_hostile_capture_cannot_script_the_page(rendered: dict[str, Page]) -> None:
    dom = rendered["hostile"].dom
    assert dom.count("<script") == 1
    assert "<img" not in dom and "pwned</title>" not in dom
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
