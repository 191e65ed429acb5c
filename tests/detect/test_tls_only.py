"""A mail-port flow that is TLS from its first byte (implicit TLS on 465, or a capture that
started after STARTTLS) is said to be so, and gives no banner, EHLO or command findings."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.utils import wrpcap

from analyzer.detect import detect_single
from analyzer.pipeline import read_sessions
from analyzer.smtp.detect import looks_like_tls_record

from .transcripts import MESSAGE, greeting, packets


def record(content_type: int, body: bytes, version: bytes = b"\x03\x03") -> bytes:
    return bytes([content_type]) + version + len(body).to_bytes(2, "big") + body


HELLO = record(22, b"\x01\x00\x00\x40" + bytes(64), b"\x03\x01")
SERVER_HELLO = record(22, b"\x02\x00\x00\x30" + bytes(48))
APP = record(23, bytes(range(80)))
TLS_DIALOGUE = [("c", HELLO), ("s", SERVER_HELLO), ("c", APP), ("s", APP), ("c", APP)]


@pytest.mark.parametrize(
    ("head", "is_tls"),
    [
        (HELLO, True),
        (APP, True),
        (record(21, b"\x02\x28"), True),  # an alert
        (record(24, b"\x01"), False),  # a heartbeat never opens a stream
        (record(23, b"x", b"\x03\x05"), False),  # no such version
        (b"\x17\x03\x03\x48\x01", False),  # longer than 2^14 + 2048
        (b"\x16\x03", False),  # too short to tell
        (b"220 mx.example.org ESMTP\r\n", False),
        (b"EHLO client.example.net\r\n", False),
    ],
)
def test_a_tls_record_header_is_recognised(head: bytes, is_tls: bool) -> None:
    assert looks_like_tls_record(head) is is_tls


def _capture(tmp_path: Path, *, port: int, handshake: bool = True) -> Path:
    pkts = packets(TLS_DIALOGUE, server=("203.0.113.9", port))
    path = tmp_path / f"tls-{port}.pcap"
    wrpcap(str(path), pkts if handshake else pkts[3:])
    return path


@pytest.mark.parametrize(
    ("port", "handshake"),
    [(465, True), (25, True), (587, False)],
    ids=["implicit-tls-465", "tls-on-25", "capture-started-after-starttls"],
)
def test_a_tls_only_stream_is_named_and_not_read_as_smtp(
    tmp_path: Path, port: int, handshake: bool
) -> None:
    (session,) = read_sessions(_capture(tmp_path, port=port, handshake=handshake))
    assert "tls_from_first_byte" in session.anomaly_kinds
    note = next(a for a in session.anomalies if str(a.kind) == "tls_from_first_byte")
    assert "implicit TLS or a capture that started after STARTTLS" in str(note.detail)
    assert session.banner is None and session.helo is None and session.lines == ()
    c2s = len(HELLO) + 2 * len(APP)
    s2c = len(SERVER_HELLO) + len(APP)
    assert session.tls_bytes == (c2s, s2c)
    assert detect_single([session]) == []


def test_a_cleartext_session_is_not_tls_only(tmp_path: Path) -> None:
    path = tmp_path / "clear.pcap"
    wrpcap(str(path), packets(greeting() + MESSAGE))
    (session,) = read_sessions(path)
    assert "tls_from_first_byte" not in session.anomaly_kinds
    assert session.banner is not None and session.tls_bytes == (0, 0)
