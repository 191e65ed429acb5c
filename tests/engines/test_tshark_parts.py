"""The tshark engine's pure parts, without tshark: rows, PDML, message bytes, SMTP meaning.

Invariants (hypothesis): a message fed in any cut gives the same size, header section and
fields; PDML line splitting loses no byte; the SMTP meaning of the dissector's lines does not
depend on how the lines were spread over frames.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer._common import Direction, FrameRef
from analyzer.engines.tshark_fields import FIELDS, parse_row
from analyzer.engines.tshark_message import MessageBytes
from analyzer.engines.tshark_pdml import SmtpFrame, WireLine, _split_lines, read_pdml
from analyzer.engines.tshark_smtp import SmtpSynth
from analyzer.smtp.events import Command, DataEnd, Event, MessageHeader, Reply, TlsStarted

from ..craft import MESSAGE, MESSAGE_SIZE

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT


def _cuts(data: bytes, points: list[int]) -> list[bytes]:
    bounds = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# -- fields rows -------------------------------------------------------------------------


def _line(**values: str) -> str:
    return "\t".join(values.get(name, "") for name in FIELDS) + "\n"


def test_row_of_an_ipv4_segment() -> None:
    row = parse_row(
        _line(
            **{
                "frame.number": "7",
                "frame.time_epoch": "1700000000.250000000",
                "frame.interface_id": "0",
                "frame.protocols": "eth:ethertype:ip:tcp:smtp",
                "tcp.stream": "3",
                "ip.src": "192.0.2.10",
                "ip.dst": "198.51.100.25",
                "tcp.srcport": "40000",
                "tcp.dstport": "25",
                "tcp.flags": "0x0018",
                "tcp.seq": "22",
                "tcp.seq_raw": "1022",
                "tcp.ack_raw": "500023",
                "tcp.len": "17",
                "ip.ttl": "64",
                "ip.id": "0x1f2e",
                "eth.src": "02:00:00:00:00:0a",
                "tcp.options.timestamp.tsval": "123456",
                "tcp.analysis.retransmission": "1",
            }
        )
    )
    assert row is not None
    assert (row.frame_no, row.stream, row.src, row.dst, row.sport, row.dport) == (
        7,
        3,
        "192.0.2.10",
        "198.51.100.25",
        40000,
        25,
    )
    assert (row.flags, row.seq, row.length, row.ttl, row.ip_id) == (0x18, 22, 17, 64, 0x1F2E)
    assert row.mac == bytes.fromhex("02000000000a")
    assert row.tsval == 123456 and row.retransmission and not row.lost_segment
    assert row.ts == 1700000000.25


def test_row_inside_a_tunnel_takes_the_inner_addresses() -> None:
    """IPv6 carried in IPv4 (6in4): the header nearest TCP is the segment's."""
    row = parse_row(
        _line(
            **{
                "frame.number": "1",
                "frame.time_epoch": "1.0",
                "tcp.stream": "0",
                "frame.protocols": "eth:ethertype:ip:ipv6:tcp",
                "ip.src": "192.0.2.1",
                "ip.dst": "192.0.2.2",
                "ipv6.src": "2001:db8::1",
                "ipv6.dst": "2001:db8::2",
                "ip.ttl": "60",
                "ipv6.hlim": "55",
                "ip.id": "0x0001",
                "tcp.srcport": "1",
                "tcp.dstport": "25",
            }
        )
    )
    assert row is not None
    assert (row.src, row.dst, row.ttl, row.ip_id) == ("2001:db8::1", "2001:db8::2", 55, None)


@given(st.text())
def test_any_line_is_a_row_or_none(text: str) -> None:
    row = parse_row(text)
    assert row is None or row.frame_no >= 0


# -- PDML ------------------------------------------------------------------------------


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=10_000))
def test_line_split_loses_no_byte(data: bytes, offset: int) -> None:
    lines = _split_lines(data, offset)
    assert b"".join(line.data for line in lines) == data
    assert all(line.data.endswith(b"\n") for line in lines[:-1])
    assert [line.offset for line in lines] == [
        offset + sum(len(x.data) for x in lines[:i]) for i in range(len(lines))
    ]


PAYLOAD = b"250-mx hi\r\n250-PIPELINING"
PDML = f"""<?xml version="1.0"?>
<pdml>
<packet>
  <proto name="geninfo"><field name="num" show="9" value="9"/></proto>
  <proto name="tcp">
    <field name="tcp.stream" show="2"/>
    <field name="tcp.seq" show="101"/>
    <field name="tcp.payload" pos="54" size="{len(PAYLOAD)}" value="{PAYLOAD.hex()}"/>
  </proto>
  <proto name="smtp" pos="54" size="{len(PAYLOAD)}">
    <field name="smtp.rsp" pos="54" show="1"/>
    <field name="smtp.response" pos="54" size="11" value="{PAYLOAD[:11].hex()}">
      <field name="smtp.response.code" pos="54" size="3" show="250"/>
      <field name="smtp.rsp.parameter" pos="58" size="5" value="{b"mx hi".hex()}"/>
      <field name="smtp.rsp.parameter" pos="69" size="10" value="{b"PIPELINING".hex()}"/>
    </field>
  </proto>
</packet>
</pdml>
""".encode()


def test_pdml_reply_lines_come_from_the_segment_bytes() -> None:
    """All lines of a reply in one segment sit under one `smtp.response` item; they are cut
    from the payload, each at its own stream offset (relative seq 101 = offset 100)."""
    (frame,) = read_pdml(io.BytesIO(PDML))
    assert (frame.frame_no, frame.stream, frame.request) == (9, 2, False)
    assert frame.responses == [
        WireLine(b"250-mx hi\r\n", 100),
        WireLine(b"250-PIPELINING", 111),
    ]


# -- message bytes ---------------------------------------------------------------------


def _fed(cuts: list[bytes]) -> tuple[int, bytes, list[bytes]]:
    message = MessageBytes(1000, True, FrameRef("t", 1), 0.0)
    offset = 1000
    for i, piece in enumerate(cuts):
        message.feed(piece, offset, FrameRef("t", i + 2), float(i))
        offset += len(piece)
    end = message.end(True, message.data_size(offset), offset + 3, None, 9.0)
    headers = [h.raw for h in message.headers()]
    return end.size, end.header_block, headers


@given(st.lists(st.integers(min_value=0, max_value=len(MESSAGE)), max_size=8))
def test_message_read_in_any_cut_is_the_same(points: list[int]) -> None:
    size, block, headers = _fed(_cuts(MESSAGE, points))
    assert size == MESSAGE_SIZE
    assert block == MESSAGE[: MESSAGE.index(b"\r\n\r\n") + 4]
    assert [h.split(b":")[0] for h in headers] == [b"From", b"To", b"Subject", b"Message-ID"]


def test_header_fields_keep_their_folded_lines() -> None:
    text = b"Subject: a\r\n  folded\r\nX-A: 1\r\n\r\nbody\r\n"
    _, _, headers = _fed([text])
    assert headers == [b"Subject: a\r\n  folded\r\n", b"X-A: 1\r\n"]


def test_message_with_a_hole_counts_the_missing_bytes() -> None:
    message = MessageBytes(0, True, None, 0.0)
    message.feed(b"Subject: x\r\n", 0, None, 0.0)
    message.feed(b"tail\r\n", 112, None, 1.0)  # 100 bytes never shown
    assert message.data_size(118) == 118
    assert message.head_done


# -- SMTP meaning of the dissector's lines ---------------------------------------------


def _frame(
    no: int,
    offset: int,
    *,
    commands: Sequence[bytes] = (),
    responses: Sequence[bytes] = (),
    payload: bytes = b"",
    eom: bool = False,
) -> SmtpFrame:
    frame = SmtpFrame(no, 0, payload=payload, payload_offset=offset, eom=eom, smtp=True)
    pos = offset
    for line in commands:
        frame.commands.append(WireLine(line, pos))
        pos += len(line)
    for line in responses:
        frame.responses.append(WireLine(line, pos))
        pos += len(line)
    return frame


def _dialogue(replies_per_frame: int) -> list[Event]:
    """A pipelined dialogue; the server's replies come `replies_per_frame` to a frame."""
    synth = SmtpSynth()
    events: list[Event] = []
    ref = FrameRef("t", 1)
    client = [b"EHLO c\r\n", b"MAIL FROM:<a@x>\r\n", b"RCPT TO:<b@y>\r\n", b"STARTTLS\r\n"]
    server = [
        b"220 hi\r\n",
        b"250-s\r\n",
        b"250 STARTTLS\r\n",
        b"250 ok\r\n",
        b"250 ok\r\n",
        b"220 go\r\n",
    ]
    events += synth.frame(_frame(1, 0, responses=server[:1]), S2C, ref, 0.0)
    events += synth.frame(_frame(2, 0, commands=client), C2S, ref, 1.0)
    offset = len(server[0])
    rest = server[1:]
    for i in range(0, len(rest), replies_per_frame):
        chunk = rest[i : i + replies_per_frame]
        events += synth.frame(_frame(3 + i, offset, responses=chunk), S2C, ref, 2.0)
        offset += sum(map(len, chunk))
    return events


@settings(max_examples=10)
@given(st.integers(min_value=1, max_value=5))
def test_replies_answer_commands_in_order_however_they_are_framed(per_frame: int) -> None:
    events = _dialogue(per_frame)
    answered = [
        (e.code, e.command.verb if e.command else None, e.is_greeting)
        for e in events
        if isinstance(e, Reply)
    ]
    assert answered == [
        (220, None, True),
        (250, "EHLO", False),
        (250, "MAIL", False),
        (250, "RCPT", False),
        (220, "STARTTLS", False),
    ]
    (tls,) = [e for e in events if isinstance(e, TlsStarted)]
    assert tls.offset_client == sum(len(c.raw) + 2 for c in events if isinstance(c, Command))


def test_data_ends_at_the_dissectors_mark() -> None:
    synth = SmtpSynth()
    ref = FrameRef("t", 1)
    out = synth.frame(_frame(1, 0, responses=[b"220 hi\r\n"]), S2C, ref, 0.0)
    out += synth.frame(_frame(2, 0, commands=[b"DATA\r\n"]), C2S, ref, 0.0)
    out += synth.frame(_frame(3, 8, responses=[b"354 go\r\n"]), S2C, ref, 0.0)
    body = MESSAGE + b".\r\n"
    half = len(body) // 2
    out += synth.frame(_frame(4, 6, payload=body[:half]), C2S, ref, 0.0)
    out += synth.frame(_frame(5, 6 + half, payload=body[half:], eom=True), C2S, ref, 0.0)
    (end,) = [e for e in out if isinstance(e, DataEnd)]
    assert end.complete and end.size == MESSAGE_SIZE and end.offset == 6 + len(body)
    assert [e.name for e in out if isinstance(e, MessageHeader)] == [
        b"From",
        b"To",
        b"Subject",
        b"Message-ID",
    ]


# -- finding SMTP off the mail ports ---------------------------------------------------


def test_sniffer_finds_smtp_by_its_first_bytes_on_any_port() -> None:
    from analyzer.engines.tshark import _Sniffer

    sniffer = _Sniffer()
    sniffer.feed(1, 2225, 50000, b"220 mx.example.net ESMTP\r\n")  # a greeting from 2225
    sniffer.feed(2, 50001, 8025, b"EH")  # a client opening cut in two
    sniffer.feed(2, 50001, 8025, b"LO client.example.org\r\n")
    sniffer.feed(3, 50002, 80, b"GET / HTTP/1.1\r\n")  # not SMTP
    sniffer.feed(3, 80, 50002, b"220 looks like a greeting, too late\r\n")
    sniffer.feed(4, 50003, 9000, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 8)  # TLS
    assert sniffer.streams == {1, 2}
    assert sniffer.server_ports == {2225, 8025}
