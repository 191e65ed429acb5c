"""The emulated PIX/ASA `inspect esmtp` engine: packets in, verdicts out (no sockets, no I/O).

What it does: keeps per-connection state (ISN offsets, SMTP phase of each direction, the bytes
already forwarded) and, per the connection's `Policy`, rewrites SMTP bytes in place without
changing any length — banner masking, EHLO-keyword masking, command masking — shifts sequence
and acknowledgment numbers (SACK blocks too), and tears connections down with forged RSTs
after a DKIM-Signature header or on a header line longer than 998 octets.
What it does not do: read or send packets (see `middlebox.py`), NAT (the kernel's SNAT does),
IPv6, BDAT/CHUNKING (a BDAT chunk is read as command lines), or reassembly across a gap (a
segment that starts beyond the bytes seen so far is forwarded with its numbers shifted but its
bytes untouched, and noted).

How segments are read, like the box it imitates:
- Client commands are inspected per segment, without reassembly: the first word of every
  segment and of every line that starts inside a segment is checked against the allowed verbs.
  One character per segment (interactive telnet) therefore gets every word masked: the server
  sees `XXXX`.
- Server replies and DATA headers are followed as streams. An EHLO keyword split across
  segments is decided on the prefix seen so far: a prefix of no allowed keyword is masked at once;
  the count-up letter lands on the keyword's last byte only if that byte is in a segment not yet
  forwarded when the keyword's end is seen.
- A DKIM-Signature header is complete when the first byte of the next line arrives; the segment
  carrying that byte is delivered, then both ends get an RST.
- A header line reaching 999 octets (CRLF excluded) gets the segment carrying that octet
  dropped and both ends reset (ASA `drop-connection`).
"""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .addresses import SMTP_PORT
from .tcpip import (
    SEQ_MODULUS,
    TCP_ACK,
    TCP_RST,
    TCP_SYN,
    TcpPacket,
    add_seq,
    build_rst,
    parse,
    rewrite,
)

# Cisco ASA "Defaults for ESMTP Inspection" / observed PIX 7.x captures: EHLO keywords kept.
ALLOWED_EHLO_KEYWORDS = frozenset(
    {"PIPELINING", "SIZE", "VRFY", "ETRN", "AUTH", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN"}
)
# PIX/ASA 7.x+ `inspect esmtp` without allow-tls: RFC 821 minimum plus the ESMTP verbs.
ALLOWED_COMMANDS = frozenset(
    {
        "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT",
        "AUTH", "EHLO", "ETRN", "HELP", "SAML", "SEND", "SOML", "VRFY",
    }
)  # fmt: skip
# RFC 5322 §2.1.1: a line is at most 998 characters, CRLF excluded (ASA: header-length gt 998).
MAX_HEADER_LINE = 998
# PIX 5.1+ banner masking keeps these characters and turns every other one into '*'.
BANNER_KEPT = frozenset(b"20 ")
BANNER_MASK = ord("*")
COMMAND_MASK = ord("X")
DKIM_HEADER_NAMES = frozenset({b"dkim-signature", b"domainkey-signature"})
FORGED_TTL = 255
REPLY_CODE_START_DATA = 354  # RFC 5321 §4.2.2
REPLY_CODE_TLS_READY = 220  # RFC 3207 §4
END_OF_DATA = "<end-of-data>"
# Bytes of forwarded history kept per direction, to rewrite retransmissions identically.
HISTORY_LIMIT = 1 << 20
# Longest command or reply line kept whole for parsing (RFC 5321 §4.5.3.1.4-5: 512 octets).
LINE_KEEP = 1024
# Bytes of a header's first line kept to read its field name (RFC 5322 §2.2).
HEADER_NAME_KEEP = 80
CONNECTION_LIMIT = 4096
SEQ_HALF = SEQ_MODULUS // 2
CR, LF, SP, HT = 13, 10, 32, 9


@dataclass(frozen=True, slots=True)
class Policy:
    """What the middlebox does to one client's connections."""

    randomize_isn: bool = False
    """Add a constant per-direction offset to sequence numbers (ASA default)."""
    mask_banner: bool = False
    """Turn the 220 greeting into `*` except `2`, `0` and space (PIX 5.1+)."""
    mask_ehlo_keywords: bool = False
    """Overwrite EHLO keywords not in ALLOWED_EHLO_KEYWORDS with `X…A`, `X…B`, …"""
    mask_commands: bool = False
    """Overwrite client verbs not in ALLOWED_COMMANDS with `X`s (per segment)."""
    reset_after_dkim_header: bool = False
    """Reset both ends right after a DKIM-Signature header crossed (PIX < 7.2(3) bug)."""
    drop_long_header_lines: bool = False
    """Drop the segment and reset both ends on a header line > 998 octets (ASA default)."""

    @property
    def inspects(self) -> bool:
        """True when the policy needs to look at SMTP bytes at all."""
        return (
            self.mask_banner
            or self.mask_ehlo_keywords
            or self.mask_commands
            or self.reset_after_dkim_header
            or self.drop_long_header_lines
        )

    def to_json(self) -> dict[str, bool]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Policy:
        return cls(**{k: bool(v) for k, v in data.items()})


@dataclass(frozen=True, slots=True)
class MiddleboxConfig:
    """Policies keyed by client address, a default, and the seed for ISN offsets."""

    default: Policy = field(default_factory=Policy)
    per_client: dict[str, Policy] = field(default_factory=dict)
    seed: int = 0
    server_port: int = SMTP_PORT

    def policy_for(self, client: str) -> Policy:
        return self.per_client.get(client, self.default)

    def to_json(self) -> dict[str, Any]:
        return {
            "default": self.default.to_json(),
            "per_client": {k: v.to_json() for k, v in self.per_client.items()},
            "seed": self.seed,
            "server_port": self.server_port,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MiddleboxConfig:
        return cls(
            default=Policy.from_json(data.get("default", {})),
            per_client={k: Policy.from_json(v) for k, v in data.get("per_client", {}).items()},
            seed=int(data.get("seed", 0)),
            server_port=int(data.get("server_port", SMTP_PORT)),
        )


class Action(enum.StrEnum):
    ACCEPT = "accept"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one packet."""

    action: Action
    """Forward or drop the packet."""
    packet: bytes | None = None
    """The packet to forward instead of the original (None: forward it unchanged)."""
    inject: tuple[bytes, ...] = ()
    """Packets the middlebox originates after the verdict (forged RSTs)."""
    notes: tuple[dict[str, Any], ...] = ()
    """What was done, for the run's log (JSON-ready)."""


ACCEPT_UNCHANGED = Verdict(Action.ACCEPT)


class _Mode(enum.Enum):
    COMMAND = "command"
    HEADERS = "headers"
    BODY = "body"
    OPAQUE = "opaque"


class _Trigger(enum.Enum):
    NONE = 0
    RESET_AFTER = 1
    DROP_AND_RESET = 2


class _History:
    """Bytes already forwarded in one direction, by stream offset (bounded window)."""

    def __init__(self) -> None:
        self.base = 0
        self.data = bytearray()

    @property
    def end(self) -> int:
        return self.base + len(self.data)

    def append(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > HISTORY_LIMIT:
            cut = len(self.data) - HISTORY_LIMIT
            del self.data[:cut]
            self.base += cut

    def replay(self, offset: int, length: int, original: bytes) -> bytes:
        """Bytes forwarded earlier for [offset, offset+length); the original where forgotten."""
        out = bytearray(original[:length])
        for i in range(length):
            pos = offset + i - self.base
            if 0 <= pos < len(self.data):
                out[i] = self.data[pos]
        return bytes(out)


class _ClientSide:
    """Client-to-server bytes: command masking per segment, DATA header tracking."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.mode = _Mode.COMMAND
        self.line = bytearray()
        self.line_len = 0
        self.long_line_seen = False
        self.in_header = False
        self.header_first_line = False
        self.header_start = bytearray()

    def process(
        self, data: bytes, segment_start: bool, notes: list[dict[str, Any]], verbs: deque[str]
    ) -> tuple[bytes, _Trigger]:
        out = bytearray(data)
        trigger = _Trigger.NONE
        for i, b in enumerate(data):
            if self.mode is _Mode.OPAQUE:
                break
            if self.mode is _Mode.COMMAND:
                if self.policy.mask_commands and ((i == 0 and segment_start) or not self.line):
                    self._mask_verb(data, out, i, notes)
                self._keep(out[i])
                if out[i] == LF:
                    verbs.append(_verb(self.line))
                    self._end_line()
                continue
            if not self.line and self.mode is _Mode.HEADERS and b not in (SP, HT):
                trigger = self._header_complete(notes, trigger)
                if b in (CR, LF):
                    self.mode = _Mode.BODY
                else:
                    self.in_header = True
                    self.header_first_line = True
                    self.header_start.clear()
            if self.header_first_line and len(self.header_start) < HEADER_NAME_KEEP:
                self.header_start.append(b)
            self._keep(b)
            if b not in (CR, LF) and self.line_len > MAX_HEADER_LINE and not self.long_line_seen:
                self.long_line_seen = True
                if self._long_line(notes):
                    return bytes(out), _Trigger.DROP_AND_RESET
            if b == LF:
                if bytes(self.line).rstrip(b"\r\n") == b".":
                    self.mode = _Mode.COMMAND
                    self.in_header = False
                    verbs.append(END_OF_DATA)
                self.header_first_line = False
                self._end_line()
        return bytes(out), trigger

    def _mask_verb(self, data: bytes, out: bytearray, i: int, notes: list[dict[str, Any]]) -> None:
        j = i
        while j < len(data) and data[j] not in (SP, CR, LF):
            j += 1
        token = data[i:j]
        if token and token.decode("latin-1").upper() not in ALLOWED_COMMANDS:
            out[i:j] = bytes([COMMAND_MASK]) * (j - i)
            notes.append(
                {
                    "event": "mask_command",
                    "original": token.decode("latin-1"),
                    "masked": out[i:j].decode("latin-1"),
                }
            )

    def _header_name(self) -> bytes:
        return bytes(self.header_start).split(b":", 1)[0].strip().lower()

    def _header_complete(self, notes: list[dict[str, Any]], trigger: _Trigger) -> _Trigger:
        if not self.in_header:
            return trigger
        self.in_header = False
        name = self._header_name()
        if name in DKIM_HEADER_NAMES and self.policy.reset_after_dkim_header:
            notes.append({"event": "dkim_header_complete", "header": name.decode("latin-1")})
            return _Trigger.RESET_AFTER
        return trigger

    def _long_line(self, notes: list[dict[str, Any]]) -> bool:
        """Note a line over 998 octets; True when the policy drops the connection for it."""
        in_headers = self.mode is _Mode.HEADERS
        drop = in_headers and self.policy.drop_long_header_lines
        notes.append(
            {
                "event": "long_header_line" if in_headers else "long_body_line",
                "header": self._header_name().decode("latin-1") if in_headers else "",
                "action": "drop_and_reset" if drop else "log",
            }
        )
        return drop

    def _keep(self, b: int) -> None:
        if len(self.line) < LINE_KEEP:
            self.line.append(b)
        if b not in (CR, LF):
            self.line_len += 1

    def _end_line(self) -> None:
        self.line.clear()
        self.line_len = 0
        self.long_line_seen = False

    def start_data(self) -> None:
        if self.mode is _Mode.COMMAND:
            self.mode = _Mode.HEADERS
            self.in_header = False


def _verb(line: bytearray) -> str:
    """The first word of a command line, upper-cased."""
    return bytes(line).split(b" ", 1)[0].strip().decode("latin-1").upper()


class _ServerSide:
    """Server-to-client bytes: reply tracking, banner and EHLO-keyword masking."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.mode = _Mode.COMMAND
        self.banner_done = False
        self.reply_kind = ""
        self.reply_verb = ""
        self.line = bytearray()
        self.line_pos = 0
        self.line_index = 0
        self.keyword = bytearray()
        self.keyword_masked: bool | None = None
        self.keyword_done = False
        self.letter = 0

    def process(
        self,
        data: bytes,
        notes: list[dict[str, Any]],
        verbs: deque[str],
        client: _ClientSide,
    ) -> bytes:
        out = bytearray(data)
        n = len(data)
        i = 0
        while i < n:
            if self.mode is _Mode.OPAQUE:
                break
            if self.line_pos == 0 and self.line_index == 0:
                self._start_reply(verbs)
            b = data[i]
            if (
                self.reply_kind == "banner"
                and self.policy.mask_banner
                and self.line_pos >= 4
                and b not in (CR, LF)
                and b not in BANNER_KEPT
            ):
                out[i] = BANNER_MASK
            if (
                self.reply_kind == "ehlo"
                and self.policy.mask_ehlo_keywords
                and self.line_index > 0
                and self.line_pos >= 4
                and not self.keyword_done
            ):
                i = self._keyword(data, out, i, notes)
                continue
            self._advance(b, notes, client)
            i += 1
        return bytes(out)

    def _keyword(self, data: bytes, out: bytearray, i: int, notes: list[dict[str, Any]]) -> int:
        """Handle the keyword bytes of an EHLO line from `i`; return the next index."""
        n = len(data)
        j = i
        while j < n and data[j] not in (SP, CR, LF):
            j += 1
        complete = j < n
        whole = (bytes(self.keyword) + data[i:j]).decode("latin-1").upper()
        if complete:
            masked = whole not in ALLOWED_EHLO_KEYWORDS if whole else False
            if masked and j > i:
                letter = ord("A") + self.letter % 26
                self.letter += 1
                out[i : j - 1] = bytes([COMMAND_MASK]) * (j - 1 - i)
                out[j - 1] = letter
            if masked:
                notes.append(
                    {
                        "event": "mask_ehlo_keyword",
                        "original": whole,
                        "masked": (bytes([COMMAND_MASK]) * len(self.keyword)).decode()
                        + out[i:j].decode("latin-1"),
                    }
                )
            self.keyword_done = True
        else:
            if self.keyword_masked is None:
                self.keyword_masked = not any(k.startswith(whole) for k in ALLOWED_EHLO_KEYWORDS)
            if self.keyword_masked:
                out[i:j] = bytes([COMMAND_MASK]) * (j - i)
        self.keyword += data[i:j]
        if len(self.line) < LINE_KEEP:
            self.line += data[i:j]
        self.line_pos += j - i
        return j

    def _start_reply(self, verbs: deque[str]) -> None:
        self.letter = 0
        if not self.banner_done:
            self.reply_kind = "banner"
            self.reply_verb = ""
            return
        self.reply_verb = verbs.popleft() if verbs else ""
        self.reply_kind = "ehlo" if self.reply_verb == "EHLO" else "other"

    def _advance(self, b: int, notes: list[dict[str, Any]], client: _ClientSide) -> None:
        if len(self.line) < LINE_KEEP:
            self.line.append(b)
        self.line_pos += 1
        if b != LF:
            return
        line = bytes(self.line)
        last = len(line) < 4 or line[3:4] != b"-"
        self.line.clear()
        self.line_pos = 0
        self.line_index += 1
        self.keyword.clear()
        self.keyword_masked = None
        self.keyword_done = False
        if not last:
            return
        self.line_index = 0
        code = int(line[:3]) if line[:3].isdigit() else 0
        if self.reply_kind == "banner":
            self.banner_done = True
        if self.reply_verb == "DATA" and code == REPLY_CODE_START_DATA:
            client.start_data()
        if self.reply_verb == "STARTTLS" and code == REPLY_CODE_TLS_READY:
            self.mode = _Mode.OPAQUE
            client.mode = _Mode.OPAQUE
            notes.append({"event": "tls_started"})


@dataclass(frozen=True, slots=True)
class ConnectionKey:
    """A connection as the middlebox sees it on its client-facing side."""

    client: str
    client_port: int
    server: str
    server_port: int

    def __str__(self) -> str:
        return f"{self.client}:{self.client_port}>{self.server}:{self.server_port}"


class _Connection:
    def __init__(self, key: ConnectionKey, policy: Policy, seed: int) -> None:
        self.key = key
        self.policy = policy
        rng = random.Random(f"{seed}:{key}")
        self.dc = rng.randrange(1, SEQ_MODULUS) if policy.randomize_isn else 0
        self.ds = rng.randrange(1, SEQ_MODULUS) if policy.randomize_isn else 0
        self.c_isn: int | None = None
        self.s_isn: int | None = None
        self.c_next: int | None = None
        self.s_next: int | None = None
        self.c_hist = _History()
        self.s_hist = _History()
        self.client = _ClientSide(policy)
        self.server = _ServerSide(policy)
        self.verbs: deque[str] = deque(maxlen=256)
        self.dead = False


def _later(a: int | None, b: int) -> int:
    """The later of two sequence numbers (b when a is unset)."""
    if a is None:
        return b
    return b if (b - a) % SEQ_MODULUS < SEQ_HALF else a


@dataclass(frozen=True, slots=True)
class _RstSpec:
    """An RST the middlebox forges (addresses as on its client-facing side)."""

    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    ip_id: int
    ttl: int = FORGED_TTL

    def build(self) -> bytes:
        return build_rst(
            src=self.src,
            dst=self.dst,
            sport=self.sport,
            dport=self.dport,
            seq=self.seq,
            ack=self.ack,
            ttl=self.ttl,
            ip_id=self.ip_id,
        )


class Middlebox:
    """The stateful rewriter: feed it every forwarded packet, apply the verdicts in order."""

    def __init__(self, config: MiddleboxConfig) -> None:
        self.config = config
        self.connections: dict[ConnectionKey, _Connection] = {}
        self._ip_id = random.Random(config.seed).randrange(1, 0xFFFF)

    def handle(self, raw: bytes) -> Verdict:
        pkt = parse(raw)
        if pkt is None:
            return ACCEPT_UNCHANGED
        port = self.config.server_port
        if pkt.dport == port:
            key = ConnectionKey(pkt.src, pkt.sport, pkt.dst, pkt.dport)
            from_client = True
        elif pkt.sport == port:
            key = ConnectionKey(pkt.dst, pkt.dport, pkt.src, pkt.sport)
            from_client = False
        else:
            return ACCEPT_UNCHANGED
        conn = self.connections.get(key)
        notes: list[dict[str, Any]] = []
        if conn is None:
            if not (from_client and pkt.has(TCP_SYN) and not pkt.has(TCP_ACK)):
                return ACCEPT_UNCHANGED
            conn = self._open(key, notes)
        if conn.dead:
            return Verdict(Action.DROP, notes=({"event": "drop_after_reset", "conn": str(key)},))
        if from_client:
            return self._from_client(conn, pkt, notes)
        return self._from_server(conn, pkt, notes)

    def _open(self, key: ConnectionKey, notes: list[dict[str, Any]]) -> _Connection:
        if len(self.connections) >= CONNECTION_LIMIT:
            del self.connections[next(iter(self.connections))]
        conn = _Connection(key, self.config.policy_for(key.client), self.config.seed)
        self.connections[key] = conn
        notes.append(
            {
                "event": "connection",
                "conn": str(key),
                "client_isn_offset": conn.dc,
                "server_isn_offset": conn.ds,
                "policy": conn.policy.to_json(),
            }
        )
        return conn

    def _edit(
        self,
        hist: _History,
        isn: int | None,
        pkt: TcpPacket,
        fresh: Callable[[bytes, bool], tuple[bytes, _Trigger]],
        notes: list[dict[str, Any]],
    ) -> tuple[bytes | None, _Trigger]:
        """Rewrite a segment's payload: replay old bytes, run `fresh` on new ones."""
        if not pkt.payload or isn is None:
            return None, _Trigger.NONE
        offset = (pkt.seq - isn - 1) % SEQ_MODULUS
        if offset >= SEQ_HALF:
            return None, _Trigger.NONE
        if offset > hist.end:
            notes.append({"event": "gap_not_inspected", "offset": offset, "expected": hist.end})
            return None, _Trigger.NONE
        seen = min(len(pkt.payload), hist.end - offset)
        old = hist.replay(offset, seen, pkt.payload) if seen > 0 else b""
        new = pkt.payload[max(seen, 0) :]
        trigger = _Trigger.NONE
        if new:
            new, trigger = fresh(new, seen <= 0)
            if trigger is not _Trigger.DROP_AND_RESET:
                hist.append(new)
        payload = old + new
        return (payload if payload != pkt.payload else None), trigger

    def _from_client(
        self, conn: _Connection, pkt: TcpPacket, notes: list[dict[str, Any]]
    ) -> Verdict:
        if pkt.has(TCP_SYN):
            conn.c_isn = pkt.seq
        trigger = _Trigger.NONE
        payload: bytes | None = None
        if conn.policy.inspects:

            def fresh(data: bytes, at_start: bool) -> tuple[bytes, _Trigger]:
                return conn.client.process(data, at_start, notes, conn.verbs)

            payload, trigger = self._edit(conn.c_hist, conn.c_isn, pkt, fresh, notes)
        end = add_seq(pkt.seq, pkt.seq_space)
        if trigger is _Trigger.DROP_AND_RESET:
            conn.c_next = _later(conn.c_next, end)
            return self._reset(conn, notes, delivered=pkt.seq, reason="header_line_too_long")
        if not pkt.has(TCP_RST):
            conn.c_next = _later(conn.c_next, end)
        out = self._shift(pkt, payload, conn.dc, -conn.ds, -conn.ds)
        if trigger is _Trigger.RESET_AFTER:
            reset = self._reset(conn, notes, delivered=end, reason="dkim_header")
            return Verdict(Action.ACCEPT, out, reset.inject, reset.notes)
        return Verdict(Action.ACCEPT, out, notes=tuple(notes))

    def _from_server(
        self, conn: _Connection, pkt: TcpPacket, notes: list[dict[str, Any]]
    ) -> Verdict:
        if pkt.has(TCP_SYN):
            conn.s_isn = pkt.seq
        payload: bytes | None = None
        if conn.policy.inspects:

            def fresh(data: bytes, at_start: bool) -> tuple[bytes, _Trigger]:
                return conn.server.process(data, notes, conn.verbs, conn.client), _Trigger.NONE

            payload, _ = self._edit(conn.s_hist, conn.s_isn, pkt, fresh, notes)
        if not pkt.has(TCP_RST):
            conn.s_next = _later(conn.s_next, add_seq(pkt.seq, pkt.seq_space))
        out = self._shift(pkt, payload, conn.ds, -conn.dc, -conn.dc)
        return Verdict(Action.ACCEPT, out, notes=tuple(notes))

    @staticmethod
    def _shift(
        pkt: TcpPacket, payload: bytes | None, seq_delta: int, ack_delta: int, sack_delta: int
    ) -> bytes | None:
        if payload is None and not seq_delta and not ack_delta:
            return None
        return rewrite(
            pkt,
            seq_delta=seq_delta,
            ack_delta=ack_delta,
            sack_delta=sack_delta % SEQ_MODULUS,
            payload=payload,
        )

    def _next_ip_id(self) -> int:
        self._ip_id = self._ip_id % 0xFFFF + 1
        return self._ip_id

    def _reset(
        self, conn: _Connection, notes: list[dict[str, Any]], *, delivered: int, reason: str
    ) -> Verdict:
        """Forge an RST to each end, as the middlebox (TTL 255, its own IP-ID), and go dead."""
        conn.dead = True
        key = conn.key
        s_next = conn.s_next if conn.s_next is not None else 0
        c_next = conn.c_next if conn.c_next is not None else delivered
        to_client = _RstSpec(
            src=key.server,
            dst=key.client,
            sport=key.server_port,
            dport=key.client_port,
            seq=add_seq(s_next, conn.ds),
            ack=c_next,
            ip_id=self._next_ip_id(),
        )
        to_server = _RstSpec(
            src=key.client,
            dst=key.server,
            sport=key.client_port,
            dport=key.server_port,
            seq=add_seq(delivered, conn.dc),
            ack=s_next,
            ip_id=self._next_ip_id(),
        )
        notes.append(
            {
                "event": "reset",
                "reason": reason,
                "conn": str(key),
                "to_client": asdict(to_client),
                "to_server": asdict(to_server),
            }
        )
        inject = (to_client.build(), to_server.build())
        return Verdict(Action.DROP, inject=inject, notes=tuple(notes))
