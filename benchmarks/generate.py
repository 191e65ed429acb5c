#!/usr/bin/env python3
"""Write a large, realistic SMTP capture for the benchmarks: classic pcap, Ethernet, µs timestamps.

What it writes: thousands of SMTP connections open at the same time, interleaved flight by flight
(a flight is what one side sends in one go: one command, one reply, or a congestion window of
segments with the receiver's ACKs), to a few servers from many client hosts. Each connection has a
full three-way handshake, a Postfix- or Exim-style greeting and EHLO reply (PIPELINING, SIZE,
STARTTLS, CHUNKING…), then either mail transactions (MAIL, RCPT with some rejections, DATA with
dot-stuffed bodies of 1 KB to 2 MB carrying base64 attachments in 76-character lines, or BDAT
chunks), or STARTTLS followed by random bytes in TLS record framing, or a bare probe. Connections
end with QUIT and a FIN teardown, a few with RSTs. About 1% of data segments are retransmitted
(identical bytes) and about 1% are swapped with their successor (out of order). HTTP-like TCP
flows and DNS-like UDP exchanges are mixed in as noise. Segments are MSS-sized (1460, or 1448 with
the TCP timestamp option). IPv4, TCP and UDP checksums are correct.

The output is a pure function of its arguments (size, seed, concurrency, rate, BDAT or not):
the same arguments give the same bytes.

What it does not do: model any real network's traffic mix or timing, produce real TLS, write
IPv6, VLAN tags, IP fragments or pcapng, or check anything; it only writes. It builds frames with
`struct` from per-connection templates (no packet library), so it writes about a gigabyte in a few
tens of seconds.

Usage: generate.py OUT.pcap --size 1G --seed 1 [--concurrency 2000] [--mbps 100] [--no-bdat]
                   [--stats-json STATS.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import struct
import sys
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from itertools import accumulate, islice
from pathlib import Path

GENERATOR_VERSION = 2
"""Bumped whenever the output for given arguments changes; cached captures key on it."""

# --- pcap (https://www.tcpdump.org/manpages/pcap-savefile.5.html) -------------------------------
PCAP_MAGIC_USEC = 0xA1B2C3D4
"""Classic pcap magic number for microsecond timestamps."""
PCAP_VERSION = (2, 4)
LINKTYPE_ETHERNET = 1
"""LINKTYPE_ETHERNET (https://www.tcpdump.org/linktypes.html)."""
SNAPLEN = 262_144
PCAP_FILE_HEADER = struct.Struct("<IHHiIII")
PCAP_RECORD_HEADER = struct.Struct("<IIII")

# --- Ethernet, IPv4, TCP, UDP -------------------------------------------------------------------
ETHERTYPE_IPV4 = 0x0800
"""IEEE 802.3 EtherType for IPv4."""
IPV4_VERSION_IHL = 0x45
"""Version 4, header length 5 words: no IP options (RFC 791 §3.1)."""
IPV4_DONT_FRAGMENT = 0x4000
"""The DF bit in the flags/fragment-offset word (RFC 791 §3.1)."""
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
"""RFC 791 §3.1: version/IHL, TOS, total length, identification, flags/offset, TTL, protocol,
header checksum, source, destination."""
TCP_HEADER = struct.Struct("!HHIIBBHHH")
"""RFC 9293 §3.1: ports, sequence, acknowledgment, data offset, flags, window, checksum, urgent."""
UDP_HEADER = struct.Struct("!HHHH")
"""RFC 768: ports, length, checksum."""
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
SEQ_MASK = 0xFFFF_FFFF
"""Sequence numbers are 32 bits and wrap (RFC 9293 §3.4)."""
MSS_PLAIN = 1460
"""Ethernet MTU 1500 minus 20 bytes of IPv4 and 20 of TCP header."""
MSS_WITH_TIMESTAMPS = 1448
"""MSS_PLAIN minus the 12 bytes the timestamp option (RFC 7323 §3) takes in every segment."""
TCP_TIMESTAMP_PREFIX = b"\x01\x01\x08\x0a"
"""NOP, NOP, kind 8 length 10: the timestamp option as Linux aligns it (RFC 7323 §3)."""
INITIAL_CWND = 10
"""Initial congestion window in segments (RFC 6928)."""
MAX_FLIGHT = 64
"""Largest flight of segments one side sends before the generator lets another connection speak."""

# --- SMTP, MIME, TLS, DNS -----------------------------------------------------------------------
SMTP_PORT = 25
"""Relay (RFC 5321 §4.5.4.2 names port 25)."""
SUBMISSION_PORT = 587
"""Message submission (RFC 6409 §3.1)."""
BASE64_LINE = 76
"""Base64 body lines are at most 76 characters (RFC 2045 §6.8)."""
BDAT_CHUNK = 65_536
"""Chunk size for BDAT transfers (RFC 3030 leaves it to the client; 64 KiB is common)."""
TLS_MAX_RECORD = 16_384
"""Largest TLS plaintext fragment (RFC 8446 §5.1); ciphertext adds the AEAD tag."""
TLS_HANDSHAKE, TLS_APPLICATION_DATA, TLS_ALERT, TLS_CHANGE_CIPHER_SPEC = 22, 23, 21, 20
"""TLS record content types (RFC 8446 §5.1)."""
TLS_LEGACY_VERSION = b"\x03\x03"
DNS_PORT = 53
HTTP_PORT = 80

# --- The traffic mix ----------------------------------------------------------------------------
DEFAULT_CONCURRENCY = 2000
"""Connections kept open at once for captures of 200 MB and more (smaller ones scale down)."""
BYTES_PER_CONCURRENT_SESSION = 100_000
"""Small captures keep about one open connection per this many bytes of file."""
MESSAGE_SIZES = (
    (0.78, 1 << 10, 16 << 10),
    (0.18, 16 << 10, 256 << 10),
    (0.035, 256 << 10, 1 << 20),
    (0.005, 1 << 20, 2 << 20),
)
"""(share, low, high): message sizes, log-uniform within each band; most mail is small, a few
messages carry megabytes of attachments. Mean about 50 KB, so a gigabyte holds ~15,000 sessions."""
MESSAGE_CAP_DIVISOR = 16
"""No message is larger than 1/16 of the requested file size: small captures hold many sessions."""
MIN_MESSAGE_CAP = 2048
RETRANSMIT_RATE = 0.01
OUT_OF_ORDER_RATE = 0.01
DEFAULT_MBPS = 100.0
"""Average traffic rate of the capture in Mbit/s: a gigabyte spans about 90 s of capture time."""
LINE_RATE_BITS_PER_US = 1000
"""Frames of one flight follow each other at 1 Gbit/s line rate (1000 bits per microsecond)."""
START_TS = 1_717_405_200
"""Timestamp of the first packet: 2024-06-03 09:00:00 UTC."""

ETH_SERVER_SIDE_ROUTER = bytes.fromhex("02005e000101")
CLIENT_NET = (10, 32)
"""Client hosts live in 10.32.0.0/11 (RFC 1918)."""
CLIENT_HOSTS = 6000
HTTP_SERVER_IP = bytes([198, 51, 100, 80])
DNS_SERVER_IP = bytes([203, 0, 113, 53])

# fmt: off
_WORDS = (
    "account", "agenda", "almost", "answer", "april", "archive", "attached", "budget", "change",
    "client", "contract", "copy", "customer", "deadline", "delivery", "draft", "estimate",
    "feedback", "final", "follow", "forward", "friday", "hello", "however", "invoice", "issue",
    "january", "latest", "letter", "meeting", "minutes", "monday", "note", "offer", "order",
    "please", "project", "proposal", "quarter", "question", "quote", "regards", "release",
    "report", "request", "review", "revised", "schedule", "second", "send", "shipment",
    "signed", "status", "summary", "team", "thanks", "thursday", "ticket", "today", "travel",
    "tuesday", "update", "urgent", "version", "wednesday", "week",
)
_FIRST = (
    "anna", "ben", "carla", "david", "emma", "felix", "grace", "hugo", "iris", "jonas", "karin",
    "lena", "marco", "nina", "olga",
)
_LAST = (
    "adler", "berger", "costa", "dubois", "eriksen", "fischer", "garcia", "hansen", "ito",
    "jensen", "kowalski",
)
# fmt: on


def parse_size(text: str) -> int:
    """'200M', '1G', '512K', '1.5G', '123456' → bytes (K/M/G are powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:I?B)?\s*", text.upper())
    if not match:
        raise ValueError(f"not a size: {text!r} (try 200M or 1G)")
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[match.group(2)]
    return int(float(match.group(1)) * scale)


def default_concurrency(size: int) -> int:
    """Open connections for a capture of `size` bytes: DEFAULT_CONCURRENCY from 200 MB up."""
    return max(8, min(DEFAULT_CONCURRENCY, size // BYTES_PER_CONCURRENT_SESSION))


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """What one run wrote; the counts are what a correct analyzer should find."""

    path: str
    seed: int
    target_bytes: int
    bytes: int
    packets: int
    smtp_sessions: int
    """TCP connections to an SMTP port (all of them carry SMTP)."""
    cleartext_sessions: int
    """SMTP sessions that never switched to TLS."""
    starttls_sessions: int
    """Sessions that switched to TLS after `220` to STARTTLS."""
    submission_sessions: int
    """Sessions to port 587 with AUTH."""
    transactions: int
    """MAIL commands sent in cleartext (what a dissector can count)."""
    messages: int
    """Cleartext messages the server accepted (250 after the data)."""
    bdat_messages: int
    aborted_messages: int
    """Messages cut off by a client RST in the middle of the data."""
    rejected_recipients: int
    rst_sessions: int
    """SMTP sessions ended by an RST instead of a FIN exchange."""
    retransmitted_segments: int
    out_of_order_segments: int
    http_flows: int
    dns_queries: int
    peak_concurrency: int
    capture_seconds: float
    """Capture time the file spans (first to last packet)."""
    mbps: float
    """The average traffic rate asked for."""
    generator_version: int = GENERATOR_VERSION


@dataclass(slots=True)
class _Counts:
    """Mutable tallies kept while generating."""

    smtp_sessions: int = 0
    starttls_sessions: int = 0
    submission_sessions: int = 0
    transactions: int = 0
    messages: int = 0
    bdat_messages: int = 0
    aborted_messages: int = 0
    rejected_recipients: int = 0
    rst_sessions: int = 0
    retransmitted_segments: int = 0
    out_of_order_segments: int = 0
    http_flows: int = 0
    dns_queries: int = 0


# --- checksums ------------------------------------------------------------------------------------


def _word_sum(data: bytes) -> int:
    """The 16-bit word sum of `data` modulo 0xFFFF (2**16 ≡ 1), zero-padded to even length."""
    value = int.from_bytes(data, "big")
    return (value << 8 if len(data) & 1 else value) % 0xFFFF


def _checksum(total: int) -> int:
    """Internet checksum (RFC 1071) from a sum of 16-bit words."""
    folded = total % 0xFFFF
    if folded == 0 and total:
        folded = 0xFFFF
    return 0xFFFF - folded


# --- frames ---------------------------------------------------------------------------------------


class _Clock:
    """The capture's time in microseconds; every frame written advances it."""

    __slots__ = ("us",)

    def __init__(self) -> None:
        self.us = START_TS * 1_000_000


class _Link:
    """Per-direction constant parts of the frames between two hosts (Ethernet, IPv4)."""

    __slots__ = ("dst_ip", "eth", "ident", "ip_base", "proto", "pseudo_base", "src_ip", "ttl")

    def __init__(
        self,
        src_mac: bytes,
        dst_mac: bytes,
        src_ip: bytes,
        dst_ip: bytes,
        ttl: int,
        ident: int,
        proto: int,
    ) -> None:
        self.eth = dst_mac + src_mac + ETHERTYPE_IPV4.to_bytes(2, "big")
        self.src_ip = src_ip
        self.dst_ip = dst_ip
        self.ttl = ttl
        self.ident = ident
        self.proto = proto
        addr = _word_sum(src_ip + dst_ip)
        self.ip_base = (IPV4_VERSION_IHL << 8) + IPV4_DONT_FRAGMENT + (ttl << 8 | proto) + addr
        self.pseudo_base = addr + proto

    def ip(self, payload_len: int) -> bytes:
        """The next IPv4 header (identification counts up) for `payload_len` bytes of payload."""
        total = 20 + payload_len
        self.ident = (self.ident + 1) & 0xFFFF
        csum = _checksum(self.ip_base + total + self.ident)
        return IPV4_HEADER.pack(
            IPV4_VERSION_IHL,
            0,
            total,
            self.ident,
            IPV4_DONT_FRAGMENT,
            self.ttl,
            self.proto,
            csum,
            self.src_ip,
            self.dst_ip,
        )


class _Conn:
    """One TCP connection's two directions (0: client to server, 1: server to client)."""

    __slots__ = (
        "clock",
        "isn",
        "last_tsval",
        "links",
        "mss",
        "nxt",
        "ports",
        "timestamps",
        "window",
    )

    def __init__(
        self,
        rng: random.Random,
        clock: _Clock,
        links: tuple[_Link, _Link],
        cport: int,
        sport: int,
        timestamps: bool,
    ) -> None:
        self.clock = clock
        self.links = links
        self.ports = ((cport, sport), (sport, cport))
        self.isn = (rng.getrandbits(32), rng.getrandbits(32))
        self.nxt = [0, 0]
        """Bytes of sequence space each side has used (SYN and FIN count one), unwrapped."""
        self.timestamps = timestamps
        self.mss = MSS_WITH_TIMESTAMPS if timestamps else MSS_PLAIN
        self.window = (rng.choice((502, 501, 64240, 2053)), rng.choice((509, 227, 1026, 65160)))
        self.last_tsval = [0, 0]

    def frame(
        self,
        d: int,
        flags: int,
        payload: bytes = b"",
        ack: int | None = None,
        options: bytes | None = None,
    ) -> bytes:
        """Build one segment from side `d`; advances that side's sequence number."""
        peer = 1 - d
        seq = (self.isn[d] + self.nxt[d]) & SEQ_MASK
        ack_no = 0
        if flags & TCP_ACK:
            ack_no = (self.isn[peer] + (self.nxt[peer] if ack is None else ack)) & SEQ_MASK
        if options is None and self.timestamps:
            tsval = (self.clock.us // 1000 + self.isn[d]) & SEQ_MASK
            self.last_tsval[d] = tsval
            options = TCP_TIMESTAMP_PREFIX + struct.pack("!II", tsval, self.last_tsval[peer])
        elif options is None:
            options = b""
        hlen = 20 + len(options)
        sport, dport = self.ports[d]
        window = self.window[d] if not flags & TCP_SYN else 64240
        head = TCP_HEADER.pack(sport, dport, seq, ack_no, hlen << 2, flags, window, 0, 0) + options
        link = self.links[d]
        seg_len = hlen + len(payload)
        csum = _checksum(link.pseudo_base + seg_len + _word_sum(head) + _word_sum(payload))
        self.nxt[d] += len(payload) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)
        return b"".join(
            (
                link.eth,
                link.ip(seg_len),
                head[:16],
                csum.to_bytes(2, "big"),
                head[18:],
                payload,
            )
        )

    def syn_options(self, d: int) -> bytes:
        if not self.timestamps:  # MSS, NOP, WS 8, NOP, NOP, SACK permitted (Windows order)
            return b"\x02\x04\x05\xb4\x01\x03\x03\x08\x01\x01\x04\x02"
        tsval = (self.clock.us // 1000 + self.isn[d]) & SEQ_MASK
        self.last_tsval[d] = tsval
        # MSS 1460, SACK permitted, timestamps, NOP, window scale 7 (Linux order)
        return (
            b"\x02\x04\x05\xb4\x04\x02\x08\x0a"
            + struct.pack("!II", tsval, self.last_tsval[1 - d])
            + b"\x01\x03\x03\x07"
        )


def _udp_frame(link: _Link, sport: int, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    csum = (
        _checksum(link.pseudo_base + length + sport + dport + length + _word_sum(payload)) or 0xFFFF
    )
    return b"".join(
        (
            link.eth,
            link.ip(length),
            UDP_HEADER.pack(sport, dport, length, csum),
            payload,
        )
    )


# --- content pools --------------------------------------------------------------------------------


class _Pools:
    """Precomputed bytes that bodies are sliced from (zero-copy memoryviews)."""

    def __init__(self, rng: random.Random) -> None:
        raw = rng.randbytes(1_700_000)
        b64 = base64.b64encode(raw)
        lines = [b64[i : i + BASE64_LINE] for i in range(0, len(b64) - BASE64_LINE, BASE64_LINE)]
        self.b64_line = BASE64_LINE + 2
        self.b64 = memoryview(b"\r\n".join(lines) + b"\r\n")
        self.random = memoryview(rng.randbytes(4_300_000))
        text_lines: list[bytes] = []
        for _ in range(6000):
            roll = rng.random()
            if roll < 0.03:  # a line starting with "." goes out dot-stuffed (RFC 5321 §4.5.2)
                line = b".." + rng.choice((b"", b" ", b"..", b"signature", b"net rules"))
            elif roll < 0.10:
                line = b""
            elif roll < 0.14:
                line = b"> " + self._words(rng, 40)
            else:
                line = self._words(rng, 72)
            text_lines.append(line + b"\r\n")
        self.text = memoryview(b"".join(text_lines))
        self.text_starts = [0, *accumulate(len(x) for x in text_lines)]

    @staticmethod
    def _words(rng: random.Random, width: int) -> bytes:
        out = rng.choice(_WORDS).capitalize()
        limit = rng.randint(width // 3, width)
        while len(out) < limit:
            out += " " + rng.choice(_WORDS)
        return out[:width].rstrip().encode()

    def text_slice(self, rng: random.Random, size: int) -> memoryview:
        """About `size` bytes of whole text lines."""
        size = min(size, len(self.text) // 2)
        first = rng.randrange(len(self.text_starts) // 2)
        start = self.text_starts[first]
        end = self.text_starts[
            min(bisect_left(self.text_starts, start + size), len(self.text_starts) - 1)
        ]
        return self.text[start:end]

    def b64_slice(self, rng: random.Random, size: int) -> memoryview:
        """About `size` bytes of whole base64 lines."""
        lines = max(1, min(size // self.b64_line, len(self.b64) // self.b64_line - 1))
        first = rng.randrange(len(self.b64) // self.b64_line - lines + 1)
        return self.b64[first * self.b64_line : (first + lines) * self.b64_line]

    def random_slice(self, rng: random.Random, size: int) -> memoryview:
        size = min(size, len(self.random))
        start = rng.randrange(len(self.random) - size + 1)
        return self.random[start : start + size]

    def b64_text(self, rng: random.Random, chars: int) -> str:
        return (
            bytes(self.b64_slice(rng, chars + self.b64_line)).replace(b"\r\n", b"")[:chars].decode()
        )


Piece = bytes | memoryview | None
"""A run of bytes to send, or None: end the current segment here (the sender's write ended)."""


def _chunks(pieces: Sequence[Piece], size: int) -> Iterator[bytes]:
    """The concatenation of `pieces` cut into `size`-byte chunks; a None piece cuts early."""
    buf = bytearray()
    for piece in pieces:
        if piece is None:
            if buf:
                yield bytes(buf)
                buf.clear()
            continue
        pos, n = 0, len(piece)
        if buf:
            take = min(size - len(buf), n)
            buf += piece[:take]
            pos = take
            if len(buf) < size:
                continue
            yield bytes(buf)
            buf.clear()
        while n - pos >= size:
            yield bytes(piece[pos : pos + size])
            pos += size
        if pos < n:
            buf += piece[pos:]
    if buf:
        yield bytes(buf)


# --- hosts ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Server:
    name: str
    ip: bytes
    mac: bytes
    port: int
    flavor: str
    """'postfix' or 'exim': which reply texts to use."""
    keywords: tuple[str, ...]
    domains: tuple[str, ...]
    links: dict[bytes, tuple[_Link, _Link]] = field(default_factory=dict)


@dataclass(slots=True)
class _Client:
    ip: bytes
    name: str
    domain: str
    ttl: int
    timestamps: bool
    next_port: int


def _servers() -> list[_Server]:
    postfix = (
        "PIPELINING",
        "SIZE 52428800",
        "VRFY",
        "ETRN",
        "STARTTLS",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "DSN",
        "SMTPUTF8",
        "CHUNKING",
    )
    return [
        _Server(
            "mx1.example.net",
            bytes([203, 0, 113, 10]),
            bytes.fromhex("5254000a0001"),
            SMTP_PORT,
            "postfix",
            postfix,
            ("example.net", "corp.example.net"),
        ),
        _Server(
            "mx2.example.net",
            bytes([203, 0, 113, 11]),
            bytes.fromhex("5254000a0002"),
            SMTP_PORT,
            "postfix",
            postfix,
            ("example.net", "corp.example.net"),
        ),
        _Server(
            "mail.example.com",
            bytes([203, 0, 113, 20]),
            bytes.fromhex("5254000a0003"),
            SMTP_PORT,
            "exim",
            ("SIZE 52428800", "8BITMIME", "PIPELINING", "CHUNKING", "STARTTLS", "HELP"),
            ("example.com",),
        ),
        _Server(
            "smtp.example.net",
            bytes([203, 0, 113, 30]),
            bytes.fromhex("5254000a0004"),
            SUBMISSION_PORT,
            "postfix",
            (
                "PIPELINING",
                "SIZE 36700160",
                "STARTTLS",
                "AUTH PLAIN LOGIN",
                "ENHANCEDSTATUSCODES",
                "8BITMIME",
                "DSN",
                "CHUNKING",
            ),
            ("example.net",),
        ),
    ]


# --- the generator --------------------------------------------------------------------------------

Flight = list[bytes]


class _Generator:
    """Holds the shared state (random source, clock, hosts, pools, tallies) for one capture."""

    def __init__(self, seed: int, bdat: bool, max_message: int) -> None:
        self.rng = random.Random(seed)
        self.bdat = bdat
        self.max_message = max_message
        self.clock = _Clock()
        self.counts = _Counts()
        self.pools = _Pools(self.rng)
        self.servers = _servers()
        self.clients: dict[int, _Client] = {}
        self.domains = [
            f"{a}{b}.example"
            for a in ("north", "blue", "acme", "stone", "lake", "red", "oak")
            for b in ("wind", "field", "works", "trading", "labs", "hill", "mail")
        ]

    # hosts
    def client(self) -> _Client:
        rng = self.rng
        index = (
            min(int(rng.paretovariate(1.2)) - 1, CLIENT_HOSTS - 1)
            if rng.random() < 0.3
            else rng.randrange(CLIENT_HOSTS)
        )
        host = self.clients.get(index)
        if host is None:
            ip = bytes(
                [CLIENT_NET[0], CLIENT_NET[1] + (index >> 16), (index >> 8) & 255, index & 255]
            )
            domain = rng.choice(self.domains)
            host = _Client(
                ip,
                f"{rng.choice(('mail', 'smtp', 'out', 'mta'))}{index % 7 + 1}.{domain}",
                domain,
                rng.choice((64, 128, 255)) - rng.randint(3, 20),
                rng.random() < 0.7,
                rng.randint(32768, 60999),
            )
            self.clients[index] = host
        return host

    def conn(
        self,
        client: _Client,
        server_ip: bytes,
        server_mac: bytes,
        port: int,
        links: dict[bytes, tuple[_Link, _Link]] | None,
        proto: int = IPPROTO_TCP,
    ) -> tuple[_Conn, tuple[_Link, _Link], int]:
        pair = links.get(client.ip) if links is not None else None
        if pair is None:
            rng = self.rng
            pair = (
                _Link(
                    ETH_SERVER_SIDE_ROUTER,
                    server_mac,
                    client.ip,
                    server_ip,
                    client.ttl,
                    rng.getrandbits(16),
                    proto,
                ),
                _Link(
                    server_mac,
                    ETH_SERVER_SIDE_ROUTER,
                    server_ip,
                    client.ip,
                    64,
                    rng.getrandbits(16),
                    proto,
                ),
            )
            if links is not None:
                links[client.ip] = pair
        cport = client.next_port
        client.next_port = 32768 if cport >= 60999 else cport + 1
        return _Conn(self.rng, self.clock, pair, cport, port, client.timestamps), pair, cport

    # building blocks shared by the session scripts
    def handshake(self, c: _Conn) -> Iterator[Flight]:
        yield [c.frame(0, TCP_SYN, options=c.syn_options(0))]
        yield [c.frame(1, TCP_SYN | TCP_ACK, options=c.syn_options(1))]
        yield [c.frame(0, TCP_ACK)]

    def say(self, c: _Conn, d: int, text: str) -> Flight:
        frames = [c.frame(d, TCP_PSH | TCP_ACK, text.encode())]
        if self.rng.random() < RETRANSMIT_RATE:  # a spurious retransmission: the same bytes again
            frames.append(frames[0])
            self.counts.retransmitted_segments += 1
        return frames

    def bulk(
        self, c: _Conn, d: int, pieces: Sequence[Piece], abort_after: int | None = None
    ) -> Iterator[Flight]:
        """Send `pieces` from side `d` in congestion-window flights, with the peer's ACKs.

        The receiver ACKs every second in-order segment and at the end of each flight, and sends
        a duplicate ACK for a segment that arrives out of order. With `abort_after`, stop after
        that many segments (the caller then resets the connection).
        """
        rng, counts = self.rng, self.counts
        r = 1 - d
        chunks = _chunks(pieces, c.mss)
        expected = c.nxt[d]
        cwnd = INITIAL_CWND
        sent = 0
        while True:
            want = cwnd if abort_after is None else min(cwnd, abort_after - sent)
            segs: list[tuple[int, int, bytes]] = []
            for payload in islice(chunks, max(want, 0)):
                start = c.nxt[d]
                segs.append((start, start + len(payload), c.frame(d, TCP_ACK, payload)))
            if not segs:
                return
            sent += len(segs)
            for i in range(len(segs) - 1):
                if rng.random() < OUT_OF_ORDER_RATE:
                    segs[i], segs[i + 1] = segs[i + 1], segs[i]
                    counts.out_of_order_segments += 1
            frames: Flight = []
            pending: dict[int, int] = {}
            unacked = 0
            for start, end, frame in segs:
                frames.append(frame)
                if start == expected:
                    expected = end
                    while expected in pending:
                        expected = pending.pop(expected)
                    unacked += 1
                    if unacked >= 2:
                        frames.append(c.frame(r, TCP_ACK, ack=expected))
                        unacked = 0
                elif start > expected:
                    pending[start] = end
                    frames.append(c.frame(r, TCP_ACK, ack=expected))  # duplicate ACK
                if rng.random() < RETRANSMIT_RATE:
                    frames.append(frame)
                    counts.retransmitted_segments += 1
            if unacked:
                frames.append(c.frame(r, TCP_ACK, ack=expected))
            yield frames
            cwnd = min(cwnd * 2, MAX_FLIGHT)

    def close(self, c: _Conn, server_first: bool) -> Iterator[Flight]:
        first, second = (1, 0) if server_first else (0, 1)
        yield [c.frame(first, TCP_FIN | TCP_ACK)]
        yield [c.frame(second, TCP_FIN | TCP_ACK)]
        yield [c.frame(first, TCP_ACK)]

    # message content
    def body(
        self, sender: str, rcpts: Sequence[str], size: int, dkim: bool
    ) -> list[bytes | memoryview]:
        rng, pools = self.rng, self.pools
        domain = sender.rsplit("@", 1)[1]
        boundary = f"=_part_{rng.getrandbits(48):012x}"
        subject = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 8))).capitalize()
        date = formatdate(self.clock.us / 1e6 - rng.randint(1, 90), localtime=False)
        msgid = f"<{rng.getrandbits(64):016x}.{rng.getrandbits(20)}@{domain}>"
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        head = [
            f"Received: from [192.168.{rng.randint(0, 9)}.{rng.randint(2, 250)}] "
            f"(unknown [198.18.{rng.randint(0, 255)}.{rng.randint(1, 254)}])\r\n"
            f"\tby relay.{domain} with ESMTPSA id {rng.getrandbits(40):010X}\r\n"
            f"\tfor <{rcpts[0]}>; {date}\r\n",
        ]
        if dkim:
            sig = pools.b64_text(rng, 344)
            folded = "\r\n\t ".join(sig[i : i + 70] for i in range(0, len(sig), 70))
            head.append(
                f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain};\r\n"
                f"\ts=s{rng.randint(2019, 2024)}; t={self.clock.us // 1_000_000};\r\n"
                f"\tbh={pools.b64_text(rng, 43)}=;\r\n"
                f"\th=From:To:Subject:Date:Message-ID:MIME-Version:Content-Type;\r\n"
                f"\tb={folded}\r\n"
            )
        head.append(
            f'From: "{first.capitalize()} {last.capitalize()}" <{sender}>\r\n'
            f"To: {', '.join(f'<{r}>' for r in rcpts)}\r\n"
            f"Subject: {subject}\r\n"
            f"Date: {date}\r\n"
            f"Message-ID: {msgid}\r\n"
            f"MIME-Version: 1.0\r\n"
        )
        text_size = min(size, rng.randint(400, 6000))
        if size - text_size < 1024:
            head.append(
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            )
            return [b"".join(h.encode() for h in head), pools.text_slice(rng, size)]
        ext = rng.choice(("pdf", "zip", "docx", "png"))
        name = f"{rng.choice(_WORDS)}-{rng.randint(1, 999)}.{ext}"
        head.append(
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            f"This is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        )
        attach_head = (
            f'\r\n--{boundary}\r\nContent-Type: application/octet-stream; name="{name}"\r\n'
            f"Content-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'
        )
        return [
            b"".join(h.encode() for h in head),
            pools.text_slice(rng, text_size),
            attach_head.encode(),
            pools.b64_slice(rng, size - text_size),
            f"--{boundary}--\r\n".encode(),
        ]

    def message_size(self) -> int:
        """A message size drawn from MESSAGE_SIZES, at most `max_message`."""
        roll = self.rng.random()
        band = MESSAGE_SIZES[-1]
        for candidate in MESSAGE_SIZES:
            roll -= candidate[0]
            if roll < 0:
                band = candidate
                break
        _, low, high = band
        return min(int(low * (high / low) ** self.rng.random()), self.max_message)

    # session scripts: each yields flights; `estimate` is the wire size decided up front
    def smtp_session(self) -> tuple[Iterator[Flight], int]:
        rng, counts = self.rng, self.counts
        server = rng.choice(self.servers)
        client = self.client()
        c, _, _ = self.conn(client, server.ip, server.mac, server.port, server.links)
        roll = rng.random()
        kind = (
            "probe"
            if roll < 0.04
            else "helo"
            if roll < 0.08
            else "starttls"
            if roll < 0.23 and "STARTTLS" in server.keywords
            else "mail"
        )
        if server.port == SUBMISSION_PORT and kind == "starttls":
            kind = "mail"
        n_messages = 0 if kind == "probe" else (1 if rng.random() < 0.75 else rng.randint(2, 5))
        sizes = [self.message_size() for _ in range(n_messages)]
        estimate = int(sum(sizes) * 1.04) + 3000
        counts.smtp_sessions += 1
        if kind == "starttls":
            counts.starttls_sessions += 1
        if server.port == SUBMISSION_PORT:
            counts.submission_sessions += 1
        return self._smtp_script(c, server, client, kind, sizes), estimate

    def _reply(self, server: _Server, what: str, arg: str = "") -> str:
        rng = self.rng
        exim = server.flavor == "exim"
        if what == "banner":
            if exim:
                return f"220 {server.name} ESMTP Exim 4.96 {formatdate(self.clock.us / 1e6)}\r\n"
            return f"220 {server.name} ESMTP Postfix (Debian/GNU)\r\n"
        if what == "ok":
            return "250 OK\r\n" if exim else f"250 2.{arg or '0.0'} Ok\r\n"
        if what == "354":
            return (
                '354 Enter message, ending with "." on a line by itself\r\n'
                if exim
                else "354 End data with <CR><LF>.<CR><LF>\r\n"
            )
        if what == "queued":
            if exim:
                ident = (
                    f"1s{rng.getrandbits(30):08x}-{rng.getrandbits(20):05X}-{rng.randint(10, 99)}"
                )
                return f"250 OK id={ident}\r\n"
            return f"250 2.0.0 Ok: queued as {rng.getrandbits(44):011X}\r\n"
        if what == "reject":
            if rng.random() < 0.3:
                return (
                    f"450 4.2.0 <{arg}>: Recipient address rejected: Greylisted, see "
                    f"https://postgrey.schweikert.ch/help/{arg.rsplit('@', 1)[1]}.html\r\n"
                )
            if exim:
                return "550 Unrouteable address\r\n"
            return (
                f"550 5.1.1 <{arg}>: Recipient address rejected: "
                "User unknown in virtual mailbox table\r\n"
            )
        if what == "novalid":
            return (
                "503 Valid RCPT command must precede DATA\r\n"
                if exim
                else "554 5.5.1 Error: no valid recipients\r\n"
            )
        if what == "bye":
            return "221 mail.example.com closing connection\r\n" if exim else "221 2.0.0 Bye\r\n"
        raise ValueError(what)

    def _ehlo_reply(self, server: _Server, client: _Client) -> str:
        first = (
            f"{server.name} Hello {client.name} [{'.'.join(map(str, client.ip))}]"
            if server.flavor == "exim"
            else server.name
        )
        lines = [first, *server.keywords]
        return "".join(
            f"250{'-' if i < len(lines) - 1 else ' '}{x}\r\n" for i, x in enumerate(lines)
        )

    def _smtp_script(
        self, c: _Conn, server: _Server, client: _Client, kind: str, sizes: list[int]
    ) -> Iterator[Flight]:
        rng, counts = self.rng, self.counts
        yield from self.handshake(c)
        yield self.say(c, 1, self._reply(server, "banner"))
        if kind == "probe":
            if rng.random() < 0.5:
                yield self.say(c, 0, f"EHLO {client.name}\r\n")
                yield self.say(c, 1, self._ehlo_reply(server, client))
            yield self.say(c, 0, "QUIT\r\n")
            yield self.say(c, 1, self._reply(server, "bye"))
            yield from self.close(c, server_first=True)
            return
        pipelining = kind != "helo" and "PIPELINING" in server.keywords and rng.random() < 0.8
        chunking = kind != "helo" and "CHUNKING" in server.keywords
        if kind == "helo":
            yield self.say(c, 0, f"HELO {client.name}\r\n")
            yield self.say(c, 1, f"250 {server.name}\r\n")
        else:
            yield self.say(c, 0, f"EHLO {client.name}\r\n")
            yield self.say(c, 1, self._ehlo_reply(server, client))
        if kind == "starttls":
            yield from self._tls(c, sizes)
            return
        if server.port == SUBMISSION_PORT:
            token = base64.b64encode(f"\0{client.domain}-user\0{rng.getrandbits(64):x}".encode())
            yield self.say(c, 0, f"AUTH PLAIN {token.decode()}\r\n")
            yield self.say(c, 1, "235 2.7.0 Authentication successful\r\n")
        for number, size in enumerate(sizes):
            sender = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}@{client.domain}"
            rcpts = [
                f"{rng.choice(_FIRST)}{rng.randint(1, 99)}@{rng.choice(server.domains)}"
                for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 6))
            ]
            accepted = [rng.random() >= 0.06 for _ in rcpts]
            counts.rejected_recipients += accepted.count(False)
            counts.transactions += 1
            mail = f"MAIL FROM:<{sender}> SIZE={size + 1500}\r\n"
            rcpt_lines = "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts)
            rcpt_replies = [
                self._reply(server, "ok", "1.5") if ok else self._reply(server, "reject", r)
                for r, ok in zip(rcpts, accepted, strict=True)
            ]
            bdat = pipelining and chunking and rng.random() < 0.15 and self.bdat
            if bdat:  # MAIL and RCPT pipelined, then the BDAT chunks (RFC 3030 §4.2)
                yield self.say(c, 0, mail + rcpt_lines)
                yield self.say(c, 1, self._reply(server, "ok", "1.0") + "".join(rcpt_replies))
            elif pipelining:  # DATA ends the pipelined group (RFC 2920 §3.1)
                yield self.say(c, 0, mail + rcpt_lines + "DATA\r\n")
                last = self._reply(server, "354" if any(accepted) else "novalid")
                yield self.say(
                    c, 1, self._reply(server, "ok", "1.0") + "".join(rcpt_replies) + last
                )
                if not any(accepted):
                    break  # the client gives up on this connection and says QUIT
            else:
                yield self.say(c, 0, mail)
                yield self.say(c, 1, self._reply(server, "ok", "1.0"))
                for r, reply in zip(rcpts, rcpt_replies, strict=True):
                    yield self.say(c, 0, f"RCPT TO:<{r}>\r\n")
                    yield self.say(c, 1, reply)
            if not any(accepted):
                yield self.say(c, 0, "RSET\r\n")
                yield self.say(c, 1, self._reply(server, "ok"))
                continue
            body = self.body(
                sender,
                [r for r, ok in zip(rcpts, accepted, strict=True) if ok],
                size,
                dkim=rng.random() < 0.6,
            )
            abort = rng.random() < 0.01 and size > 40_000
            if bdat:
                counts.bdat_messages += 1
                yield from self._bdat(c, server, body)
                counts.messages += 1
                continue
            if not pipelining:
                yield self.say(c, 0, "DATA\r\n")
                yield self.say(c, 1, self._reply(server, "354"))
            if abort:
                yield from self.bulk(c, 0, body, abort_after=rng.randint(5, 20))
                counts.aborted_messages += 1
                counts.rst_sessions += 1
                yield [c.frame(0, TCP_RST | TCP_ACK)]
                return
            yield from self.bulk(c, 0, [*body, b".\r\n"])
            yield self.say(c, 1, self._reply(server, "queued"))
            counts.messages += 1
            if number + 1 < len(sizes) and rng.random() < 0.2:
                yield self.say(c, 0, "RSET\r\n")
                yield self.say(c, 1, self._reply(server, "ok"))
        yield self.say(c, 0, "QUIT\r\n")
        yield self.say(c, 1, self._reply(server, "bye"))
        if rng.random() < 0.03:
            counts.rst_sessions += 1
            yield [c.frame(0, TCP_RST | TCP_ACK)]
        else:
            yield from self.close(c, server_first=rng.random() < 0.7)

    def _bdat(self, c: _Conn, server: _Server, body: list[bytes | memoryview]) -> Iterator[Flight]:
        """BDAT transfer (RFC 3030): chunks announced by length, so no dot-stuffing and no '.'."""
        data = b"".join(bytes(p) for p in body)
        pieces: list[Piece] = []
        replies: list[str] = []
        for start in range(0, len(data), BDAT_CHUNK):
            chunk = data[start : start + BDAT_CHUNK]
            last = start + BDAT_CHUNK >= len(data)
            pieces += [f"BDAT {len(chunk)}{' LAST' if last else ''}\r\n".encode(), chunk, None]
            replies.append(
                self._reply(server, "queued") if last else f"250 2.0.0 Ok: {len(chunk)} bytes\r\n"
            )
        yield from self.bulk(c, 0, pieces)
        yield self.say(c, 1, "".join(replies))

    def _tls(self, c: _Conn, sizes: list[int]) -> Iterator[Flight]:
        """STARTTLS, then random bytes framed as TLS 1.2/1.3 records, close_notify, FIN."""
        rng, pools = self.rng, self.pools
        yield self.say(c, 0, "STARTTLS\r\n")
        yield self.say(c, 1, "220 2.0.0 Ready to start TLS\r\n")

        def record(ctype: int, size: int, hs_type: int | None = None) -> list[bytes | memoryview]:
            head = bytes([ctype]) + TLS_LEGACY_VERSION + size.to_bytes(2, "big")
            if hs_type is None:
                return [head, pools.random_slice(rng, size)]
            return [
                head,
                bytes([hs_type]) + (size - 4).to_bytes(3, "big"),
                pools.random_slice(rng, size - 4),
            ]

        yield [
            c.frame(0, TCP_PSH | TCP_ACK, b"".join(bytes(p) for p in record(TLS_HANDSHAKE, 512, 1)))
        ]
        yield from self.bulk(
            c,
            1,
            [
                *record(TLS_HANDSHAKE, 122, 2),
                *record(TLS_CHANGE_CIPHER_SPEC, 1),
                *record(TLS_APPLICATION_DATA, rng.randint(2500, 5200)),
            ],
        )
        yield [
            c.frame(
                0,
                TCP_PSH | TCP_ACK,
                b"".join(
                    bytes(p)
                    for p in [*record(TLS_CHANGE_CIPHER_SPEC, 1), *record(TLS_APPLICATION_DATA, 53)]
                ),
            )
        ]
        for _ in range(2):  # EHLO / reply, MAIL+RCPT+DATA / replies, inside TLS
            yield [
                c.frame(
                    0,
                    TCP_PSH | TCP_ACK,
                    b"".join(bytes(p) for p in record(TLS_APPLICATION_DATA, rng.randint(40, 140))),
                )
            ]
            yield [
                c.frame(
                    1,
                    TCP_PSH | TCP_ACK,
                    b"".join(bytes(p) for p in record(TLS_APPLICATION_DATA, rng.randint(60, 300))),
                )
            ]
        for size in sizes:
            pieces: list[bytes | memoryview] = []
            left = size
            while left > 0:
                n = min(left, TLS_MAX_RECORD)
                pieces += record(TLS_APPLICATION_DATA, n + 17)
                left -= n
            yield from self.bulk(c, 0, pieces)
            yield [
                c.frame(
                    1,
                    TCP_PSH | TCP_ACK,
                    b"".join(bytes(p) for p in record(TLS_APPLICATION_DATA, rng.randint(50, 90))),
                )
            ]
        yield [c.frame(0, TCP_PSH | TCP_ACK, b"".join(bytes(p) for p in record(TLS_ALERT, 26)))]
        yield from self.close(c, server_first=False)

    def http_flow(self) -> tuple[Iterator[Flight], int]:
        client = self.client()
        c, _, _ = self.conn(client, HTTP_SERVER_IP, bytes.fromhex("5254000a0050"), HTTP_PORT, None)
        sizes = [int(1000 * 200 ** self.rng.random()) for _ in range(self.rng.randint(1, 3))]
        self.counts.http_flows += 1
        return self._http_script(c, sizes), int(sum(sizes) * 1.09) + 2000

    def _http_script(self, c: _Conn, sizes: list[int]) -> Iterator[Flight]:
        rng = self.rng
        yield from self.handshake(c)
        for size in sizes:
            path = f"/{rng.choice(_WORDS)}/{rng.getrandbits(32):08x}.bin"
            yield self.say(
                c,
                0,
                f"GET {path} HTTP/1.1\r\nHost: files.example.org\r\n"
                "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
            )
            head = (
                f"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {size}\r\nConnection: keep-alive\r\n\r\n"
            ).encode()
            yield from self.bulk(c, 1, [head, self.pools.random_slice(rng, size)])
        yield from self.close(c, server_first=False)

    def dns_exchange(self) -> tuple[Iterator[Flight], int]:
        client = self.client()
        _, links, sport = self.conn(
            client, DNS_SERVER_IP, bytes.fromhex("5254000a0035"), DNS_PORT, None, proto=IPPROTO_UDP
        )
        self.counts.dns_queries += 1
        return self._dns_script(links, sport), 250

    def _dns_script(self, links: tuple[_Link, _Link], sport: int) -> Iterator[Flight]:
        rng = self.rng
        server = rng.choice(self.servers)
        qtype = rng.choice((1, 15, 28))  # A, MX, AAAA (RFC 1035 §3.2.2, RFC 3596)
        name = server.domains[0] if qtype == 15 else server.name
        qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
        ident = rng.getrandbits(16)
        question = qname + struct.pack("!HH", qtype, 1)
        yield [
            _udp_frame(
                links[0],
                sport,
                DNS_PORT,
                struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question,
            )
        ]
        if qtype == 15:
            mx = b"".join(bytes([len(p)]) + p.encode() for p in server.name.split(".")) + b"\0"
            rdata = struct.pack("!H", 10) + mx
        elif qtype == 1:
            rdata = server.ip
        else:
            rdata = bytes.fromhex("20010db8000000000000000000000010")
        answer = b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 300, len(rdata)) + rdata
        yield [
            _udp_frame(
                links[1],
                DNS_PORT,
                sport,
                struct.pack("!HHHHHH", ident, 0x8180, 1, 1, 0, 0) + question + answer,
            )
        ]

    def new_flow(self) -> tuple[Iterator[Flight], int]:
        roll = self.rng.random()
        if roll < 0.06:
            return self.http_flow()
        if roll < 0.14:
            return self.dns_exchange()
        return self.smtp_session()


def generate(
    path: str | Path,
    size: int,
    seed: int = 1,
    concurrency: int | None = None,
    *,
    bdat: bool = True,
    mbps: float = DEFAULT_MBPS,
    progress: Callable[[int], None] | None = None,
) -> GenerationStats:
    """Write a capture of about `size` bytes to `path` and return what it holds.

    `concurrency` is how many connections are kept open at once (default: DEFAULT_CONCURRENCY,
    fewer for small files); `bdat=False` sends every message with DATA (tshark 4.0 loses track
    of a session after pipelined BDAT chunks, so exact cross-checks against it turn this off);
    `mbps` is the average traffic rate, which sets how many seconds of capture time the file spans.
    """
    if mbps <= 0:
        raise ValueError("mbps must be positive")
    us_per_byte = 8 / mbps
    gen = _Generator(seed, bdat, max(MIN_MESSAGE_CAP, size // MESSAGE_CAP_DIVISOR))
    rng, clock = gen.rng, gen.clock
    limit = default_concurrency(size) if concurrency is None else max(1, concurrency)
    active: list[Iterator[Flight]] = []
    committed = PCAP_FILE_HEADER.size
    written = 0
    packets = 0
    peak = 0
    pack_record = PCAP_RECORD_HEADER.pack
    out = bytearray()
    next_progress = 64 << 20
    with open(path, "wb") as fh:
        out += PCAP_FILE_HEADER.pack(
            PCAP_MAGIC_USEC, *PCAP_VERSION, 0, 0, SNAPLEN, LINKTYPE_ETHERNET
        )
        while True:
            flight: Flight | None = None
            if committed < size and len(active) < limit and (not active or rng.random() < 0.5):
                script, estimate = gen.new_flow()
                committed += estimate
                active.append(script)
                flight = next(script)
                peak = max(peak, len(active))
            elif active:
                i = rng.randrange(len(active))
                flight = next(active[i], None)
                if flight is None:
                    active[i] = active[-1]
                    active.pop()
                    continue
            else:
                break
            # a pause worth this flight's bytes at the average rate, then the frames at line rate
            flight_bytes = sum(map(len, flight))
            clock.us += int(flight_bytes * us_per_byte * (0.5 + rng.random()))
            for frame in flight:
                n = len(frame)
                clock.us += n * 8 // LINE_RATE_BITS_PER_US + 1
                out += pack_record(clock.us // 1_000_000, clock.us % 1_000_000, n, n)
                out += frame
                packets += 1
            if len(out) >= 1 << 22:
                fh.write(out)
                written += len(out)
                out.clear()
                if progress is not None and written >= next_progress:
                    progress(written)
                    next_progress += 64 << 20
        fh.write(out)
        written += len(out)
    counts = gen.counts
    return GenerationStats(
        path=str(path),
        seed=seed,
        target_bytes=size,
        bytes=written,
        packets=packets,
        smtp_sessions=counts.smtp_sessions,
        cleartext_sessions=counts.smtp_sessions - counts.starttls_sessions,
        starttls_sessions=counts.starttls_sessions,
        submission_sessions=counts.submission_sessions,
        transactions=counts.transactions,
        messages=counts.messages,
        bdat_messages=counts.bdat_messages,
        aborted_messages=counts.aborted_messages,
        rejected_recipients=counts.rejected_recipients,
        rst_sessions=counts.rst_sessions,
        retransmitted_segments=counts.retransmitted_segments,
        out_of_order_segments=counts.out_of_order_segments,
        http_flows=counts.http_flows,
        dns_queries=counts.dns_queries,
        peak_concurrency=peak,
        capture_seconds=round(clock.us / 1e6 - START_TS, 6),
        mbps=mbps,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a large realistic SMTP capture (pcap).")
    parser.add_argument("out", type=Path, help="the pcap file to write")
    parser.add_argument(
        "--size", default="200M", help="about how big: 200M, 1G, 512K (default 200M)"
    )
    parser.add_argument("--seed", type=int, default=1, help="same seed, same bytes (default 1)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help=f"connections open at once (default {DEFAULT_CONCURRENCY}, fewer for small files)",
    )
    parser.add_argument(
        "--no-bdat", action="store_true", help="send every message with DATA, none with BDAT chunks"
    )
    parser.add_argument(
        "--mbps",
        type=float,
        default=DEFAULT_MBPS,
        help=f"average rate in Mbit/s, sets the capture's duration (default {DEFAULT_MBPS:g})",
    )
    parser.add_argument("--stats-json", type=Path, help="also write the counts here as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    try:
        size = parse_size(args.size)
    except ValueError as exc:
        parser.error(str(exc))
    if args.mbps <= 0:
        parser.error("--mbps must be positive")
    started = time.perf_counter()

    def progress(done: int) -> None:
        if not args.quiet:
            sys.stderr.write(f"\r{done >> 20} MiB / {size >> 20} MiB")
            sys.stderr.flush()

    stats = generate(
        args.out,
        size,
        args.seed,
        args.concurrency,
        bdat=not args.no_bdat,
        mbps=args.mbps,
        progress=progress,
    )
    elapsed = time.perf_counter() - started
    if not args.quiet:
        sys.stderr.write("\r" + " " * 40 + "\r")
    if args.stats_json is not None:
        args.stats_json.write_text(json.dumps(asdict(stats), indent=2) + "\n")
    print(
        f"{stats.path}: {stats.bytes / 1e6:.1f} MB, {stats.packets} packets in {elapsed:.1f} s "
        f"({stats.bytes / 1e6 / elapsed:.0f} MB/s)\n"
        f"  SMTP sessions {stats.smtp_sessions} (STARTTLS {stats.starttls_sessions}, "
        f"submission {stats.submission_sessions}, ended by RST {stats.rst_sessions}), "
        f"peak {stats.peak_concurrency} open at once\n"
        f"  transactions {stats.transactions} (MAIL commands in cleartext), messages written "
        f"{stats.messages} (BDAT {stats.bdat_messages}, aborted {stats.aborted_messages}), "
        f"rejected recipients {stats.rejected_recipients}\n"
        f"  retransmitted segments {stats.retransmitted_segments}, out of order "
        f"{stats.out_of_order_segments}, HTTP flows {stats.http_flows}, DNS queries "
        f"{stats.dns_queries}, {stats.capture_seconds:.1f} s of traffic"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
