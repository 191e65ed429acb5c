"""JSON text exactly as `json.dumps(value, indent=2, ensure_ascii=True)` writes it, faster.

The standard library's C encoder only writes compact JSON; asked for indentation, `json` falls
back to a pure-Python encoder that passes every value through a chain of generators, which made
serialising a session cost more than building it. `dumps_indented` walks dicts and lists with
one recursive function and leaves strings to the C string encoder. It takes JSON values only
(dicts with string keys, lists, tuples, strings, ints, floats, booleans, None); for anything
else it hands the whole value to `json.dumps`, so the result is always the standard one.

No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any, Final

INDENT: Final = "  "
"""Two spaces per level: what `indent=2` means."""
MAX_DEPTH: Final = 64
"""Deeper values are left to `json.dumps` (our values nest three levels)."""

_NEWLINES: Final = tuple("\n" + INDENT * level for level in range(MAX_DEPTH + 1))
"""The line break and indentation that start an item at each level."""
_SEPARATORS: Final = tuple("," + newline for newline in _NEWLINES)


class _NotPlainJson(Exception):
    """The value holds something `dumps_indented` does not write itself."""


def _float(value: float) -> str:
    """As `json`'s default (allow_nan=True) writes a float."""
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == -float("inf"):
        return "-Infinity"
    return float.__repr__(value)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _null(value: None) -> str:
    return "null"


_SCALARS: dict[type, Callable[[Any], str]] = {
    str: encode_basestring_ascii,
    int: int.__repr__,
    bool: _bool,
    float: _float,
    type(None): _null,
}
"""How each scalar type is written, by exact type (subclasses go the long way round)."""

MAX_KEYS_KEPT: Final = 4096
_keys: dict[str, str] = {}
"""Encoded dict keys: the same few keys come back in every value."""


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise _NotPlainJson
    text = encode_basestring_ascii(key)
    if len(_keys) < MAX_KEYS_KEPT:
        _keys[key] = text
    return text


def _write(value: object, parts: list[str], level: int) -> None:
    scalar = _SCALARS.get(type(value))
    if scalar is not None:
        parts.append(scalar(value))
    elif isinstance(value, dict):
        if not value:
            parts.append("{}")
            return
        if level >= MAX_DEPTH:
            raise _NotPlainJson
        deeper = level + 1
        parts.append("{")
        separator = _NEWLINES[deeper]
        scalars, keys = _SCALARS, _keys
        for key, item in value.items():
            name = keys.get(key) or _key(key)
            scalar = scalars.get(type(item))
            if scalar is not None:
                parts.append(f"{separator}{name}: {scalar(item)}")
            else:
                parts.append(f"{separator}{name}: ")
                _write(item, parts, deeper)
            separator = _SEPARATORS[deeper]
        parts.append(_NEWLINES[level] + "}")
    elif isinstance(value, list | tuple):
        if not value:
            parts.append("[]")
            return
        if level >= MAX_DEPTH:
            raise _NotPlainJson
        deeper = level + 1
        if type(value[0]) is str:
            # A list of strings (addresses, keywords): joined in C. Any item that is not a
            # string makes the C encoder raise TypeError; string subclasses are written as
            # `json` writes them, as their string value.
            try:
                body = _SEPARATORS[deeper].join(map(encode_basestring_ascii, value))
            except TypeError:
                pass
            else:
                parts.append(f"[{_NEWLINES[deeper]}{body}{_NEWLINES[level]}]")
                return
        parts.append("[")
        separator = _NEWLINES[deeper]
        scalars = _SCALARS
        for item in value:
            scalar = scalars.get(type(item))
            if scalar is not None:
                parts.append(separator + scalar(item))
            else:
                parts.append(separator)
                _write(item, parts, deeper)
            separator = _SEPARATORS[deeper]
        parts.append(_NEWLINES[level] + "]")
    elif isinstance(value, str):
        parts.append(encode_basestring_ascii(value))
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, float):
        parts.append(_float(value))
    else:
        raise _NotPlainJson


def dumps_indented(value: object) -> str:
    """`json.dumps(value, indent=2, ensure_ascii=True)`, the same text."""
    parts: list[str] = []
    try:
        _write(value, parts, 0)
    except _NotPlainJson:
        return json.dumps(value, indent=2, ensure_ascii=True)
    return "".join(parts)
