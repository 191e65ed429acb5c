"""What the endpoints of the sample captures say, and what a firewall makes of it.

A `Dialogue` is the script of one TCP connection: the application writes of each endpoint in
order, each cut into the segments its sender puts on the wire, and for every segment the bytes
the firewall forwarded in its place (or nothing, when the firewall dropped it and reset the
connection). From a dialogue follow the two byte streams each capture must reassemble to.

The module also builds the content: Postfix- and Cisco ESA-style replies, RFC 5322 messages with
DKIM and DomainKeys signatures, well-formed TLS 1.3 records, and the byte edits of PIX/ASA SMTP
inspection (banner masking, EHLO keyword masking, command masking and replacement, keyword
removal by a rewriting middlebox).

It knows nothing about TCP sequence numbers, timing or files: `_tcp` puts dialogues on the wire.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import itertools
import random
import re
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

CRLF = b"\r\n"

HEADER_LINE_LIMIT = 998
"""Longest header line without its CRLF (RFC 5322 §2.1.1); ASA drops above it by default."""

BANNER_KEPT = frozenset(b"20 \r\n")
"""Banner bytes PIX 5.1+ leaves alone; every other byte becomes '*' (DOMAIN.md §1)."""

PIX_KNOWN_EHLO_KEYWORDS = frozenset(
    {"PIPELINING", "SIZE", "VRFY", "ETRN", "AUTH", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN"}
)
"""EHLO keywords PIX/ASA inspection passes unmasked in observed captures (DOMAIN.md §1)."""

# TLS wire facts (RFC 8446).
TLS_CHANGE_CIPHER_SPEC = 20
TLS_ALERT = 21
TLS_HANDSHAKE = 22
TLS_APPLICATION_DATA = 23
"""Record content types, RFC 8446 §5.1."""
TLS_LEGACY_VERSION = 0x0303
"""`legacy_record_version` / `legacy_version` of TLS 1.3 records and hellos (§4.1.2, §5.1)."""
TLS13_VERSION = 0x0304
HANDSHAKE_CLIENT_HELLO = 1
HANDSHAKE_SERVER_HELLO = 2
AEAD_TAG_LEN = 16
"""AES-GCM authentication tag length (RFC 5116 §5.1); every TLS 1.3 record carries one."""
INNER_TYPE_LEN = 1
"""TLSInnerPlaintext content type byte (RFC 8446 §5.2)."""
TLS_RECORD_MAX = 2**14
"""Largest TLSPlaintext fragment (RFC 8446 §5.1)."""


class Peer(enum.StrEnum):
    """The endpoint that writes: the sending MTA (client) or the receiving MTA (server)."""

    CLIENT = "client"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One segment's payload as its sender wrote it and as the firewall forwarded it."""

    sent: bytes
    delivered: bytes | None
    """What the other side received in its place; None: the firewall dropped the segment and
    reset the connection."""


@dataclass(frozen=True, slots=True)
class Write:
    """One application write, already cut into segments."""

    sender: Peer
    chunks: tuple[Chunk, ...]
    think_us: int
    """Delay after everything before it in the dialogue has reached (or left) the sender."""

    @property
    def sent(self) -> bytes:
        return b"".join(c.sent for c in self.chunks)

    @property
    def delivered(self) -> bytes:
        """The forwarded bytes, up to the first dropped segment."""
        out = []
        for c in self.chunks:
            if c.delivered is None:
                break
            out.append(c.delivered)
        return b"".join(out)


@dataclass(frozen=True, slots=True)
class Streams:
    """The two reassembled payload streams of one connection as one capture shows them."""

    client_to_server: bytes
    server_to_client: bytes


@dataclass(frozen=True, slots=True)
class Dialogue:
    """The script of one connection, in the order things happen."""

    writes: tuple[Write, ...]
    closer: Peer | None
    """Who closes first (FIN) after the last write; None when the last write is cut by a reset."""
    close_think_us: int = 200

    def __post_init__(self) -> None:
        dropped = [
            i for i, w in enumerate(self.writes) if any(c.delivered is None for c in w.chunks)
        ]
        if self.closer is None:
            if dropped != [len(self.writes) - 1]:
                raise ValueError("a dialogue without a closer must end with the write that is cut")
        elif dropped:
            raise ValueError("a dialogue with dropped segments must end in a reset")
        for w in self.writes:
            if not w.chunks or any(not c.sent for c in w.chunks):
                raise ValueError("every write needs non-empty segments")
            cut = False
            for c in w.chunks:
                cut = cut or c.delivered is None
                if cut and c.delivered is not None:
                    raise ValueError("after a dropped segment nothing more is forwarded")

    @property
    def reset(self) -> bool:
        return self.closer is None

    def outside(self) -> Streams:
        """What the client-side capture reassembles to."""
        return Streams(
            b"".join(w.sent for w in self.writes if w.sender is Peer.CLIENT),
            b"".join(w.delivered for w in self.writes if w.sender is Peer.SERVER),
        )

    def inside(self) -> Streams:
        """What the server-side capture reassembles to."""
        return Streams(
            b"".join(w.delivered for w in self.writes if w.sender is Peer.CLIENT),
            b"".join(w.sent for w in self.writes if w.sender is Peer.SERVER),
        )


def split_points(length: int, segment_size: int, breaks: Iterable[int] = ()) -> list[int]:
    """Segment boundaries of a write: every `segment_size` bytes, restarting at each break."""
    marks = sorted({b for b in breaks if 0 < b < length} | {0, length})
    points = [0]
    for start, end in itertools.pairwise(marks):
        pos = start
        while end - pos > segment_size:
            pos += segment_size
            points.append(pos)
        points.append(end)
    return points


class Script:
    """Builds a `Dialogue` write by write."""

    def __init__(self, segment_size: int) -> None:
        self._segment_size = segment_size
        self._writes: list[Write] = []

    def write(
        self,
        sender: Peer,
        data: bytes,
        think_us: int,
        *,
        delivered: bytes | None = None,
        breaks: Iterable[int] = (),
        drop_from: int | None = None,
    ) -> None:
        """Add a write; `delivered` replaces it as forwarded (same length unless it fits one
        segment); `drop_from` is an offset in `data`: its segment and all later ones are dropped."""
        points = split_points(len(data), self._segment_size, breaks)
        out = data if delivered is None else delivered
        if len(out) != len(data) and len(points) != 2:
            raise ValueError("a length-changing rewrite must fit one segment")
        chunks = []
        for start, end in itertools.pairwise(points):
            dropped = drop_from is not None and end > drop_from
            if len(out) == len(data):
                piece: bytes | None = out[start:end]
            else:
                piece = out
            chunks.append(Chunk(data[start:end], None if dropped else piece))
        self._writes.append(Write(sender, tuple(chunks), think_us))

    def typed(
        self,
        text: bytes,
        gaps_us: Sequence[int],
        mask: Callable[[bytes], bytes] | None = None,
    ) -> None:
        """A line typed by a person in a character-mode telnet: one segment per key, then CRLF.

        `gaps_us[i]` is the pause before key i (the CRLF is the last key); `mask` is what the
        firewall makes of each one-character segment."""
        keys = [text[i : i + 1] for i in range(len(text))] + [CRLF]
        if len(gaps_us) != len(keys):
            raise ValueError("one gap per key, CRLF included")
        for key, gap in zip(keys, gaps_us, strict=True):
            shown = key if mask is None or key == CRLF else mask(key)
            self._writes.append(Write(Peer.CLIENT, (Chunk(key, shown),), gap))

    def done(self, closer: Peer | None, close_think_us: int = 200) -> Dialogue:
        return Dialogue(tuple(self._writes), closer, close_think_us)


# --- SMTP replies -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerStyle:
    """How one receiving MTA words its replies (templates use str.format)."""

    hostname: str
    banner_text: str
    ehlo_keywords: tuple[str, ...]
    helo_ok: str
    mail_ok: str
    rcpt_ok: str
    data_go: str
    queued: str
    bye: str
    starttls_ready: str
    unrecognized: str
    noop_ok: str

    def banner(self) -> bytes:
        return f"220 {self.banner_text}\r\n".encode()

    def ehlo_reply(self, keywords: Sequence[str] | None = None) -> bytes:
        """`250-host` then one line per keyword, the last with `250 `."""
        lines = [self.hostname, *(self.ehlo_keywords if keywords is None else keywords)]
        return b"".join(
            f"250{' ' if i == len(lines) - 1 else '-'}{line}\r\n".encode()
            for i, line in enumerate(lines)
        )

    def reply(self, template: str, **values: str) -> bytes:
        return (template.format(host=self.hostname, **values) + "\r\n").encode()


POSTFIX_KEYWORDS = (
    "PIPELINING",
    "SIZE 10240000",
    "VRFY",
    "ETRN",
    "STARTTLS",
    "ENHANCEDSTATUSCODES",
    "8BITMIME",
    "DSN",
    "SMTPUTF8",
    "CHUNKING",
)

POSTFIX = ServerStyle(
    hostname="mx.example.net",
    banner_text="mx.example.net ESMTP Postfix",
    ehlo_keywords=POSTFIX_KEYWORDS,
    helo_ok="250 {host}",
    mail_ok="250 2.1.0 Ok",
    rcpt_ok="250 2.1.5 Ok",
    data_go="354 End data with <CR><LF>.<CR><LF>",
    queued="250 2.0.0 Ok: queued as {queue_id}",
    bye="221 2.0.0 Bye",
    starttls_ready="220 2.0.0 Ready to start TLS",
    unrecognized="500 5.5.2 Error: command not recognized",
    noop_ok="250 2.0.0 Ok",
)
"""Postfix 3.7 defaults (`smtpd_banner = $myhostname ESMTP $mail_name`)."""

ESA = ServerStyle(
    hostname="esa.example.com",
    banner_text="esa.example.com ESMTP",
    ehlo_keywords=("8BITMIME", "SIZE 10485760", "STARTTLS"),
    helo_ok="250 {host}",
    mail_ok="250 sender <{addr}> ok",
    rcpt_ok="250 recipient <{addr}> ok",
    data_go="354 go ahead",
    queued="250 ok:  Message {queue_id} accepted",
    bye="221 {host}",
    starttls_ready="220 Go ahead with TLS",
    unrecognized="500 #5.5.1 command not recognized",
    noop_ok="250 ok",
)
"""Cisco ESA (AsyncOS) wording, as quoted in Cisco ESA Q&A 118550."""

_POSTFIX_QUEUE_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxy"


def postfix_queue_id(rng: random.Random) -> str:
    """A Postfix long queue ID (`enable_long_queue_ids`): time part, 'z', inode part."""
    head = "".join(rng.choice(_POSTFIX_QUEUE_ALPHABET) for _ in range(10))
    tail = "".join(rng.choice(_POSTFIX_QUEUE_ALPHABET) for _ in range(4))
    return f"{head}z{tail}"


def ehlo_keywords_of(reply: bytes) -> tuple[str, ...]:
    """Keywords (upper-cased first word) of an EHLO reply, as a client parses them."""
    lines = reply.split(CRLF)[1:]
    return tuple(line[4:].split(b" ")[0].decode().upper() for line in lines if len(line) > 4)


@dataclass(frozen=True, slots=True)
class Envelope:
    mail_from: str
    rcpt_to: tuple[str, ...]


def mail_command(envelope: Envelope, keywords: Sequence[str], size: int, eight_bit: bool) -> bytes:
    """MAIL FROM with the parameters a Postfix client adds for what the server advertised."""
    params = ""
    if "SIZE" in keywords:
        params += f" SIZE={size}"
    if eight_bit and "8BITMIME" in keywords:
        params += " BODY=8BITMIME"
    return f"MAIL FROM:<{envelope.mail_from}>{params}\r\n".encode()


def rcpt_commands(envelope: Envelope, keywords: Sequence[str]) -> list[bytes]:
    orcpt = "DSN" in keywords
    return [
        f"RCPT TO:<{r}>{f' ORCPT=rfc822;{r}' if orcpt else ''}\r\n".encode()
        for r in envelope.rcpt_to
    ]


# --- Messages -----------------------------------------------------------------------------


class Signature(enum.StrEnum):
    """Which signature header the sender prepends to a message."""

    NONE = "none"
    DKIM = "dkim"
    DKIM_UNFOLDED = "dkim_unfolded"
    DOMAINKEY = "domainkey"


@dataclass(frozen=True, slots=True)
class Message:
    from_: str
    to: str
    subject: str
    date: str
    message_id: str
    body: str
    signature: Signature = Signature.NONE
    extra_headers: tuple[tuple[str, str], ...] = ()
    received: str | None = None
    """Value of a Received header the sending MTA prepends, if any."""


def relaxed_body(body: bytes) -> bytes:
    """DKIM relaxed body canonicalization (RFC 6376 §3.4.4)."""
    lines = body.split(CRLF)
    if lines and lines[-1] == b"":
        lines.pop()
    out = [re.sub(rb"[ \t]+", b" ", line).rstrip(b" \t") for line in lines]
    while out and out[-1] == b"":
        out.pop()
    return b"".join(line + CRLF for line in out)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _fold_value(value: str, width: int) -> str:
    """Continuation lines as OpenDKIM writes them: CRLF, TAB, space, then up to `width` chars."""
    return "\r\n\t ".join(value[i : i + width] for i in range(0, len(value), width))


def dkim_signature(
    rng: random.Random,
    *,
    domain: str,
    selector: str,
    timestamp: int,
    body: bytes,
    signed: Sequence[str],
    key_bits: int = 2048,
    folded: bool = True,
) -> str:
    """A DKIM-Signature field (RFC 6376 §3.5) with a real relaxed body hash and a made-up
    `b=` of the key's length; folded the OpenDKIM way, or all on one line."""
    bh = _b64(hashlib.sha256(relaxed_body(body)).digest())
    b = _b64(rng.randbytes(key_bits // 8))
    h = ":".join(signed)
    if not folded:
        return (
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s={selector}; "
            f"t={timestamp}; bh={bh}; h={h}; b={b}"
        )
    return (
        f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain};\r\n"
        f"\ts={selector}; t={timestamp};\r\n"
        f"\tbh={bh};\r\n"
        f"\th={h};\r\n"
        f"\tb={_fold_value(b, 70)}"
    )


def domainkey_signature(
    rng: random.Random, *, domain: str, selector: str, signed: Sequence[str]
) -> str:
    """A DomainKey-Signature field (RFC 4870 §3.3), 1024-bit `b=`, folded."""
    b = _b64(rng.randbytes(128))
    return (
        f"DomainKey-Signature: a=rsa-sha1; c=nofws; q=dns;\r\n"
        f"\ts={selector}; d={domain};\r\n"
        f"\th={':'.join(signed)};\r\n"
        f"\tb={_fold_value(b, 70)}"
    )


OVERSIGNED_EXTRA = (
    "Content-Transfer-Encoding",
    "Reply-To",
    "Cc",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
MESSAGE_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type")


def render_message(message: Message, rng: random.Random, *, timestamp: int) -> bytes:
    """Headers and body with CRLF line ends, the signature header (if any) first."""
    body = message.body.replace("\n", "\r\n").encode()
    headers: list[str] = []
    if message.received is not None:
        headers.append(f"Received: {message.received}")
    headers += [
        f"From: {message.from_}",
        f"To: {message.to}",
        f"Subject: {message.subject}",
        f"Date: {message.date}",
        f"Message-ID: {message.message_id}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Transfer-Encoding: {'7bit' if body.isascii() else '8bit'}",
    ]
    headers += [f"{name}: {value}" for name, value in message.extra_headers]
    domain = message.from_.rsplit("@", 1)[1].rstrip(">")
    signed = (*MESSAGE_HEADERS, *(name for name, _ in message.extra_headers))
    if message.signature is Signature.DKIM:
        headers.insert(
            0,
            dkim_signature(
                rng,
                domain=domain,
                selector="mail2024",
                timestamp=timestamp,
                body=body,
                signed=signed,
            ),
        )
    elif message.signature is Signature.DKIM_UNFOLDED:
        # Bulk senders sign each header twice (and some absent ones) so none can be added.
        oversigned = [name for name in (*signed, *OVERSIGNED_EXTRA) for _ in range(2)]
        headers.insert(
            0,
            dkim_signature(
                rng,
                domain=domain,
                selector="s4096",
                timestamp=timestamp,
                body=body,
                signed=oversigned,
                key_bits=4096,
                folded=False,
            ),
        )
    elif message.signature is Signature.DOMAINKEY:
        headers.insert(
            0, domainkey_signature(rng, domain=domain, selector="mail2007", signed=signed)
        )
    return "\r\n".join(headers).encode() + CRLF + CRLF + body


def data_payload(message: bytes) -> bytes:
    """The DATA stream for a message: dot-stuffed (RFC 5321 §4.5.2), then `.` CRLF."""
    lines = message.split(CRLF)
    if lines[-1] == b"":
        lines.pop()
    stuffed = [b"." + line if line.startswith(b".") else line for line in lines]
    return b"".join(line + CRLF for line in stuffed) + b"." + CRLF


def header_end(payload: bytes, name: bytes) -> int:
    """Offset just after the CRLF ending header `name` (with its continuation lines)."""
    start = 0 if payload.startswith(name + b":") else payload.index(CRLF + name + b":") + 2
    end = payload.index(CRLF, start) + 2
    while payload[end : end + 1] in (b" ", b"\t"):
        end = payload.index(CRLF, end) + 2
    return end


def longest_header_line(payload: bytes) -> tuple[int, int]:
    """(offset, length without CRLF) of the longest physical line of the header block."""
    block = payload[: payload.index(CRLF + CRLF) + 2]
    best = (0, 0)
    pos = 0
    for line in block.split(CRLF)[:-1]:
        if len(line) > best[1]:
            best = (pos, len(line))
        pos += len(line) + 2
    return best


# --- What PIX/ASA inspection and rewriting middleboxes do to the bytes -------------------------


def mask_banner(line: bytes) -> bytes:
    """PIX 5.1+ banner masking: every byte but '2', '0', space, CR, LF becomes '*'."""
    return bytes(b if b in BANNER_KEPT else 0x2A for b in line)


def mask_ehlo_keywords(reply: bytes, known: frozenset[str] = PIX_KNOWN_EHLO_KEYWORDS) -> bytes:
    """Overwrite each keyword the inspection does not know with X's ending in a letter that
    counts up per masked keyword (`STARTTLS` -> `XXXXXXXA`), parameters included; same length."""
    out = []
    letter = ord("A")
    for i, line in enumerate(reply.split(CRLF)):
        keyword = line[4:].split(b" ")[0]
        if i == 0 or len(line) <= 4 or keyword.decode().upper() in known:
            out.append(line)
            continue
        text = line[4:]
        out.append(line[:4] + b"X" * (len(text) - 1) + bytes([letter]))
        letter += 1
    return CRLF.join(out)


def mask_command(line: bytes) -> bytes:
    """A disallowed command's verb overwritten with X's of the same length."""
    verb, sep, rest = line.partition(b" ")
    if not sep:
        verb, rest = line.removesuffix(CRLF), b""
        return b"X" * len(verb) + CRLF
    return b"X" * len(verb) + sep + rest


def mask_segment(payload: bytes) -> bytes:
    """A segment inspected on its own and not a command it knows: every byte but CR/LF -> X."""
    return bytes(b if b in (0x0D, 0x0A) else 0x58 for b in payload)


def replace_verb(line: bytes, verb: bytes) -> bytes:
    """Old PIX: a disallowed command's verb replaced by another of the same length (`NOOP`)."""
    old, _, rest = line.partition(b" ")
    if len(old) != len(verb):
        raise ValueError("the replacement verb must have the same length")
    return verb + b" " + rest


def remove_ehlo_keyword(reply: bytes, keyword: str) -> bytes:
    """A token-removing middlebox: the keyword's line is deleted (the stream gets shorter)."""
    lines = reply.split(CRLF)
    kept = [line for line in lines if line[4:].split(b" ")[0].decode().upper() != keyword]
    if len(kept) == len(lines):
        raise ValueError(f"{keyword} is not in the reply")
    return CRLF.join(kept)


# --- TLS 1.3 records (made-up keys, well-formed framing) ------------------------------------------


def tls_record(content_type: int, fragment: bytes) -> bytes:
    """One TLSPlaintext/TLSCiphertext record (RFC 8446 §5.1)."""
    if len(fragment) > TLS_RECORD_MAX + 256:
        raise ValueError("record too long")
    return struct.pack("!BHH", content_type, TLS_LEGACY_VERSION, len(fragment)) + fragment


def _vec(data: bytes, length_bytes: int) -> bytes:
    return len(data).to_bytes(length_bytes, "big") + data


def _ext(ext_type: int, data: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(data)) + data


def _handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


# Extension and code point numbers from the IANA TLS registries.
_OPENSSL_CIPHERS = (
    0x1302, 0x1303, 0x1301, 0xC02C, 0xC030, 0x009F, 0xCCA9, 0xCCA8, 0xCCAA, 0xC02B, 0xC02F,
    0x009E, 0xC024, 0xC028, 0x006B, 0xC023, 0xC027, 0x0067, 0xC00A, 0xC014, 0x0039, 0xC009,
    0xC013, 0x0033, 0x009D, 0x009C, 0x003D, 0x003C, 0x0035, 0x002F, 0x00FF,
)  # fmt: skip
_SIGNATURE_ALGORITHMS = (
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080A, 0x080B, 0x0804, 0x0805, 0x0806,
    0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602,
)  # fmt: skip
_GROUPS = (0x001D, 0x0017, 0x001E, 0x0019, 0x0018)
_X25519 = 0x001D
_TLS_AES_256_GCM_SHA384 = 0x1302


def client_hello(rng: random.Random, server_name: str) -> tuple[bytes, bytes]:
    """An OpenSSL-like TLS 1.3 ClientHello record; returns (record, legacy_session_id)."""
    session_id = rng.randbytes(32)
    name = server_name.encode()
    extensions = b"".join(
        [
            _ext(0, _vec(b"\x00" + _vec(name, 2), 2)),  # server_name
            _ext(11, _vec(b"\x00\x01\x02", 1)),  # ec_point_formats
            _ext(10, _vec(b"".join(struct.pack("!H", g) for g in _GROUPS), 2)),
            _ext(35, b""),  # session_ticket
            _ext(22, b""),  # encrypt_then_mac
            _ext(23, b""),  # extended_master_secret
            _ext(13, _vec(b"".join(struct.pack("!H", s) for s in _SIGNATURE_ALGORITHMS), 2)),
            _ext(43, _vec(struct.pack("!HH", TLS13_VERSION, TLS_LEGACY_VERSION), 1)),
            _ext(45, _vec(b"\x01", 1)),  # psk_key_exchange_modes: psk_dhe_ke
            _ext(51, _vec(struct.pack("!H", _X25519) + _vec(rng.randbytes(32), 2), 2)),
        ]
    )
    body = (
        struct.pack("!H", TLS_LEGACY_VERSION)
        + rng.randbytes(32)
        + _vec(session_id, 1)
        + _vec(b"".join(struct.pack("!H", c) for c in _OPENSSL_CIPHERS), 2)
        + _vec(b"\x00", 1)
        + _vec(extensions, 2)
    )
    return tls_record(TLS_HANDSHAKE, _handshake(HANDSHAKE_CLIENT_HELLO, body)), session_id


def server_hello(rng: random.Random, session_id: bytes) -> bytes:
    """A TLS 1.3 ServerHello record (x25519, TLS_AES_256_GCM_SHA384)."""
    extensions = _ext(43, struct.pack("!H", TLS13_VERSION)) + _ext(
        51, struct.pack("!H", _X25519) + _vec(rng.randbytes(32), 2)
    )
    body = (
        struct.pack("!H", TLS_LEGACY_VERSION)
        + rng.randbytes(32)
        + _vec(session_id, 1)
        + struct.pack("!HB", _TLS_AES_256_GCM_SHA384, 0)
        + _vec(extensions, 2)
    )
    return tls_record(TLS_HANDSHAKE, _handshake(HANDSHAKE_SERVER_HELLO, body))


def change_cipher_spec() -> bytes:
    """The middlebox-compatibility ChangeCipherSpec record (RFC 8446 §D.4)."""
    return tls_record(TLS_CHANGE_CIPHER_SPEC, b"\x01")


def encrypted(rng: random.Random, inner_len: int) -> bytes:
    """An application_data record hiding `inner_len` bytes of plaintext (random ciphertext)."""
    return tls_record(
        TLS_APPLICATION_DATA, rng.randbytes(inner_len + INNER_TYPE_LEN + AEAD_TAG_LEN)
    )
