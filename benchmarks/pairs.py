#!/usr/bin/env python3
"""Write a large capture pair for the correlation benchmark: thousands of concurrent SMTP
sessions between ONE client MTA and ONE server MTA, captured outside and inside a firewall.

The hard case for pairing: every connection has the same two hosts, the same EHLO name and the
same server, all open at the same time (starts spread over a couple of seconds, sessions lasting
seconds). The firewall NATs the client (address and port change), randomizes the initial
sequence number in both directions, clamps the MSS and forwards with a small per-connection
delay plus jitter; the server-side capture's clock runs ahead (default +93.2 s). Both hosts run a
Linux-like stack: TCP timestamps (the client's TSval identical on both sides), window scaling,
SACK-permitted, delayed ACKs (40 ms) and an ACK every second full segment; the receiving NIC
merges back-to-back client segments (GRO), so the two sides cut the stream differently. With
`--no-timestamps` no segment carries the timestamp option and pairing must rest on timing,
lengths, EHLO, envelope and Message-IDs.

Each session delivers one or two DKIM-signed messages (distinct Message-IDs, 1-12 KB) from a
pool of senders to a pool of recipients, with pipelined MAIL/RCPT/DATA. Half of the deliveries
(`--tls-share`) use STARTTLS when offered (TLS 1.3 record framing, random ciphertext); the rest
stay in cleartext. With `--bulk` it is a newsletter run instead: one message per session, the
same body, subject and sender for everyone (only the recipient and Message-ID differ), so stream
lengths collide across sessions. A fraction of sessions (`--tampered`) is tampered, cycling through:
`ehlo_starttls_masked` (EHLO reply keywords masked, `STARTTLS` -> `XXXXXXXA`, the client sends
in cleartext), `starttls_command_masked` (`STARTTLS` -> `XXXXXXXX`, `500 5.5.2 Error: command
not recognized`, the client falls back to cleartext), `dkim_reset` (the segment after the
DKIM-Signature header is dropped and RSTs with TTL 255 are forged to both ends), `banner_masked`
(PIX 5.1+ form), and `banner_masked` + `ehlo_starttls_masked` together (the ASA default policy).

Output in OUTDIR: `client-side.pcap`, `server-side.pcap` (classic pcap, Ethernet, µs, valid IPv4
and TCP checksums) and `truth.json`: per session its `tcp.stream` index in each capture (order
of first packet, as Wireshark numbers them), addresses, TLS use, Message-IDs and tampering.

Speed: content is built with the sample generator's helpers (`captures/_dialogues.py`), the wire
with precomputed per-connection header templates, `struct` and checksums taken modulo 0xFFFF
(RFC 1071 §2 (B): the ones' complement sum of 16-bit words is the number modulo 2^16-1); no
packet library. The output is a pure function of the arguments.

This module does not analyse anything (see `correlate_scale.py`).

Usage: pairs.py OUTDIR [--sessions 5000] [--tampered 0.01] [--seed 1] [--no-timestamps] [--bulk]
    [--same-message]
"""

from __future__ import annotations

import argparse
import enum
import functools
import heapq
import json
import math
import random
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
if str(CAPTURES) not in sys.path:
    sys.path.insert(0, str(CAPTURES))

from _dialogues import (  # noqa: E402
    POSTFIX,
    Envelope,
    Message,
    Signature,
    change_cipher_spec,
    client_hello,
    data_payload,
    ehlo_keywords_of,
    encrypted,
    header_end,
    mail_command,
    mask_banner,
    mask_command,
    mask_ehlo_keywords,
    postfix_queue_id,
    rcpt_commands,
    render_message,
    server_hello,
    split_points,
)

GENERATOR_VERSION = 2
"""Bumped whenever the output for given arguments changes; caches key on it."""

CLIENT_SIDE = "client-side.pcap"
SERVER_SIDE = "server-side.pcap"
TRUTH = "truth.json"
TRUTH_SCHEMA = "smtpfw.bench.pairs/1"

# --- pcap (https://www.tcpdump.org/manpages/pcap-savefile.5.html) -------------------------------
PCAP_MAGIC_USEC = 0xA1B2C3D4
"""Classic pcap, microsecond timestamps."""
PCAP_VERSION = (2, 4)
PCAP_SNAPLEN = 262_144
LINKTYPE_ETHERNET = 1
PCAP_FILE_HEADER = struct.Struct("<IHHiIII")
PCAP_RECORD_HEADER = struct.Struct("<IIII")

# --- Ethernet, IPv4, TCP ------------------------------------------------------------------------
ETHERTYPE_IPV4 = 0x0800
IPV4_VERSION_IHL = 0x45
"""Version 4, five-word header, no options (RFC 791 §3.1)."""
IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
IPV4_HEADER_LEN = 20
IPV4_DONT_FRAGMENT = 0x4000
IPPROTO_TCP = 6
TCP_HEAD = struct.Struct("!HHIIBBH")
"""RFC 9293 §3.1 up to the window; the checksum and urgent pointer follow."""
TCP_HEADER_LEN = 20
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
"""TCP flag bits (RFC 9293 §3.1)."""
SEQ_MOD = 1 << 32
CHECKSUM_MOD = 0xFFFF
"""RFC 1071: the ones' complement sum of 16-bit words is congruent to the number mod 2^16 - 1."""

# TCP options as Linux lays them out (RFC 9293 §3.2, RFC 7323, RFC 2018).
OPT_TIMESTAMPS_HEAD = b"\x01\x01\x08\x0a"
"""NOP, NOP, kind 8 length 10: the 12-byte timestamp option of every non-SYN segment."""
TIMESTAMPS_SPACE = 12
SYN_OPTIONS_TS = struct.Struct("!BBHBBBBII")
"""MSS, SACK-permitted, timestamps (then NOP, window scale appended)."""
SYN_OPTIONS_NO_TS = struct.Struct("!BBHBBBB")
"""MSS, NOP, NOP, SACK-permitted (then NOP, window scale appended)."""
OPT_MSS, OPT_SACK_PERMITTED, OPT_TIMESTAMPS = 2, 4, 8
WINDOW_SCALE_OPTION = b"\x01\x03\x03\x07"
"""NOP, window scale 7."""
WINDOW_SCALE = 7

ENDPOINT_MSS = 1460
"""Ethernet MTU 1500 minus 40 bytes of IPv4 and TCP headers."""
CLAMPED_MSS = 1380
"""What the firewall rewrites the SYN MSS to (PIX/ASA `sysopt connection tcpmss` default)."""
SYN_WINDOW = 64240
"""Linux's initial receive window for a 1460-byte MSS."""
INITIAL_WINDOW = 10
"""Initial congestion window in segments (RFC 6928): every write must fit in it."""
DELAYED_ACK_US = 40_000
"""Linux TCP_DELACK_MIN."""
ACK_TURNAROUND_US = 6
SYNACK_TURNAROUND_US = 30
WIRE_US_PER_BYTE = 0.008
"""Serialization at 1 Gbit/s."""
GRO_WINDOW_US = 40
"""Client segments arriving closer than this are merged by the server's NIC (two at most)."""
ENDPOINT_TTL = 64
FORGED_TTL = 255
"""TTL of the RSTs the firewall makes up."""

# --- Topology -----------------------------------------------------------------------------------
CLIENT_IP = "198.51.100.25"
CLIENT_MAC = bytes.fromhex("525400a1b2c3")
SERVER_PUBLIC_IP = "203.0.113.10"
"""The receiving MTA's public address (static NAT on the firewall)."""
SERVER_IP = "192.0.2.25"
SERVER_MAC = bytes.fromhex("5254005e0025")
NAT_CLIENT_IP = "192.0.2.254"
"""The firewall's inside address: the client is PATed to it."""
FW_OUTSIDE_MAC = bytes.fromhex("001ef78a1001")
FW_INSIDE_MAC = bytes.fromhex("001ef78a1002")
SMTP_PORT = 25
CLIENT_PORTS = (32768, 60999)
"""Linux's default ephemeral port range (net.ipv4.ip_local_port_range)."""
NAT_PORTS = (1024, 65535)
"""PAT picks any port above the well-known range."""
OUTSIDE_LINK_US = (1150, 1450)
"""One-way delay between the client and the firewall, drawn per connection and direction."""
FIREWALL_US = (420, 520)
INSIDE_LINK_US = (80, 110)
JITTER_US = 25
"""Each packet adds up to this much to its connection's delay."""

EPOCH_US = 1_710_237_600_000_000
"""2024-03-12 10:00:00 UTC on the client-side clock: the first SYN is at most `spread` later."""
LOCAL_TZ = timezone(timedelta(hours=1))
CLIENT_NAME = "mail.example.org"
SENDER_DOMAIN = "example.org"
RECIPIENT_DOMAIN = "example.net"
SENDERS = 240
RECIPIENTS = 3000

# --- Session timing (server under the load of thousands of concurrent deliveries) ---------------
BANNER_MS = (50, 1500)
"""Server think time before its greeting (DNS lookups, postscreen under load)."""
QUEUED_MS = (1000, 6000)
"""Content filter time before `250 ... queued as`."""
RCPT_MS = (5, 60)
"""Recipient verification before the pipelined MAIL/RCPT/DATA replies."""
BODY_BYTES = (1200, 11000)
"""Message body size range (log-uniform); with headers a message stays under 13 KB, so each
write fits the initial congestion window."""
SECOND_MESSAGE_SHARE = 0.3
NEWSLETTER_SENDER = "news@example.org"
NEWSLETTER_SUBJECT = "Example Org newsletter, March 2024"


class Tampering(enum.StrEnum):
    """What the firewall does to a tampered session (DOMAIN.md §1)."""

    EHLO_STARTTLS_MASKED = "ehlo_starttls_masked"
    """Unknown EHLO reply keywords masked (`STARTTLS` -> `XXXXXXXA`): the client never tries TLS."""
    STARTTLS_COMMAND_MASKED = "starttls_command_masked"
    """`STARTTLS` -> `XXXXXXXX` on its way in, the server answers 500, the client falls back."""
    DKIM_RESET = "dkim_reset"
    """The segment after the DKIM-Signature header is dropped; RSTs (TTL 255) to both ends."""
    BANNER_MASKED = "banner_masked"
    """Every banner byte but '2', '0' and space becomes '*' (PIX 5.1+)."""


TAMPERING_MIX: tuple[tuple[Tampering, ...], ...] = (
    (Tampering.EHLO_STARTTLS_MASKED,),
    (Tampering.STARTTLS_COMMAND_MASKED,),
    (Tampering.DKIM_RESET,),
    (Tampering.BANNER_MASKED,),
    (Tampering.BANNER_MASKED, Tampering.EHLO_STARTTLS_MASKED),
)
"""Tampered sessions cycle through these (in a shuffled order of sessions)."""

CLIENT, SERVER = 0, 1
"""Index of a peer; the other one is 1 - peer."""


@dataclass(frozen=True, slots=True)
class Options:
    """Everything the output depends on."""

    sessions: int = 5000
    tampered: float = 0.01
    seed: int = 1
    timestamps: bool = True
    clock_offset_s: float = 93.2
    """Server-side capture clock minus client-side capture clock."""
    spread_s: float = 2.0
    """All sessions start within this many seconds."""
    tls_share: float = 0.5
    """Share of (untampered) deliveries that use STARTTLS when offered."""
    bulk: bool = False
    """A newsletter run: every session delivers the same body and subject from the same sender
    to one recipient (Message-IDs still differ), so sizes collide across sessions."""
    same_message: bool = False
    """With `bulk`: one message relayed in every session, as a list server's post is: the same
    Message-ID, bytes, envelope and server replies everywhere (no queue ids), and no STARTTLS,
    so only timing, ports, sequence numbers and IP-IDs differ between sessions."""

    @property
    def segment_payload(self) -> int:
        """Payload of a full segment: the clamped MSS less the timestamp option, if any."""
        return CLAMPED_MSS - (TIMESTAMPS_SPACE if self.timestamps else 0)


# --- Content ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One application write, or the close (`sent` empty, `close` True)."""

    sender: int
    sent: bytes
    think_us: int
    delivered: bytes | None = None
    """What the other side receives instead (same length); None: unchanged."""
    breaks: tuple[int, ...] = ()
    """Offsets in `sent` where a new segment starts whatever the MSS."""
    drop_from: int | None = None
    """Offset in `sent` from which the firewall drops the segment and resets the connection."""
    close: bool = False


@dataclass(slots=True)
class SessionPlan:
    index: int
    start_us: int
    client_port: int
    nat_port: int
    tls: bool
    """True when the client delivers under TLS."""
    tampering: tuple[Tampering, ...]
    tls_established: bool = False
    """True when TLS actually started."""
    steps: list[Step] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)


_SENTENCES = (
    "Please find below the figures we discussed in yesterday's call.",
    "The shipment left our warehouse this morning and should arrive on Thursday.",
    "Could you confirm the delivery address before we print the labels?",
    "Revenue for the quarter is up 4.2% compared to the same period last year.",
    "The maintenance window for the relays is confirmed for Saturday 06:00-08:00 CET.",
    "During the window inbound mail will be queued upstream and delivered afterwards.",
    "We have updated the contract draft with the changes from your legal team.",
    "The invoice is attached; payment terms are thirty days net as agreed.",
    "Let me know if the new schedule works for your team.",
    "I have copied the project lead so that she can follow up on the open items.",
    "Tickets 4711 and 4712 were closed after the customer confirmed the fix.",
    "The backup job finished with warnings; details are in the log excerpt below.",
    "Our office will be closed on Monday for the public holiday.",
    "Thank you for your order; the tracking number follows in a separate message.",
    "The test environment will be reset tonight, please save your work.",
    "Attendance for the workshop is limited to twelve people per session.",
    "The figures in the second table are still provisional.",
    "We would appreciate your feedback on the proposal by the end of the month.",
)
_SENTENCES_8BIT = (
    "Vielen Dank für Ihre Anfrage; das Angebot erhalten Sie bis Donnerstag.",
    "Für Rückfragen stehe ich Ihnen gern zur Verfügung.",
    "Merci de votre réponse rapide, nous revenons vers vous très bientôt.",
)
_FIRST_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "zoe",
)  # fmt: skip


_ITEMS = (
    "Widget type 4 (blue)", "Cable 2 m", "Service hours", "Licence renewal", "Toner black",
    "Shipping", "Support plan Q2", "Rack shelf 1U", "SSD 1 TB", "Consulting day",
)  # fmt: skip


def _address(rng_index: int, domain: str) -> str:
    name = _FIRST_NAMES[rng_index % len(_FIRST_NAMES)]
    return f"{name}.{rng_index // len(_FIRST_NAMES) + 1}@{domain}"


def _wrap(text: str, width: int = 72) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines


@dataclass(frozen=True, slots=True)
class _TextPool:
    """Paragraphs and table rows drawn once, so that a body is a few `choices` calls."""

    paragraphs: tuple[str, ...]
    paragraphs_8bit: tuple[str, ...]
    rows: tuple[str, ...]


@functools.cache
def _text_pool() -> _TextPool:
    rng = random.Random("pairs:text")

    def paragraph(extra: tuple[str, ...]) -> str:
        picks = [rng.choice(_SENTENCES) for _ in range(rng.randint(2, 5))]
        picks += [rng.choice(extra)] if extra else []
        return "\n".join(_wrap(" ".join(picks)))

    return _TextPool(
        tuple(paragraph(()) for _ in range(512)),
        tuple(paragraph(_SENTENCES_8BIT) for _ in range(64)),
        tuple(
            f"INV-{rng.randint(10000, 99999)}  2024-03-{rng.randint(1, 28):02d}  "
            f"{rng.choice(_ITEMS):<22}{rng.randint(1, 99):3d} x "
            f"{rng.randint(100, 99999) / 100:8.2f}  {rng.randint(100, 999999) / 100:10.2f}"
            for _ in range(4096)
        ),
    )


def _body(rng: random.Random, target: int) -> str:
    """A plain-text business mail of about `target` bytes: paragraphs, then a table if long."""
    pool = _text_pool()
    source = pool.paragraphs_8bit if rng.random() < 0.1 else pool.paragraphs
    parts = ["Hello,\n"]
    size = 10
    while size < target * 0.6 and (size < 1500 or rng.random() < 0.5):
        text = rng.choice(source)
        parts.append(text + "\n")
        size += len(text) + 4
    if size < target - 40:
        row = len(pool.rows[0]) + 2
        parts.append("invoice    date        item                  qty   unit price       total")
        parts.append("\n".join(rng.choices(pool.rows, k=max(1, (target - size) // row))) + "\n")
    parts.append("Kind regards,\n-- \nExample Org, Accounts")
    return "\n".join(parts) + "\n"


def _think(rng: random.Random, lo_ms: float, hi_ms: float) -> int:
    """A think time in µs, uniform in [lo_ms, hi_ms]."""
    lo = round(lo_ms * 1000)
    return lo + int(rng.random() * (round(hi_ms * 1000) - lo + 1))


class _Dialogue:
    """Scripts one session (Postfix client to Postfix server) into `Step`s."""

    def __init__(
        self,
        plan: SessionPlan,
        rng: random.Random,
        used_ids: set[str],
        newsletter: str | None = None,
        shared: dict[str, bytes] | None = None,
    ) -> None:
        self.plan = plan
        self.rng = rng
        self.used_ids = used_ids
        self.newsletter = newsletter
        """The body every message carries in a bulk run."""
        self.shared = shared
        """With `Options.same_message`: the one message and queue id every session relays."""
        self.tls = False

    def _seal(self, data: bytes) -> bytes:
        return encrypted(self.rng, len(data)) if self.tls else data

    def add(
        self,
        sender: int,
        data: bytes,
        think_us: int,
        *,
        delivered: bytes | None = None,
        breaks: tuple[int, ...] = (),
        drop_from: int | None = None,
    ) -> None:
        if self.tls and (delivered is not None or drop_from is not None):
            raise ValueError("nothing rewrites inside TLS")
        self.plan.steps.append(
            Step(sender, self._seal(data), think_us, delivered, breaks, drop_from)
        )

    def reply(self, template: str, **values: str) -> bytes:
        return POSTFIX.reply(template, **values)

    def message(self, envelope: Envelope) -> bytes:
        if self.shared is not None:
            if "message" not in self.shared:
                self.shared["message"] = self._render(envelope, random.Random("pairs:shared"))
            self.plan.message_ids.append(self.shared["message_id"].decode())
            return self.shared["message"]
        return self._render(envelope, self.rng)

    def _render(self, envelope: Envelope, rng: random.Random) -> bytes:
        while True:
            queue_id = postfix_queue_id(rng)
            stamp = datetime.fromtimestamp(self.plan.start_us // 1_000_000, tz=UTC)
            message_id = f"<{stamp:%Y%m%d%H%M%S}.{queue_id}@{CLIENT_NAME}>"
            if message_id not in self.used_ids:
                break
        self.used_ids.add(message_id)
        if self.shared is not None:
            self.shared["message_id"] = message_id.encode()
        else:
            self.plan.message_ids.append(message_id)
        date = format_datetime(datetime.fromtimestamp(self.plan.start_us // 1_000_000, tz=LOCAL_TZ))
        lo, hi = BODY_BYTES
        target = round(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        subject = rng.choice(_SENTENCES).rstrip(".?")[:60]
        body = _body(rng, target) if self.newsletter is None else self.newsletter
        if self.newsletter is not None:
            subject = NEWSLETTER_SUBJECT
        return render_message(
            Message(
                from_=f"{envelope.mail_from.split('.')[0].capitalize()} <{envelope.mail_from}>",
                to=", ".join(f"<{r}>" for r in envelope.rcpt_to),
                subject=subject,
                date=date,
                message_id=message_id,
                body=body,
                signature=Signature.DKIM,
                received=f"by {CLIENT_NAME} (Postfix, from userid 1000)\r\n\tid {queue_id}; "
                f"{date} (CET)",
            ),
            rng,
            timestamp=self.plan.start_us // 1_000_000,
        )

    def build(self, messages: int) -> None:
        rng = self.rng
        kinds = self.plan.tampering
        banner = POSTFIX.banner()
        self.add(
            SERVER,
            banner,
            _think(rng, *BANNER_MS),
            delivered=mask_banner(banner) if Tampering.BANNER_MASKED in kinds else None,
        )
        self.add(CLIENT, f"EHLO {CLIENT_NAME}\r\n".encode(), _think(rng, 0.15, 0.4))
        reply = POSTFIX.ehlo_reply()
        shown = mask_ehlo_keywords(reply) if Tampering.EHLO_STARTTLS_MASKED in kinds else reply
        self.add(SERVER, reply, _think(rng, 0.1, 0.3), delivered=shown if shown != reply else None)
        seen = ehlo_keywords_of(shown)
        if Tampering.STARTTLS_COMMAND_MASKED in kinds:
            command = b"STARTTLS\r\n"
            self.add(CLIENT, command, _think(rng, 0.1, 0.3), delivered=mask_command(command))
            self.add(SERVER, self.reply(POSTFIX.unrecognized), _think(rng, 0.2, 0.6))
        elif self.plan.tls and "STARTTLS" in seen:
            self.starttls()
            self.add(CLIENT, f"EHLO {CLIENT_NAME}\r\n".encode(), _think(rng, 0.1, 0.3))
            after = tuple(k for k in POSTFIX.ehlo_keywords if k != "STARTTLS")
            self.add(SERVER, POSTFIX.ehlo_reply(after), _think(rng, 0.1, 0.3))
            seen = ehlo_keywords_of(POSTFIX.ehlo_reply(after))
        for n in range(messages):
            if self.newsletter is not None:
                sender = NEWSLETTER_SENDER
                rcpts: tuple[str, ...] = (
                    _address(0 if self.shared is not None else self.plan.index, RECIPIENT_DOMAIN),
                )
            else:
                sender = _address(rng.randrange(SENDERS), SENDER_DOMAIN)
                rcpts = tuple(
                    dict.fromkeys(
                        _address(rng.randrange(RECIPIENTS), RECIPIENT_DOMAIN)
                        for _ in range(rng.choice((1, 1, 1, 2, 3)))
                    )
                )
            envelope = Envelope(sender, rcpts)
            message = self.message(envelope)
            reset = n == 0 and Tampering.DKIM_RESET in kinds
            self.deliver(seen, envelope, message, reset=reset)
            if reset:
                return
        self.quit()

    def starttls(self) -> None:
        """STARTTLS, 220 and a TLS 1.3 handshake, as the sample captures have it."""
        rng = self.rng
        self.add(CLIENT, b"STARTTLS\r\n", _think(rng, 0.1, 0.3))
        self.add(SERVER, self.reply(POSTFIX.starttls_ready), _think(rng, 0.1, 0.3))
        hello, session_id = client_hello(rng, POSTFIX.hostname)
        self.add(CLIENT, hello, _think(rng, 0.4, 1.2))
        flight = (
            server_hello(rng, session_id)
            + change_cipher_spec()
            + encrypted(rng, 10)
            + encrypted(rng, 2590)
            + encrypted(rng, 264)
            + encrypted(rng, 52)
        )
        self.add(SERVER, flight, _think(rng, 1.0, 2.6))
        self.add(CLIENT, change_cipher_spec() + encrypted(rng, 52), _think(rng, 0.5, 1.4))
        self.add(SERVER, encrypted(rng, 233) + encrypted(rng, 233), _think(rng, 0.1, 0.3))
        self.tls = True
        self.plan.tls_established = True

    def deliver(
        self, seen: Sequence[str], envelope: Envelope, message: bytes, *, reset: bool
    ) -> None:
        rng = self.rng
        eight_bit = not message.isascii()
        commands = (
            mail_command(envelope, seen, len(message), eight_bit)
            + b"".join(rcpt_commands(envelope, seen))
            + b"DATA\r\n"
        )
        replies = (
            self.reply(POSTFIX.mail_ok)
            + b"".join(self.reply(POSTFIX.rcpt_ok) for _ in envelope.rcpt_to)
            + self.reply(POSTFIX.data_go)
        )
        self.add(CLIENT, commands, _think(rng, 0.1, 0.4))
        self.add(SERVER, replies, _think(rng, *RCPT_MS))
        payload = data_payload(message)
        if reset:
            # The signer's header goes out first; the firewall passes it and resets on the next.
            cut = header_end(payload, b"DKIM-Signature")
            self.add(CLIENT, payload, _think(rng, 0.2, 0.6), breaks=(cut,), drop_from=cut)
            return
        self.add(CLIENT, payload, _think(rng, 0.2, 0.6))
        queue_id = "4FJ2Q1Z3KXL9" if self.shared is not None else postfix_queue_id(rng)
        queued = self.reply(POSTFIX.queued, queue_id=queue_id)
        self.add(SERVER, queued, _think(rng, *QUEUED_MS))

    def quit(self) -> None:
        rng = self.rng
        self.add(CLIENT, b"QUIT\r\n", _think(rng, 0.1, 0.3))
        bye = self.reply(POSTFIX.bye)
        if not self.tls:
            self.add(SERVER, bye, _think(rng, 0.05, 0.2))
            self.plan.steps.append(Step(SERVER, b"", _think(rng, 0.05, 0.2), close=True))
            return
        # Under TLS both send close_notify; the client closes the socket first.
        self.plan.steps.append(
            Step(SERVER, encrypted(rng, len(bye)) + encrypted(rng, 2), _think(rng, 0.05, 0.2))
        )
        self.plan.steps.append(Step(CLIENT, encrypted(rng, 2), _think(rng, 0.05, 0.15)))
        self.plan.steps.append(Step(CLIENT, b"", _think(rng, 0.02, 0.1), close=True))


def plan_sessions(opts: Options) -> list[SessionPlan]:
    """Every session's start, ports, TLS use, tampering and dialogue."""
    if not 1 <= opts.sessions <= CLIENT_PORTS[1] - CLIENT_PORTS[0] + 1:
        raise ValueError("sessions must be between 1 and the size of the ephemeral port range")
    if not 0.0 <= opts.tampered <= 1.0:
        raise ValueError("tampered must be a fraction between 0 and 1")
    rng = random.Random(f"pairs:{opts.seed}")
    n = opts.sessions
    starts = sorted(EPOCH_US + rng.randrange(max(1, round(opts.spread_s * 1e6))) for _ in range(n))
    client_ports = rng.sample(range(CLIENT_PORTS[0], CLIENT_PORTS[1] + 1), n)
    nat_ports = rng.sample(range(NAT_PORTS[0], NAT_PORTS[1] + 1), n)
    tampered_count = round(n * opts.tampered)
    chosen = rng.sample(range(n), tampered_count)
    tampering: dict[int, tuple[Tampering, ...]] = {
        index: TAMPERING_MIX[k % len(TAMPERING_MIX)] for k, index in enumerate(chosen)
    }
    used_ids: set[str] = set()
    shared: dict[str, bytes] | None = {} if opts.bulk and opts.same_message else None
    newsletter = _body(random.Random(f"pairs:{opts.seed}:newsletter"), 4000) if opts.bulk else None
    plans: list[SessionPlan] = []
    for i in range(n):
        srng = random.Random(f"pairs:{opts.seed}:{i}")
        kinds = tampering.get(i, ())
        if Tampering.DKIM_RESET in kinds:
            tls = False  # the firewall can only see the header in cleartext
        elif Tampering.EHLO_STARTTLS_MASKED in kinds or Tampering.STARTTLS_COMMAND_MASKED in kinds:
            tls = True  # a client that would have used TLS
        else:
            tls = srng.random() < opts.tls_share and not opts.same_message
        plan = SessionPlan(i, starts[i], client_ports[i], nat_ports[i], tls, kinds)
        messages = 2 if srng.random() < SECOND_MESSAGE_SHARE and not opts.bulk else 1
        _Dialogue(plan, srng, used_ids, newsletter, shared).build(messages)
        plans.append(plan)
    return plans


# --- The wire -----------------------------------------------------------------------------------


def _psum(data: bytes) -> int:
    """`data`'s ones' complement sum as an integer mod 0xFFFF, zero-padded to even length."""
    value = int.from_bytes(data, "big")
    return (value << 8 if len(data) & 1 else value) % CHECKSUM_MOD


def _complement(total: int) -> int:
    """The checksum field for a sum already taken mod 0xFFFF: its ones' complement, 0x0000 (not
    0xFFFF) when the sum is congruent to zero (RFC 1624 §3)."""
    return (CHECKSUM_MOD - total) % CHECKSUM_MOD


@dataclass(slots=True)
class _Packet:
    """One packet of one connection as its sender emitted it."""

    sender: int
    t_send: int
    flags: int
    offset: int
    """Stream offset of the first payload byte (or of the FIN/RST); -1 for a SYN."""
    payload: bytes = b""
    delivered: bytes = b""
    t_arrive: int | None = None
    """At the other endpoint (None: dropped by the firewall)."""
    forged_to: int | None = None
    """For a RST the firewall made up: the peer it was sent to (it exists only on that side)."""
    ack: int = 0
    """Offset in the receiver's stream acknowledged (set for forged RSTs at creation, for the
    others in `_Connection.finish`)."""
    tsval: int = 0
    tsecr: int = 0
    window: int = 0
    ip_id: int = 0


class _Connection:
    """Plays one session's steps on the wire (times in µs on the client-side clock)."""

    def __init__(self, plan: SessionPlan, opts: Options) -> None:
        self.plan = plan
        self.opts = opts
        self.rng = random.Random(f"pairs:{opts.seed}:{plan.index}:wire")
        rng = self.rng
        self.delay = [
            rng.randint(*OUTSIDE_LINK_US) + rng.randint(*FIREWALL_US) + rng.randint(*INSIDE_LINK_US)
            for _ in (CLIENT, SERVER)
        ]
        """Transit time toward the peer named by the index, before jitter."""
        self.to_firewall = [rng.randint(*OUTSIDE_LINK_US), rng.randint(*INSIDE_LINK_US)]
        """From each endpoint to the firewall."""
        self.last_arrival = [0, 0]
        self.isn = [[rng.getrandbits(32) for _ in range(2)] for _ in (CLIENT, SERVER)]
        """isn[sender][side]: side 0 is outside (client-side capture), 1 inside; unrelated
        across the firewall (ISN randomization)."""
        self.ts_base = [rng.getrandbits(32), rng.getrandbits(32)]
        self.ip_id = [rng.getrandbits(16), rng.getrandbits(16)]
        self.packets: list[_Packet] = []
        self.ready = [0, 0]
        self.snd = [0, 0]
        self.delivered_high = [0, 0]
        """Per sender: the end of what the firewall forwarded of its stream."""
        self.pending_ack: list[int | None] = [None, None]
        """Per peer: when its delayed ACK fires, if data is waiting to be acknowledged."""
        self.full_unacked = [0, 0]
        self.closed = [False, False]
        self.reset_at: int | None = None
        self.end_us = plan.start_us

    def transit(self, sender: int, t: int, size: int) -> int:
        """Arrival time at the other endpoint: FIFO, never closer than serialization time."""
        receiver = 1 - sender
        gap = max(1, round(size * WIRE_US_PER_BYTE))
        arrive = max(
            t + self.delay[receiver] + int(self.rng.random() * JITTER_US),
            self.last_arrival[receiver] + gap,
        )
        self.last_arrival[receiver] = arrive
        return arrive

    def send(
        self, sender: int, t: int, flags: int, payload: bytes = b"", delivered: bytes | None = None
    ) -> _Packet:
        """Emit a packet (firing a due delayed ACK first); it carries an ACK of all received."""
        due = self.pending_ack[sender]
        if due is not None and flags & ACK:
            self.pending_ack[sender] = None
            self.full_unacked[sender] = 0
            if due < t:
                self.deliver(self.send(sender, due, ACK))
        pkt = _Packet(
            sender,
            t,
            flags,
            -1 if flags & SYN else self.snd[sender],
            payload,
            payload if delivered is None else delivered,
        )
        if not flags & SYN:
            self.snd[sender] += len(payload) + (1 if flags & FIN else 0)
        self.packets.append(pkt)
        self.end_us = max(self.end_us, t)
        return pkt

    def deliver(self, pkt: _Packet) -> int | None:
        """The firewall forwards `pkt` (or, after a reset, drops it); returns the arrival time."""
        if self.reset_at is not None and pkt.t_send + self.to_firewall[pkt.sender] >= self.reset_at:
            return None
        pkt.t_arrive = self.transit(pkt.sender, pkt.t_send, len(pkt.payload))
        self.delivered_high[pkt.sender] = max(
            self.delivered_high[pkt.sender],
            pkt.offset + len(pkt.delivered) + (1 if pkt.flags & FIN else 0),
        )
        self.end_us = max(self.end_us, pkt.t_arrive)
        return pkt.t_arrive

    def received(self, receiver: int, t: int, length: int) -> None:
        """Data arrived at `receiver`: ACK every second full segment, else arm the delayed ACK."""
        if length >= self.opts.segment_payload:
            self.full_unacked[receiver] += 1
        if self.full_unacked[receiver] >= 2:
            self.pending_ack[receiver] = None
            self.full_unacked[receiver] = 0
            self.deliver(self.send(receiver, t + ACK_TURNAROUND_US, ACK))
        elif self.pending_ack[receiver] is None:
            self.pending_ack[receiver] = t + DELAYED_ACK_US

    def forge_resets(self, t: int) -> None:
        """The firewall drops the connection: a RST to each end, each as if from the other."""
        self.reset_at = t
        for victim in (CLIENT, SERVER):
            impostor = 1 - victim
            # After whatever the firewall forwarded to the victim before.
            arrive = max(
                t + FIREWALL_US[0] + self.to_firewall[victim], self.last_arrival[victim] + 1
            )
            pkt = _Packet(
                impostor,
                arrive,
                RST | ACK,
                self.delivered_high[impostor],
                forged_to=victim,
                ack=self.delivered_high[victim],
                t_arrive=arrive,
            )
            self.packets.append(pkt)
            self.closed[victim] = True
            self.pending_ack[victim] = None
            self.end_us = max(self.end_us, arrive)

    def run(self) -> None:
        t = self.plan.start_us
        syn = self.send(CLIENT, t, SYN)
        a = self.deliver(syn)
        assert a is not None
        synack = self.send(SERVER, a + SYNACK_TURNAROUND_US, SYN | ACK)
        b = self.deliver(synack)
        assert b is not None
        ack = self.send(CLIENT, b + ACK_TURNAROUND_US, ACK)
        c = self.deliver(ack)
        assert c is not None
        self.ready = [ack.t_send, c]
        seg = self.opts.segment_payload
        for step in self.plan.steps:
            if self.reset_at is not None:
                break
            x, y = step.sender, 1 - step.sender
            t = self.ready[x] + step.think_us
            if step.close:
                self.close(x, t)
                return
            points = split_points(len(step.sent), seg, step.breaks)
            if len(points) - 1 > INITIAL_WINDOW:
                raise ValueError("a write must fit in the initial congestion window")
            rewritten = step.delivered
            last_arrival = self.ready[y]
            for k in range(len(points) - 1):
                lo, hi = points[k], points[k + 1]
                last = k == len(points) - 2
                piece = step.sent[lo:hi]
                pkt = self.send(
                    x,
                    t,
                    ACK | (PSH if last else 0),
                    piece,
                    piece if rewritten is None else rewritten[lo:hi],
                )
                if step.drop_from is not None and hi > step.drop_from and self.reset_at is None:
                    self.forge_resets(t + self.to_firewall[x])
                arrive = self.deliver(pkt)
                if arrive is not None and not self.closed[y]:
                    self.received(y, arrive, hi - lo)
                    last_arrival = max(last_arrival, arrive)
                if not last:
                    t += max(1, round((hi - lo) * WIRE_US_PER_BYTE)) + 1
            self.ready[x] = t
            self.ready[y] = last_arrival
        self.flush()

    def close(self, closer: int, t: int) -> None:
        """FIN from `closer`, FIN+ACK back, final ACK."""
        other = 1 - closer
        fin = self.send(closer, t, FIN | ACK)
        a = self.deliver(fin)
        assert a is not None
        reply = self.send(other, a + self.rng.randint(80, 300), FIN | ACK)
        b = self.deliver(reply)
        assert b is not None
        last = self.send(closer, b + ACK_TURNAROUND_US, ACK)
        self.deliver(last)

    def flush(self) -> None:
        for peer in (CLIENT, SERVER):
            due = self.pending_ack[peer]
            if due is not None and not self.closed[peer]:
                self.pending_ack[peer] = None
                self.deliver(self.send(peer, due, ACK))

    def finish(self) -> None:
        """Second pass in time order: ACK numbers, timestamps, windows and IP-IDs; a pure ACK
        that acknowledges nothing new (a delayed ACK overtaken by a quick one) is not sent.
        At equal times a packet arrives before the receiver sends (captures list it first)."""
        events: list[tuple[int, int, int]] = []
        for i, p in enumerate(self.packets):
            if p.forged_to is None:
                events.append((p.t_send, 1, i))
                if p.t_arrive is not None:
                    events.append((p.t_arrive, 0, i))
        events.sort()
        rcv = [-1, -1]
        """Next offset expected from the peer; -1 before its SYN."""
        received = [0, 0]
        ts_recent = [0, 0]
        acked = [-2, -2]
        packets = self.packets
        redundant: set[int] = set()
        for t, kind, i in events:
            p = packets[i]
            me = p.sender if kind else 1 - p.sender
            if kind:
                if p.flags == ACK and not p.payload and rcv[me] == acked[me]:
                    redundant.add(i)
                    continue
                acked[me] = rcv[me]
                p.ack = rcv[me]
                p.tsecr = ts_recent[me]
                p.tsval = (self.ts_base[me] + t // 1000) % SEQ_MOD
                p.window = (
                    SYN_WINDOW
                    if p.flags & SYN
                    else min(0xFFFF, (SYN_WINDOW + min(received[me], 1 << 20)) >> WINDOW_SCALE)
                )
                p.ip_id = self.ip_id[me]
                self.ip_id[me] = (self.ip_id[me] + 1) & 0xFFFF
            elif i not in redundant:
                end = p.offset + len(p.delivered) + (1 if p.flags & (SYN | FIN) else 0)
                rcv[me] = max(rcv[me], end)
                ts_recent[me] = p.tsval
                received[me] += len(p.delivered)
        if redundant:
            self.packets = [p for i, p in enumerate(packets) if i not in redundant]


# --- Encoding -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Template:
    """What never changes for one direction of one connection on one side."""

    ether: bytes
    src: bytes
    dst: bytes
    address_sum: int
    sport: int
    dport: int


def _template(
    src_mac: bytes, dst_mac: bytes, src: str, dst: str, sport: int, dport: int
) -> _Template:
    s, d = bytes(map(int, src.split("."))), bytes(map(int, dst.split(".")))
    return _Template(
        dst_mac + src_mac + struct.pack("!H", ETHERTYPE_IPV4),
        s,
        d,
        _psum(s) + _psum(d),
        sport,
        dport,
    )


Record = tuple[int, int, _Template, int, int, int, int, int, bool, int, bytes, bytes]
"""(ts µs, order, template, flags, seq, ack, window, ttl, don't fragment, IP-ID, options,
payload): one frame of one capture."""


def encode(rec: Record) -> bytes:
    """Ethernet II + IPv4 + TCP with valid IP and TCP checksums."""
    _, _, tpl, flags, seq, ack, window, ttl, df, ip_id, options, payload = rec
    head = TCP_HEAD.pack(
        tpl.sport, tpl.dport, seq, ack, (TCP_HEADER_LEN + len(options)) << 2, flags, window
    )
    tcp_len = TCP_HEADER_LEN + len(options) + len(payload)
    total = (
        tpl.address_sum
        + IPPROTO_TCP
        + tcp_len
        + int.from_bytes(head + options, "big")
        + _psum(payload)
    ) % CHECKSUM_MOD
    tcp_checksum = _complement(total)
    ip_len = IPV4_HEADER_LEN + tcp_len
    frag = IPV4_DONT_FRAGMENT if df else 0
    ip_total = (
        (IPV4_VERSION_IHL << 8)
        + ip_len
        + ip_id
        + frag
        + ((ttl << 8) | IPPROTO_TCP)
        + tpl.address_sum
    ) % CHECKSUM_MOD
    ip = IPV4_HEADER.pack(
        IPV4_VERSION_IHL,
        0,
        ip_len,
        ip_id,
        frag,
        ttl,
        IPPROTO_TCP,
        _complement(ip_total),
        tpl.src,
        tpl.dst,
    )
    return b"".join(
        (tpl.ether, ip, head, tcp_checksum.to_bytes(2, "big"), b"\x00\x00", options, payload)
    )


def _options(opts: Options, pkt: _Packet, mss: int) -> bytes:
    if pkt.forged_to is not None:
        return b""
    if pkt.flags & SYN:
        if opts.timestamps:
            return (
                SYN_OPTIONS_TS.pack(
                    OPT_MSS, 4, mss, OPT_SACK_PERMITTED, 2, OPT_TIMESTAMPS, 10, pkt.tsval, pkt.tsecr
                )
                + WINDOW_SCALE_OPTION
            )
        return (
            SYN_OPTIONS_NO_TS.pack(OPT_MSS, 4, mss, 1, 1, OPT_SACK_PERMITTED, 2)
            + WINDOW_SCALE_OPTION
        )
    if opts.timestamps:
        return OPT_TIMESTAMPS_HEAD + struct.pack("!II", pkt.tsval, pkt.tsecr)
    return b""


class _Sides:
    """Turns connections' packets into the records of both captures."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.records: tuple[list[Record], list[Record]] = ([], [])
        self.order = 0
        self.offset_us = round(opts.clock_offset_s * 1e6)

    def add(self, conn: _Connection) -> None:
        plan = conn.plan
        outside = (
            _template(
                CLIENT_MAC, FW_OUTSIDE_MAC, CLIENT_IP, SERVER_PUBLIC_IP, plan.client_port, SMTP_PORT
            ),
            _template(
                FW_OUTSIDE_MAC, CLIENT_MAC, SERVER_PUBLIC_IP, CLIENT_IP, SMTP_PORT, plan.client_port
            ),
        )
        inside = (
            _template(
                FW_INSIDE_MAC, SERVER_MAC, NAT_CLIENT_IP, SERVER_IP, plan.nat_port, SMTP_PORT
            ),
            _template(
                SERVER_MAC, FW_INSIDE_MAC, SERVER_IP, NAT_CLIENT_IP, SMTP_PORT, plan.nat_port
            ),
        )
        templates = (outside, inside)
        home = (0, 1)
        """The side each peer's own capture is on: client outside (0), server inside (1)."""
        merge_into: int | None = None
        """Index (server-side records) of a full client segment the next one may merge into."""
        last_client: _Packet | None = None
        inside_records = self.records[1]
        for p in conn.packets:
            sender = p.sender
            for side in (0, 1):
                if p.forged_to is not None:
                    if home[p.forged_to] != side or p.t_arrive is None:
                        continue
                    ts, ttl, df, ip_id = p.t_arrive, FORGED_TTL, False, conn.rng.getrandbits(16)
                    payload = b""
                elif home[sender] == side:
                    ts, ttl, df, ip_id, payload = p.t_send, ENDPOINT_TTL, True, p.ip_id, p.payload
                elif p.t_arrive is not None:
                    ts, ttl, df, ip_id = p.t_arrive, ENDPOINT_TTL - 1, True, p.ip_id
                    payload = p.delivered
                else:
                    continue
                receiver = 1 - sender
                seq = (conn.isn[sender][side] + 1 + p.offset) % SEQ_MOD
                ack = (conn.isn[receiver][side] + 1 + p.ack) % SEQ_MOD if p.flags & ACK else 0
                if side == 1:
                    ts += self.offset_us
                    if sender == CLIENT and p.forged_to is None:
                        if self._merge(merge_into, last_client, p, ts, payload):
                            merge_into = None
                            continue
                        full = len(payload) == self.opts.segment_payload
                        plain = not p.flags & (PSH | FIN | RST | SYN)
                        merge_into = len(inside_records) if full and plain else None
                        last_client = p
                own = p.forged_to is None and home[sender] == side
                mss = ENDPOINT_MSS if own else CLAMPED_MSS
                self.order += 1
                self.records[side].append(
                    (
                        ts,
                        # At equal times what the capturing host received comes first.
                        self.order | (1 << 40 if own else 0),
                        templates[side][sender],
                        p.flags,
                        seq,
                        ack,
                        0 if p.forged_to is not None else p.window,
                        ttl,
                        df,
                        ip_id,
                        _options(self.opts, p, mss),
                        payload,
                    )
                )

    def _merge(
        self, index: int | None, previous: _Packet | None, p: _Packet, ts: int, payload: bytes
    ) -> bool:
        """GRO on the server's NIC: append `p` to the full client segment just before it when
        it follows within `GRO_WINDOW_US` with the same ACK and timestamp; True if merged."""
        if index is None or previous is None or not payload or p.flags & (SYN | FIN | RST):
            return False
        records = self.records[1]
        old = records[index]
        if (
            ts - old[0] > GRO_WINDOW_US
            or previous.tsval != p.tsval
            or previous.ack != p.ack
            or previous.offset + len(previous.delivered) != p.offset
        ):
            return False
        ts0, order, tpl, flags, seq, ack, _, ttl, df, ip_id, options, data = old
        records[index] = (
            ts0, order, tpl, flags | p.flags, seq, ack, p.window, ttl, df, ip_id, options,
            data + payload,
        )  # fmt: skip
        return True


def write_pcap(path: Path, records: list[Record]) -> tuple[int, int]:
    """Write records in capture order; returns (frames, bytes written)."""
    records.sort(key=lambda r: (r[0], r[1]))
    pack = PCAP_RECORD_HEADER.pack
    size = 0
    with path.open("wb") as out:
        header = PCAP_FILE_HEADER.pack(
            PCAP_MAGIC_USEC, *PCAP_VERSION, 0, 0, PCAP_SNAPLEN, LINKTYPE_ETHERNET
        )
        out.write(header)
        size += len(header)
        chunk: list[bytes] = []
        for rec in records:
            frame = encode(rec)
            seconds, micros = divmod(rec[0], 1_000_000)
            chunk.append(pack(seconds, micros, len(frame), len(frame)))
            chunk.append(frame)
            if len(chunk) >= 8192:
                data = b"".join(chunk)
                out.write(data)
                size += len(data)
                chunk.clear()
        data = b"".join(chunk)
        out.write(data)
        size += len(data)
    return len(records), size


def stream_indices(records: list[Record]) -> dict[int, int]:
    """tcp.stream of each connection, keyed by its client port, in a capture sorted by time."""
    seen: dict[int, int] = {}
    for rec in records:
        tpl = rec[2]
        port = tpl.sport if tpl.dport == SMTP_PORT else tpl.dport
        if port not in seen:
            seen[port] = len(seen)
    return seen


def _max_concurrent(spans: Sequence[tuple[int, int]]) -> int:
    heap: list[int] = []
    best = 0
    for start, end in sorted(spans):
        while heap and heap[0] <= start:
            heapq.heappop(heap)
        heapq.heappush(heap, end)
        best = max(best, len(heap))
    return best


def generate(outdir: Path, opts: Options) -> dict[str, Any]:
    """Write both captures and `truth.json` into `outdir`; returns the truth document."""
    began = time.perf_counter()
    outdir.mkdir(parents=True, exist_ok=True)
    plans = plan_sessions(opts)
    sides = _Sides(opts)
    spans: list[tuple[int, int]] = []
    for plan in plans:
        conn = _Connection(plan, opts)
        conn.run()
        conn.finish()
        sides.add(conn)
        spans.append((plan.start_us, conn.end_us))
        plan.steps.clear()  # the records hold what is still needed
    client_records, server_records = sides.records
    client_frames, client_bytes = write_pcap(outdir / CLIENT_SIDE, client_records)
    server_frames, server_bytes = write_pcap(outdir / SERVER_SIDE, server_records)
    client_streams = stream_indices(client_records)
    server_streams = stream_indices(server_records)
    sessions: list[dict[str, Any]] = []
    for plan in plans:
        sessions.append(
            {
                "client_stream": client_streams[plan.client_port],
                "server_stream": server_streams[plan.nat_port],
                "client": f"{CLIENT_IP}:{plan.client_port}",
                "server": f"{SERVER_PUBLIC_IP}:{SMTP_PORT}",
                "client_inside": f"{NAT_CLIENT_IP}:{plan.nat_port}",
                "server_inside": f"{SERVER_IP}:{SMTP_PORT}",
                "start_ts": plan.start_us / 1e6,
                "tls": plan.tls_established,
                "message_ids": plan.message_ids,
                "tampering": [str(k) for k in plan.tampering] or None,
            }
        )
    sessions.sort(key=lambda s: int(s["client_stream"]))
    truth: dict[str, Any] = {
        "schema": TRUTH_SCHEMA,
        "generator_version": GENERATOR_VERSION,
        "options": {
            "sessions": opts.sessions,
            "tampered": opts.tampered,
            "seed": opts.seed,
            "timestamps": opts.timestamps,
            "clock_offset_s": opts.clock_offset_s,
            "spread_s": opts.spread_s,
            "tls_share": opts.tls_share,
            "bulk": opts.bulk,
            "same_message": opts.same_message,
        },
        "files": {"client_side": CLIENT_SIDE, "server_side": SERVER_SIDE},
        "stats": {
            "client_frames": client_frames,
            "client_bytes": client_bytes,
            "server_frames": server_frames,
            "server_bytes": server_bytes,
            "messages": sum(len(p.message_ids) for p in plans),
            "tampered_sessions": sum(1 for p in plans if p.tampering),
            "max_concurrent": _max_concurrent(spans),
            "capture_span_s": round((max(e for _, e in spans) - min(s for s, _ in spans)) / 1e6, 3),
            "generate_s": round(time.perf_counter() - began, 3),
        },
        "sessions": sessions,
    }
    (outdir / TRUTH).write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    return truth


DEFAULTS = Options()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--sessions", type=int, default=DEFAULTS.sessions)
    parser.add_argument("--tampered", type=float, default=DEFAULTS.tampered, help="fraction")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--no-timestamps", action="store_true", help="no TCP timestamp option")
    parser.add_argument("--clock-offset", type=float, default=DEFAULTS.clock_offset_s)
    parser.add_argument("--spread", type=float, default=DEFAULTS.spread_s, help="seconds")
    parser.add_argument("--tls-share", type=float, default=DEFAULTS.tls_share)
    parser.add_argument(
        "--bulk", action="store_true", help="a newsletter run: the same message to everyone"
    )
    parser.add_argument(
        "--same-message",
        action="store_true",
        help="with --bulk: one message (one Message-ID, one envelope) relayed in every session",
    )
    args = parser.parse_args(argv)
    opts = Options(
        sessions=args.sessions,
        tampered=args.tampered,
        seed=args.seed,
        timestamps=not args.no_timestamps,
        clock_offset_s=args.clock_offset,
        spread_s=args.spread,
        tls_share=args.tls_share,
        bulk=args.bulk,
        same_message=args.same_message,
    )
    try:
        truth = generate(args.outdir, opts)
    except ValueError as exc:
        parser.error(str(exc))
    print(json.dumps(truth["stats"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
