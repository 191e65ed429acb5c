"""Write small SMTP conversations as pcap files with scapy, choosing every segment boundary.

A `Conversation` keeps both sides' sequence numbers, so a test says only what each side sends
and how it is cut into segments; handshake, ACK numbers, FIN and RST come out right.
`connection` is the short form: a dialogue of (sender, bytes) items, "c" for the client and "s"
for the server, one segment each, between a handshake and a clean close; `write` puts several
connections into one capture in time order. Addresses are from the documentation ranges
(RFC 5737).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import wrpcap

Side = Literal["client", "server"]


@dataclass(frozen=True)
class Endpoint:
    """One side of a connection as its packets show it."""

    ip: str
    port: int
    mac: str | None = None
    """None: scapy's default source MAC."""
    ttl: int = 64


CLIENT = ("198.51.100.7", 40123)
SERVER = ("203.0.113.9", 25)
"""The endpoints of `connection`."""
CONVERSATION_CLIENT = Endpoint("192.0.2.10", 40000, "02:00:00:00:00:0a", 64)
CONVERSATION_SERVER = Endpoint("198.51.100.25", 25, "02:00:00:00:00:19", 57)
"""The endpoints of a `Conversation` unless it is given others."""
TLS_CLIENT_HELLO = bytes.fromhex("16030100310100002d0303" + "00" * 32 + "0000020035010000020000")
"""A minimal TLS 1.2 ClientHello record (one cipher suite, no extensions)."""
Dialogue = Sequence[tuple[str, bytes]]


@dataclass
class Conversation:
    """One TCP connection, written packet by packet."""

    t0: float = 1_700_000_000.0
    step: float = 0.01
    client_isn: int = 1000
    server_isn: int = 500_000
    client_port: int = CONVERSATION_CLIENT.port
    client: Endpoint = CONVERSATION_CLIENT
    server: Endpoint = CONVERSATION_SERVER
    packets: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._seq = {"client": self.client_isn, "server": self.server_isn}
        self._t = self.t0

    def _packet(self, side: Side, flags: str, payload: bytes = b"") -> None:
        client = Endpoint(self.client.ip, self.client_port, self.client.mac, self.client.ttl)
        me, peer = (client, self.server) if side == "client" else (self.server, client)
        other: Side = "server" if side == "client" else "client"
        ack = self._seq[other] if "A" in flags else 0
        ether = Ether() if me.mac is None else Ether(src=me.mac, dst=peer.mac)
        pkt = (
            ether
            / IP(src=me.ip, dst=peer.ip, ttl=me.ttl)
            / TCP(
                sport=me.port,
                dport=peer.port,
                flags=flags,
                seq=self._seq[side],
                ack=ack,
                window=65535,
            )
            / payload
        )
        self._t += self.step
        pkt.time = self._t
        self.packets.append(pkt)
        self._seq[side] += len(payload) + (1 if ("S" in flags or "F" in flags) else 0)

    def handshake(self) -> Conversation:
        self._packet("client", "S")
        self._packet("server", "SA")
        self._packet("client", "A")
        return self

    def send(self, side: Side, *segments: bytes) -> Conversation:
        """`side` sends each of `segments` as one TCP segment."""
        for segment in segments:
            self._packet(side, "PA", segment)
        return self

    def lose(self, side: Side, *segments: bytes) -> Conversation:
        """`side` sends each of `segments` as one TCP segment that the capture does not hold:
        the sequence numbers move on, no packet is written."""
        for segment in segments:
            self._packet(side, "PA", segment)
            self.packets.pop()
        return self

    def close(self) -> Conversation:
        """Both sides send FIN, the client first; the last ACK follows."""
        self._packet("client", "FA")
        self._packet("server", "FA")
        self._packet("client", "A")
        return self

    def reset(self, side: Side) -> Conversation:
        self._packet(side, "RA")
        return self

    def write(self, path: Path) -> Path:
        wrpcap(str(path), self.packets)
        return path


def connection(
    items: Dialogue,
    *,
    client: tuple[str, int] = CLIENT,
    server: tuple[str, int] = SERVER,
    start: float = 1.7e9,
    step: float = 0.01,
) -> list[Packet]:
    """Handshake, the items one segment each, then FIN both ways."""
    conv = Conversation(
        t0=start,
        step=step,
        client_isn=1000,
        server_isn=5000,
        client_port=client[1],
        client=Endpoint(*client),
        server=Endpoint(*server),
    ).handshake()
    for sender, data in items:
        conv.send("client" if sender == "c" else "server", data)
    return conv.close().packets


def write(path: Path, *connections: list[Packet]) -> Path:
    packets = sorted((p for c in connections for p in c), key=lambda p: float(p.time))
    wrpcap(str(path), packets)
    return path


def smtp_dialogue(
    message: list[bytes],
    *,
    ehlo_reply: list[bytes] | None = None,
    after_data: list[bytes] | None = None,
) -> Conversation:
    """Greeting, EHLO, one MAIL/RCPT/DATA transaction whose message is sent as the segments
    `message` (the end mark included), then QUIT (unless `after_data` says what the client
    sends after the message, in which segments) and a clean close."""
    conv = Conversation().handshake()
    conv.send("server", b"220 mx.example.net ESMTP\r\n")
    conv.send("client", b"EHLO client.example.org\r\n")
    conv.send("server", *(ehlo_reply or [b"250-mx.example.net\r\n250 PIPELINING\r\n"]))
    conv.send("client", b"MAIL FROM:<alice@example.org>\r\n")
    conv.send("server", b"250 2.1.0 Ok\r\n")
    conv.send("client", b"RCPT TO:<bob@example.net>\r\n")
    conv.send("server", b"250 2.1.5 Ok\r\n")
    conv.send("client", b"DATA\r\n")
    conv.send("server", b"354 End data with <CR><LF>.<CR><LF>\r\n")
    conv.send("client", *message)
    if after_data is None:
        conv.send("server", b"250 2.0.0 Ok: queued\r\n")
        conv.send("client", b"QUIT\r\n")
    else:
        conv.send("client", *after_data)
        conv.send("server", b"250 2.0.0 Ok: queued\r\n")
    conv.send("server", b"221 2.0.0 Bye\r\n")
    return conv.close()


MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: a test\r\n"
    b"Message-ID: <test-1@example.org>\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b"..a line that starts with a dot\r\n"
    b"bye\r\n"
)
"""A small message as sent (dot-stuffed), without the end mark."""
MESSAGE_SIZE = len(MESSAGE) - 1
"""Its size after unstuffing (one doubled dot)."""
