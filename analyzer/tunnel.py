"""Skip an HTTP CONNECT preamble in front of a tunnelled protocol (RFC 9110 §9.3.6).

Spam relayed through open proxies arrives as `CONNECT mx:25 HTTP/1.0` … `HTTP/1.0 200` and then
plain SMTP in the same TCP connection. This module recognises the preamble in each direction and
hands on only the tunnelled bytes (with their true stream offsets). It knows nothing of SMTP.
"""

from __future__ import annotations

import re
from typing import Final

CONNECT_REQUEST: Final = re.compile(rb"CONNECT [^\r\n ]+ ")
"""RFC 9110 §9.3.6: `CONNECT authority HTTP/x.y`."""
HEADER_END: Final = b"\r\n\r\n"
MAX_PREAMBLE: Final = 16 * 1024
"""Longest request or response head skipped; beyond it the flow is taken as it is."""


def is_connect_request(first_bytes: bytes) -> bool:
    return CONNECT_REQUEST.match(first_bytes) is not None


class PreambleSkipper:
    """One direction's HTTP head: swallowed until its blank line, then bytes pass through."""

    __slots__ = ("buffer", "done")

    def __init__(self) -> None:
        self.buffer = b""
        self.done = False

    def feed(self, offset: int, data: bytes) -> tuple[int, bytes]:
        """The tunnelled part of `data` and its stream offset (empty while in the preamble)."""
        if self.done:
            return offset, data
        start = offset - len(self.buffer)
        self.buffer += data
        end = self.buffer.find(HEADER_END)
        if end < 0:
            if len(self.buffer) > MAX_PREAMBLE:
                self.done = True
                rest, self.buffer = self.buffer, b""
                return start, rest
            return offset + len(data), b""
        self.done = True
        cut = end + len(HEADER_END)
        rest, self.buffer = self.buffer[cut:], b""
        return start + cut, rest
