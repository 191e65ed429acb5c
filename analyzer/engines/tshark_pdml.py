"""Read tshark's PDML for SMTP packets into small per-frame records, streaming.

PDML is the one tshark output that keeps, for every field, its bytes (`value`, hex), its place
(`pos`) and the tree it sits in: which lines the SMTP dissector delimited, where each one starts
in the TCP stream (also when Wireshark reassembled it from several segments), which packets it
took as mail data, where it saw the end of the data, and whether TLS began with a ClientHello.
`SmtpFrame` carries just that; interpreting it is `tshark_smtp`'s job.

The XML is parsed incrementally (`iterparse`) and each packet is dropped once read, so memory
follows the largest packet, not the capture.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Final

PROTOCOLS: Final = "tcp tcp.segments smtp tls"
"""The `-J` protocol filter: only these subtrees are written (geninfo always is)."""

_SEGMENT = re.compile(r"Frame: (\d+), payload: (\d+)-\d+")
"""`tcp.segment` shownames: which frame held which bytes of a reassembled PDU."""


@dataclass(frozen=True, slots=True)
class WireLine:
    """Bytes at a place in the stream: one SMTP line as the dissector delimited it, or a piece
    of the stream the dissector was handed."""

    data: bytes
    """The bytes as sent (a line with its terminator, when there was one)."""
    offset: int
    """Stream offset (in the direction of the frame) of the first byte."""


@dataclass(slots=True)
class SmtpFrame:
    """What the SMTP and TLS dissectors showed in one frame."""

    frame_no: int
    stream: int
    payload: bytes = b""
    """The frame's TCP payload."""
    payload_offset: int = 0
    """Stream offset of payload[0]."""
    pieces: list[WireLine] = field(default_factory=list)
    """What the SMTP dissector was handed, in order: the payload, or a PDU that TCP put
    together from several segments (also segments that came out of order) and the rest."""
    request: bool | None = None
    """True when the dissector took the frame for client→server (`smtp.req`), False for
    server→client (`smtp.rsp`), None when it said neither (mail data, TLS)."""
    commands: list[WireLine] = field(default_factory=list)
    responses: list[WireLine] = field(default_factory=list)
    auth: bool = False
    """The frame held a SASL exchange line (`smtp.auth.*`)."""
    smtp: bool = False
    """The SMTP dissector looked at the frame."""
    eom: bool = False
    """The dissector saw the end-of-data mark in this frame (`smtp.eom`)."""
    client_hello: int | None = None
    """Record-layer version of a TLS ClientHello in this frame."""


def _hex(element: ET.Element) -> bytes | None:
    value = element.get("value")
    if value is None:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _int(text: str | None, base: int = 10) -> int | None:
    if not text:
        return None
    try:
        return int(text, base)
    except ValueError:
        return None


def _split_lines(data: bytes, offset: int) -> list[WireLine]:
    """`data` cut after each LF; `offset` is the stream offset of data[0]."""
    lines: list[WireLine] = []
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        stop = len(data) if nl < 0 else nl + 1
        lines.append(WireLine(data[pos:stop], offset + pos))
        pos = stop
    return lines


class _PacketReader:
    """Turns one `<packet>` element into an `SmtpFrame`."""

    def __init__(self) -> None:
        self.payload_pos = -1
        self.reassembly_start: int | None = None
        self.reassembled = b""

    def read(self, packet: ET.Element) -> SmtpFrame | None:
        self.payload_pos = -1
        self.reassembly_start = None
        self.reassembled = b""
        frame = SmtpFrame(0, -1)
        for proto in packet:
            name = proto.get("name")
            if name == "geninfo":
                for f in proto:
                    if f.get("name") == "num":
                        frame.frame_no = _int(f.get("show")) or 0
            elif name == "tcp":
                self._tcp(proto, frame)
            elif name == "fake-field-wrapper":
                self._segments(proto, frame)
            elif name == "smtp":
                self._smtp(proto, frame)
            elif name == "tls":
                self._tls(proto, frame)
        if frame.frame_no <= 0 or frame.stream < 0:
            return None
        return frame

    def _tcp(self, proto: ET.Element, frame: SmtpFrame) -> None:
        seq: int | None = None
        for f in proto:
            fname = f.get("name")
            if fname == "tcp.stream":
                stream = _int(f.get("show"))
                frame.stream = -1 if stream is None else stream
            elif fname == "tcp.seq":
                seq = _int(f.get("show"))
            elif fname == "tcp.payload":
                frame.payload = _hex(f) or b""
                self.payload_pos = _int(f.get("pos")) or 0
        frame.payload_offset = max((seq or 1) - 1, 0)

    def _segments(self, proto: ET.Element, frame: SmtpFrame) -> None:
        """A PDU reassembled from several segments ends in this frame: its bytes and start."""
        for wrapper in proto:
            if wrapper.get("name") != "tcp.segments":
                continue
            for seg in wrapper:
                fname = seg.get("name")
                if fname == "tcp.reassembled.data":
                    self.reassembled = _hex(seg) or b""
                elif fname == "tcp.segment":
                    m = _SEGMENT.match(seg.get("showname") or "")
                    if m and int(m[1]) == frame.frame_no:
                        # This frame's payload[0] is byte m[2] of the reassembled PDU.
                        self.reassembly_start = frame.payload_offset - int(m[2])

    def _smtp(self, proto: ET.Element, frame: SmtpFrame) -> None:
        frame.smtp = True
        pos = _int(proto.get("pos")) or 0
        if self.reassembly_start is not None and pos < max(self.payload_pos, 1):
            # A reassembled PDU: positions count from its first byte.
            tvb, tvb_pos, base = self.reassembled, 0, self.reassembly_start
        else:
            tvb, tvb_pos, base = frame.payload, self.payload_pos, frame.payload_offset
        start = pos - tvb_pos
        size = _int(proto.get("size")) or 0
        if 0 <= start < len(tvb):
            frame.pieces.append(WireLine(tvb[start : start + size], base + start))
        for f in proto:
            fname = f.get("name") or ""
            if fname == "smtp.req":
                frame.request = True
            elif fname == "smtp.rsp":
                frame.request = False
            elif fname == "smtp.command_line":
                data = _hex(f)
                if data is None:  # tshark writes no value for an empty string
                    data = (f.get("show") or "").encode("utf-8", "surrogateescape")
                frame.commands.append(
                    WireLine(data, base + (_int(f.get("pos")) or tvb_pos) - tvb_pos)
                )
            elif fname == "smtp.response":
                frame.responses.extend(self._response(f, tvb, tvb_pos, base))
            elif fname == "smtp.eom":
                frame.eom = True
            elif fname.startswith("smtp.auth."):
                frame.auth = True

    @staticmethod
    def _response(item: ET.Element, tvb: bytes, tvb_pos: int, base: int) -> list[WireLine]:
        """The lines of one `smtp.response` item. The dissector puts all the lines of a reply
        that sit in one segment under one item (the first line's), one `smtp.rsp.parameter`
        per line; the lines run from the item to the end of the last parameter's line."""
        start = (_int(item.get("pos")) or tvb_pos) - tvb_pos
        stop = start + (_int(item.get("size")) or 0)
        for child in item:
            if child.get("name") == "smtp.rsp.parameter":
                end = (_int(child.get("pos")) or 0) - tvb_pos + (_int(child.get("size")) or 0)
                nl = tvb.find(b"\n", end)
                stop = max(stop, len(tvb) if nl < 0 else nl + 1)
        if not 0 <= start < stop <= len(tvb):
            data = _hex(item) or b""
            return [WireLine(data, base + start)] if data else []
        return _split_lines(tvb[start:stop], base + start)

    def _tls(self, proto: ET.Element, frame: SmtpFrame) -> None:
        version: int | None = None
        for f in proto.iter("field"):
            fname = f.get("name")
            if fname == "tls.record.version" and version is None:
                version = _int(f.get("show"), 16)
            elif (
                fname == "tls.handshake.type"
                and f.get("show") == "1"
                and frame.client_hello is None
            ):
                frame.client_hello = version or 0


def read_pdml(stream: IO[bytes]) -> Iterator[SmtpFrame]:
    """Each packet of a PDML document as an `SmtpFrame`, in document order. An empty stream
    (tshark wrote nothing: it could not read the file, and says so on stderr) gives nothing."""
    reader = _PacketReader()
    root: ET.Element | None = None
    events = ET.iterparse(stream, events=("start", "end"))
    while True:
        try:
            event, element = next(events)
        except StopIteration:
            return
        except ET.ParseError:
            if root is None:
                return
            raise
        if event == "start":
            if root is None:
                root = element
            continue
        if element.tag != "packet":
            continue
        frame = reader.read(element)
        element.clear()
        if root is not None:
            root.clear()
        if frame is not None:
            yield frame
