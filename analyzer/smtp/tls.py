"""Follow TLS record headers after STARTTLS, to tell a real handshake from cleartext.

Only the 5-byte record headers are read (RFC 8446 §5.1): content type, version, length; record
bodies are skipped by length, never buffered or decrypted. The client's first record says
whether a ClientHello began the handshake. A header that cannot be TLS means the direction is not
(or no longer) TLS: the line that starts there is checked for the shape of an SMTP command or
reply, and then the direction is no longer followed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from analyzer._common import FrameMarks, FrameRef

from .events import Event, SmtpAnomaly, TlsClientHello
from .limits import COMMAND_LINE_MAX, TLS_RECORD_HEADER_LEN, TLS_RECORD_MAX

HANDSHAKE: Final = 22
"""Content type of handshake records (RFC 8446 §5.1); the first client record carries the
ClientHello."""
CONTENT_TYPES: Final = frozenset({20, 21, 22, 23, 24})
"""change_cipher_spec, alert, handshake, application_data, heartbeat (RFC 8446 §5.1, RFC 6520)."""
VERSION_MAJOR: Final = 3
VERSION_MINOR_MAX: Final = 4
"""Record versions 3.0 (SSL 3) to 3.4; TLS 1.3 records say 3.3 or 3.1 (RFC 8446 §5.1)."""
HELLO_PREFIX_LEN: Final = 3
"""Type and version: enough to recognise a handshake record."""

_COMMAND_LINE: Final = re.compile(rb"[A-Za-z]{3,12}(?:[ \t][\x20-\x7e]*)?\r?\n")
_REPLY_LINE: Final = re.compile(rb"[2-5][0-9][0-9](?:[ -][\x20-\x7e]*)?\r?\n")

Report = Callable[[SmtpAnomaly, str, int, "FrameRef | None", float], None]


class TlsWalker:
    """Reads the record headers of one direction after STARTTLS."""

    __slots__ = (
        "_client",
        "_done",
        "_header",
        "_hello_checked",
        "_offset",
        "_probe",
        "_report",
        "_skip",
        "_start_frame",
        "_start_ts",
    )

    def __init__(self, *, client: bool, report: Report) -> None:
        self._client = client
        self._report = report
        self._header = bytearray()
        self._skip = 0
        self._hello_checked = not client
        self._done = False
        self._probe: bytearray | None = None
        self._offset = 0
        self._start_frame: FrameRef | None = None
        self._start_ts = 0.0

    @property
    def buffered(self) -> int:
        return len(self._header) + (len(self._probe) if self._probe is not None else 0)

    def feed(
        self,
        data: bytes,
        pos: int,
        end: int,
        base: int,
        frame: FrameRef | None,
        ts: float,
        out: list[Event],
        marks: FrameMarks | None = None,
    ) -> None:
        """Read `data[pos:end]`; `base` is the stream offset of data[0]. `frame` and `ts` are
        those of the segment that carried `data[pos]`; with `marks`, of each segment."""
        while pos < end and not self._done:
            if self._probe is not None:
                pos = self._probe_line(data, pos, end)
                continue
            if self._skip:
                take = min(self._skip, end - pos)
                self._skip -= take
                pos += take
                continue
            header = self._header
            if not header:
                self._offset = base + pos
                if marks is not None:
                    frame, ts = marks.locate(base + pos)
                self._start_frame = frame
                self._start_ts = ts
            need = TLS_RECORD_HEADER_LEN - len(header)
            header += data[pos : pos + min(need, end - pos)]
            pos += min(need, end - pos)
            if not self._hello_checked and len(header) >= HELLO_PREFIX_LEN:
                self._hello_checked = True
                self._check_hello(header, out)
            if len(header) < TLS_RECORD_HEADER_LEN:
                return
            length = header[3] << 8 | header[4]
            if (
                header[0] in CONTENT_TYPES
                and header[1] == VERSION_MAJOR
                and header[2] <= VERSION_MINOR_MAX
                and length <= TLS_RECORD_MAX
            ):
                self._skip = length
                header.clear()
            else:
                self._probe = bytearray(header)
                header.clear()
                self._decide_if_line()

    def gap(self) -> None:
        """Bytes were lost: record boundaries are no longer known."""
        self._done = True
        self._probe = None
        self._header.clear()

    def _check_hello(self, header: bytearray, out: list[Event]) -> None:
        if header[0] == HANDSHAKE and header[1] == VERSION_MAJOR and header[2] <= VERSION_MINOR_MAX:
            out.append(
                TlsClientHello(header[1] << 8 | header[2], self._start_frame, self._start_ts)
            )
        else:
            self._report(
                SmtpAnomaly.TLS_WITHOUT_CLIENT_HELLO,
                f"client's first bytes after STARTTLS begin with 0x{bytes(header[:3]).hex()}",
                self._offset,
                self._start_frame,
                self._start_ts,
            )

    def _probe_line(self, data: bytes, pos: int, end: int) -> int:
        probe = self._probe
        assert probe is not None
        room = COMMAND_LINE_MAX - len(probe)
        nl = data.find(b"\n", pos, min(end, pos + room))
        stop = nl + 1 if nl >= 0 else min(end, pos + room)
        probe += data[pos:stop]
        self._decide_if_line()
        return stop

    def _decide_if_line(self) -> None:
        probe = self._probe
        assert probe is not None
        if b"\n" not in probe and len(probe) < COMMAND_LINE_MAX:
            return
        shape = _COMMAND_LINE if self._client else _REPLY_LINE
        if shape.fullmatch(probe):
            self._report(
                SmtpAnomaly.CLEARTEXT_AFTER_TLS,
                f"a cleartext SMTP {'command' if self._client else 'reply'} line of "
                f"{len(probe)} octets after TLS started",
                self._offset,
                self._start_frame,
                self._start_ts,
            )
        self._probe = None
        self._done = True
