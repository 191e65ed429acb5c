"""Build sessions and aligned pairs from short SMTP transcripts, for detector unit tests.

A transcript is the dialogue of one capture, item by item: ("c", b"EHLO a\r\n") the client
sent, ("s", b"220 …\r\n") the server sent. Each becomes one TCP segment of a real capture
(scapy), read back through the whole reading path (reassembly, SMTP parser, session builder),
so a test states the dialogue on each side and what the detector says about it.

Each endpoint sends with its own TTL, MAC and a counting IP-ID; a transcript may end with a
reset sent by the endpoint itself or by a box with other values (`Reset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from analyzer.correlate import PairAlignment, SessionPair, align_pair
from analyzer.detect import Finding
from analyzer.pipeline import run_capture
from analyzer.session.model import SmtpSession

CLIENT_MAC = "02:00:00:00:00:01"
SERVER_MAC = "02:00:00:00:00:02"
BOX_MAC = "02:00:00:00:00:fe"


@dataclass(frozen=True)
class Reset:
    """A RST 'from' one endpoint (sender "c" or "s"), as the endpoint or a box would send it."""

    sender: str
    ttl: int | None = None
    """None: the endpoint's own TTL."""
    mac: str | None = None
    """None: the endpoint's own MAC."""
    ip_id_jump: int = 1
    """How far past the endpoint's last IP-ID this one lies (1: the next one)."""


Item = tuple[str, bytes]


def packets(
    items: Sequence[Item],
    *,
    reset: Reset | None = None,
    start: float = 1.7e9,
    client: tuple[str, int] = ("198.51.100.7", 40123),
    server: tuple[str, int] = ("203.0.113.9", 25),
) -> list[Packet]:
    seq = {"c": 1000, "s": 5000}
    ip_id = {"c": 100, "s": 7000}
    ttl = {"c": 64, "s": 58}
    mac = {"c": CLIENT_MAC, "s": SERVER_MAC}
    address = {"c": client, "s": server}
    out: list[Packet] = []
    t = start

    def seg(
        sender: str,
        flags: str,
        payload: bytes = b"",
        r_ttl: int | None = None,
        r_mac: str | None = None,
        jump: int = 1,
    ) -> None:
        nonlocal t
        t += 0.01
        other = "s" if sender == "c" else "c"
        src, dst = address[sender], address[other]
        ip_id[sender] = (ip_id[sender] + jump) % 65536
        pkt = (
            Ether(src=r_mac or mac[sender], dst=mac[other])
            / IP(src=src[0], dst=dst[0], ttl=r_ttl or ttl[sender], id=ip_id[sender])
            / TCP(sport=src[1], dport=dst[1], seq=seq[sender], ack=seq[other], flags=flags)
        )
        if payload:
            pkt = pkt / Raw(payload)
        pkt.time = t
        out.append(pkt)
        seq[sender] += len(payload) + (1 if ("S" in flags or "F" in flags) else 0)

    seg("c", "S")
    seg("s", "SA")
    seg("c", "A")
    for sender, data in items:
        seg(sender, "PA", data)
    if reset is None:
        seg("c", "FA")
        seg("s", "FA")
        seg("c", "A")
    else:
        seg(reset.sender, "RA", r_ttl=reset.ttl, r_mac=reset.mac, jump=reset.ip_id_jump)
    return out


def session(
    tmp: Path, items: Sequence[Item], *, name: str = "single", reset: Reset | None = None
) -> SmtpSession:
    """The one SMTP session a capture of this transcript holds."""
    path = tmp / f"{name}.pcap"
    wrpcap(str(path), packets(items, reset=reset))
    (only,) = run_capture([path], name, keep_streams=True).sessions
    return only


def aligned(
    tmp: Path,
    client_side: Sequence[Item],
    server_side: Sequence[Item],
    *,
    client_reset: Reset | None = None,
    server_reset: Reset | None = None,
) -> PairAlignment:
    """Both captures of one connection, paired and aligned as the analysis would."""
    pair = SessionPair(
        client_side=session(tmp, client_side, name="client", reset=client_reset),
        server_side=session(tmp, server_side, name="server", reset=server_reset),
        score=1.0,
        matched_on=("transcript",),
        time_delta_s=0.0,
    )
    return align_pair(pair)


# -- dialogue pieces ------------------------------------------------------------------------------

BANNER = b"220 mx.example.org ESMTP Postfix\r\n"
EHLO = b"EHLO client.example.net\r\n"
EHLO_REPLY = (
    b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n"
)
MESSAGE = [
    ("c", b"MAIL FROM:<a@example.net>\r\n"),
    ("s", b"250 2.1.0 Ok\r\n"),
    ("c", b"RCPT TO:<b@example.org>\r\n"),
    ("s", b"250 2.1.5 Ok\r\n"),
    ("c", b"DATA\r\n"),
    ("s", b"354 End data with <CR><LF>.<CR><LF>\r\n"),
    ("c", b"Message-ID: <1@example.net>\r\nSubject: hi\r\n\r\nHello.\r\n.\r\n"),
    ("s", b"250 2.0.0 Ok: queued as 4AB\r\n"),
    ("c", b"QUIT\r\n"),
    ("s", b"221 2.0.0 Bye\r\n"),
]


def greeting(banner: bytes = BANNER, ehlo: bytes = EHLO, reply: bytes = EHLO_REPLY) -> list[Item]:
    return [("s", banner), ("c", ehlo), ("s", reply)]


def kinds(found: Sequence[Finding]) -> set[str]:
    return {str(f.kind) for f in found}


def session_without(tmp: Path, items: Sequence[Item], lost: int, *, name: str) -> SmtpSession:
    """The session as a capture that lost the segment of item `lost` (the stream has a hole)."""
    path = tmp / f"{name}.pcap"
    pkts = packets(items)
    del pkts[3 + lost]  # after the three handshake packets
    wrpcap(str(path), pkts)
    (only,) = run_capture([path], name, keep_streams=True).sessions
    return only


def pair_of(client_side: SmtpSession, server_side: SmtpSession) -> PairAlignment:
    return align_pair(
        SessionPair(
            client_side=client_side,
            server_side=server_side,
            score=1.0,
            matched_on=("transcript",),
            time_delta_s=0.0,
        )
    )
