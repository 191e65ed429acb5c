"""Text made safe for HTML and SVG: the one escape every renderer of markup uses.

Captured bytes are written by strangers, so no captured character reaches a page unescaped:
`esc` first makes controls, NULs, undecodable bytes and surrogates visible (`text.visible`),
then escapes `& < > " '` (`html.escape(quote=True)`), so its result is safe as character data
and as a quoted attribute value, in HTML and in SVG alike. `marked` does the same for the spans
of a line diff, wrapping the changed ones in an element of the caller's choosing. It does not
build pages.
"""

from __future__ import annotations

import html

from analyzer.text import visible

from .diff import Spans
from .digest import as_str


def esc(text: object) -> str:
    """Any text (captured or generated), safe as HTML or SVG text or a quoted attribute."""
    return html.escape(visible(as_str(text)), quote=True)


def marked(spans: Spans, tag: str, cls: str) -> str:
    """The spans of a diff, their text already made visible (`diff.map_spans(spans,
    text.visible)`), as escaped text, each changed one inside `<tag class="cls">`."""
    return "".join(
        f'<{tag} class="{cls}">{html.escape(s.text, quote=True)}</{tag}>'
        if s.changed
        else html.escape(s.text, quote=True)
        for s in spans
    )
