"""Make captured text safe to show: terminals, Markdown tables (HTML escaping lives with HTML).

Captured bytes are written by strangers. Control characters (ESC sequences can repaint a
terminal), bidi overrides and undecodable bytes are shown as visible escapes; nothing is dropped.
"""

from __future__ import annotations

import unicodedata

_SAFE_CACHE: dict[str, str] = {}


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if ch == "\t":
        return "\\t"
    if ch == "\r":
        return "\\r"
    if ch == "\n":
        return "\\n"
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    category = unicodedata.category(ch)
    if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return ch


def visible(text: str) -> str:
    """Text with every control, format or undecodable character shown as an escape."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escape_char(ch) for ch in text)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"


def markdown_cell(text: str) -> str:
    """Safe inside a Markdown table cell: visible, pipes and markup characters escaped."""
    out = visible(text)
    for ch in "\\`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    return out
