"""Regenerates the sample capture pairs under `captures/<scenario>/`.

Each scenario is a pair of captures of the same SMTP sessions seen on both sides of a firewall:
`client-side.pcap` (between the sending MTA and the firewall) and `server-side.pcap` (between
the firewall and the receiving MTA). One function per scenario returns its `Scenario`: the
intended dialogue of every session, from which the bytes each capture must reassemble to follow
(`SessionPlan.client_side` / `server_side`). `build` plays a scenario on the wire; `main` writes
the files and refreshes the session table in `captures/README.md`.

Everything is derived from a fixed seed, so two runs give identical bytes.
Run: `.venv/bin/python captures/generate.py [--out DIR] [--check] [SCENARIO ...]`.
This module does not analyse captures; the content lives in `_dialogues`, the wire in `_tcp`.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

from _dialogues import (
    ESA,
    HEADER_LINE_LIMIT,
    POSTFIX,
    Envelope,
    Message,
    Peer,
    Script,
    ServerStyle,
    Signature,
    Streams,
    change_cipher_spec,
    client_hello,
    data_payload,
    ehlo_keywords_of,
    encrypted,
    header_end,
    longest_header_line,
    mail_command,
    mask_banner,
    mask_command,
    mask_ehlo_keywords,
    mask_segment,
    postfix_queue_id,
    rcpt_commands,
    remove_ehlo_keyword,
    render_message,
    replace_verb,
    server_hello,
)
from _tcp import RST, SEGMENT_PAYLOAD, TOPOLOGY, CapturePair, Connection, FrameInfo, simulate

SEED = 20240312
"""Every random choice (ports, ISNs, delays, keys, ciphertext) derives from this."""

CAPTURES_DIR = Path(__file__).resolve().parent
CLIENT_SIDE = "client-side.pcap"
SERVER_SIDE = "server-side.pcap"

EPOCH_US = 1_710_234_847_218_305
"""2024-03-12 09:14:07.218305 UTC: the first scenario's first SYN (client-side clock)."""
SCENARIO_SPACING_US = 5_400_000_000
"""Each scenario is captured 90 minutes after the previous one."""
LOCAL_TZ = timezone(timedelta(hours=1))
"""The sending MTA writes Date headers in CET."""

CLIENT_NAME = "mail.example.org"
"""The sending MTA's EHLO name."""
SUBMISSION_PORT = 587
"""Message submission (RFC 6409): not covered by the firewall's SMTP inspection."""

# Postfix behind a PIX/ASA, with `smtpd_discard_ehlo_keywords = chunking, smtputf8` so that
# nothing but STARTTLS could be masked.
POSTFIX_TRIMMED = (
    "PIPELINING",
    "SIZE 10240000",
    "VRFY",
    "ETRN",
    "STARTTLS",
    "ENHANCEDSTATUSCODES",
    "8BITMIME",
    "DSN",
)
# A Postfix 2.x without TLS, as it answered behind the PIX of the DKIM-bug years.
POSTFIX_NO_TLS = tuple(k for k in POSTFIX_TRIMMED if k != "STARTTLS")
# What Postfix offers once TLS is up (STARTTLS is no longer listed).
POSTFIX_AFTER_TLS = tuple(k for k in POSTFIX.ehlo_keywords if k != "STARTTLS")


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """One SMTP session of a scenario and what the firewall did to it."""

    label: str
    """`s1`, `s2`, … in SYN order."""
    summary: str
    tampered: bool
    """True when the two captures of this session differ (bytes, or a reset)."""
    connection: Connection

    @property
    def client_side(self) -> Streams:
        """What the client-side capture reassembles to."""
        return self.connection.dialogue.outside()

    @property
    def server_side(self) -> Streams:
        """What the server-side capture reassembles to."""
        return self.connection.dialogue.inside()


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    firewall: str
    sessions: tuple[SessionPlan, ...]


# --- Building blocks ------------------------------------------------------------------------


def _think(rng: random.Random, lo_ms: float, hi_ms: float) -> int:
    return rng.randint(round(lo_ms * 1000), round(hi_ms * 1000))


def _date(start_us: int) -> str:
    return format_datetime(datetime.fromtimestamp(start_us // 1_000_000, tz=LOCAL_TZ))


class _Session:
    """Scripts one SMTP conversation; after STARTTLS every write is sealed in a TLS record."""

    def __init__(self, rng: random.Random, style: ServerStyle, start_us: int) -> None:
        self.rng = rng
        self.style = style
        self.start_us = start_us
        self.script = Script(SEGMENT_PAYLOAD)
        self.tls = False

    def _seal(self, data: bytes) -> bytes:
        return encrypted(self.rng, len(data)) if self.tls else data

    def server(self, data: bytes, think_us: int, *, outside: bytes | None = None) -> None:
        """A server write; `outside` is what the client receives instead."""
        if self.tls and outside is not None:
            raise ValueError("nothing rewrites inside TLS")
        self.script.write(Peer.SERVER, self._seal(data), think_us, delivered=outside)

    def client(
        self,
        data: bytes,
        think_us: int,
        *,
        inside: bytes | None = None,
        breaks: Iterable[int] = (),
        drop_from: int | None = None,
    ) -> None:
        """A client write; `inside` is what the server receives instead."""
        if self.tls and (inside is not None or drop_from is not None):
            raise ValueError("nothing rewrites inside TLS")
        self.script.write(
            Peer.CLIENT,
            self._seal(data),
            think_us,
            delivered=inside,
            breaks=breaks,
            drop_from=drop_from,
        )

    def reply(self, template: str, **values: str) -> bytes:
        return self.style.reply(template, **values)


def _greet(s: _Session, *, mask: Callable[[bytes], bytes] | None = None) -> None:
    banner = s.style.banner()
    # Before greeting, the server looks the client up (reverse DNS, reputation).
    s.server(banner, _think(s.rng, 20, 250), outside=None if mask is None else mask(banner))


def _ehlo(
    s: _Session,
    keywords: Sequence[str] | None = None,
    *,
    rewrite: Callable[[bytes], bytes] | None = None,
    verb_inside: bytes | None = None,
) -> tuple[str, ...]:
    """EHLO and its reply; returns the keywords the client saw. `rewrite` is what the
    firewall makes of the reply; `verb_inside` replaces the verb on its way in (`NOOP`: the
    server answers the NOOP, and the client sees no extensions)."""
    command = f"EHLO {CLIENT_NAME}\r\n".encode()
    inside = None if verb_inside is None else replace_verb(command, verb_inside)
    s.client(command, _think(s.rng, 0.15, 0.4), inside=inside)
    if verb_inside == b"NOOP":
        s.server(s.reply(s.style.noop_ok), _think(s.rng, 0.08, 0.2))
        return ()
    reply = s.style.ehlo_reply(keywords)
    shown = reply if rewrite is None else rewrite(reply)
    s.server(reply, _think(s.rng, 0.1, 0.3), outside=None if shown == reply else shown)
    return ehlo_keywords_of(shown)


def _helo(s: _Session) -> None:
    s.client(f"HELO {CLIENT_NAME}\r\n".encode(), _think(s.rng, 0.15, 0.4))
    s.server(s.reply(s.style.helo_ok), _think(s.rng, 0.1, 0.3))


def _starttls(s: _Session) -> None:
    """STARTTLS, 220, and a TLS 1.3 handshake (ClientHello, ServerHello + encrypted flight,
    client Finished, two session tickets)."""
    rng = s.rng
    s.client(b"STARTTLS\r\n", _think(rng, 0.1, 0.3))
    s.server(s.reply(s.style.starttls_ready), _think(rng, 0.1, 0.3))
    hello, session_id = client_hello(rng, s.style.hostname)
    s.client(hello, _think(rng, 0.4, 1.2))
    flight = (
        server_hello(rng, session_id)
        + change_cipher_spec()
        + encrypted(rng, 10)  # EncryptedExtensions
        + encrypted(rng, 2590)  # Certificate: server and intermediate
        + encrypted(rng, 264)  # CertificateVerify, RSA-2048
        + encrypted(rng, 52)  # Finished, SHA-384
    )
    s.server(flight, _think(rng, 1.0, 2.6))
    s.client(change_cipher_spec() + encrypted(rng, 52), _think(rng, 0.5, 1.4))
    s.server(encrypted(rng, 233) + encrypted(rng, 233), _think(rng, 0.1, 0.3))
    s.tls = True


def _deliver(
    s: _Session,
    seen: Sequence[str],
    envelope: Envelope,
    message: bytes,
    *,
    breaks: Iterable[int] = (),
    drop_from: int | None = None,
) -> None:
    """MAIL, RCPT, DATA (pipelined when the client saw PIPELINING) and the message.

    `breaks` and `drop_from` are offsets in the DATA payload; with `drop_from` the dialogue
    stops there (the firewall resets the connection)."""
    rng = s.rng
    style = s.style
    eight_bit = any(b > 0x7F for b in message)
    mail = mail_command(envelope, seen, len(message), eight_bit)
    rcpts = rcpt_commands(envelope, seen)
    mail_ok = s.reply(style.mail_ok, addr=envelope.mail_from)
    rcpt_oks = [s.reply(style.rcpt_ok, addr=r) for r in envelope.rcpt_to]
    if "PIPELINING" in seen:
        s.client(mail + b"".join(rcpts) + b"DATA\r\n", _think(rng, 0.1, 0.4))
        s.server(mail_ok + b"".join(rcpt_oks) + s.reply(style.data_go), _think(rng, 5, 60))
    else:
        s.client(mail, _think(rng, 0.1, 0.4))
        s.server(mail_ok, _think(rng, 2, 20))
        for rcpt, ok in zip(rcpts, rcpt_oks, strict=True):
            s.client(rcpt, _think(rng, 0.1, 0.3))
            s.server(ok, _think(rng, 5, 60))
        s.client(b"DATA\r\n", _think(rng, 0.1, 0.3))
        s.server(s.reply(style.data_go), _think(rng, 0.1, 0.4))
    payload = data_payload(message)
    s.client(payload, _think(rng, 0.2, 0.6), breaks=breaks, drop_from=drop_from)
    if drop_from is None:
        queue_id = postfix_queue_id(rng) if style is not ESA else str(rng.randint(10**6, 10**7))
        # The content filter runs before the message is accepted.
        s.server(s.reply(style.queued, queue_id=queue_id), _think(rng, 120, 900))


def _quit(s: _Session) -> Peer:
    """QUIT and 221; returns who closes first (with TLS: both send close_notify, client first
    to close the socket)."""
    s.client(b"QUIT\r\n", _think(s.rng, 0.1, 0.3))
    if not s.tls:
        s.server(s.reply(s.style.bye), _think(s.rng, 0.05, 0.2))
        return Peer.SERVER
    bye = s.reply(s.style.bye)
    s.script.write(
        Peer.SERVER, encrypted(s.rng, len(bye)) + encrypted(s.rng, 2), _think(s.rng, 0.05, 0.2)
    )
    s.script.write(Peer.CLIENT, encrypted(s.rng, 2), _think(s.rng, 0.05, 0.15))
    return Peer.CLIENT


_BODIES = (
    "Hi Bob,\n\nattached you will find the figures for the quarter. Revenue is up 4.2%\n"
    "compared to last year; the details are in the second table.\n\n"
    "Could you review the draft before Friday?\n\nThanks,\nAlice\n",
    "Hello team,\n\nthe maintenance window for the mail relays is confirmed for Saturday\n"
    "06:00-08:00 CET. During the window inbound mail will be queued upstream.\n\n"
    "Regards,\nOperations\n",
    "Guten Tag Herr Müller,\n\nvielen Dank für Ihre Anfrage. Das Angebot erhalten Sie bis\n"
    "Donnerstag. Für Rückfragen stehe ich gern zur Verfügung.\n\n"
    "Mit freundlichen Grüßen\nAlice Example\n",
    "Dear customer,\n\nyour order 2024-03-0412 has shipped. Tracking details follow in a\n"
    "separate message.\n\nKind regards,\nExample Shop\n",
)


def _report_body(rng: random.Random, rows: int) -> str:
    """A longer body: a plain-text table, several segments' worth."""
    lines = [
        "Hi Bob,",
        "",
        "here is the weekly relay report.",
        "",
        "date        host                 accepted  deferred  bounced  avg-size",
    ]
    for i in range(rows):
        accepted, deferred = rng.randint(8000, 12000), rng.randint(0, 300)
        bounced, size = rng.randint(0, 90), rng.randint(9000, 60000)
        lines.append(
            f"2024-03-{1 + i % 11:02d}  relay{1 + i % 4}.example.org   {accepted:8d}"
            f"  {deferred:8d}  {bounced:7d}  {size:8d}"
        )
    lines += ["", "-- ", "Relay operations"]
    return "\n".join(lines) + "\n"


def _display_name(address: str) -> str:
    local = address.split("@")[0]
    return {"ops": "Operations", "orders": "Orders"}.get(local, f"{local.capitalize()} Example")


def _message(
    s: _Session,
    envelope: Envelope,
    subject: str,
    body: str,
    *,
    signature: Signature = Signature.NONE,
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    rng = s.rng
    queue_id = postfix_queue_id(rng)
    date = _date(s.start_us)
    stamp = datetime.fromtimestamp(s.start_us // 1_000_000, tz=UTC)
    message = Message(
        from_=f"Alice Example <{envelope.mail_from}>",
        to=", ".join(f"{_display_name(r)} <{r}>" for r in envelope.rcpt_to),
        subject=subject,
        date=date,
        message_id=f"<{stamp:%Y%m%d%H%M%S}.{queue_id}@{CLIENT_NAME}>",
        body=body,
        signature=signature,
        extra_headers=extra_headers,
        received=f"by {CLIENT_NAME} (Postfix, from userid 1000)\r\n\tid {queue_id}; {date} (CET)",
    )
    return render_message(message, rng, timestamp=s.start_us // 1_000_000)


class _Plan:
    """Collects the sessions of a scenario: staggered starts, distinct ports."""

    def __init__(self, name: str, index: int) -> None:
        self.name = name
        self.rng = random.Random(f"{SEED}:{name}")
        self.clock = EPOCH_US + index * SCENARIO_SPACING_US + self.rng.randint(0, 999_999)
        self.sessions: list[SessionPlan] = []
        self._ports: set[int] = set()
        self._started = False

    def session(self, style: ServerStyle, gap_ms: tuple[float, float] = (40, 250)) -> _Session:
        if self._started:
            self.clock += _think(self.rng, *gap_ms)
        self._started = True
        return _Session(self.rng, style, self.clock)

    def _port(self, lo: int, hi: int) -> int:
        while True:
            port = self.rng.randint(lo, hi)
            if port not in self._ports:
                self._ports.add(port)
                return port

    def add(
        self,
        s: _Session,
        closer: Peer | None,
        summary: str,
        *,
        tampered: bool,
        server_port: int = 25,
        close_think_us: int = 200,
    ) -> None:
        dialogue = s.script.done(closer, close_think_us)
        connection = Connection(
            dialogue=dialogue,
            start_us=s.start_us,
            client_port=self._port(40000, 49999),
            nat_port=self._port(61000, 64999),
            server_port=server_port,
        )
        label = f"s{len(self.sessions) + 1}"
        self.sessions.append(SessionPlan(label, summary, tampered, connection))

    def scenario(self, title: str, firewall: str) -> Scenario:
        return Scenario(self.name, title, firewall, tuple(self.sessions))


ALICE = "alice@example.org"


def _env(*rcpts: str, sender: str = ALICE) -> Envelope:
    return Envelope(sender, tuple(rcpts))


def _tls_mail(
    s: _Session,
    envelope: Envelope,
    subject: str,
    body: str,
    *,
    signature: Signature = Signature.DKIM,
    keywords: Sequence[str] | None = None,
    after_tls: Sequence[str] = POSTFIX_AFTER_TLS,
) -> Peer:
    """EHLO, STARTTLS, EHLO again and a mail under TLS, then QUIT; returns the closer."""
    _ehlo(s, keywords)
    _starttls(s)
    seen = _ehlo(s, after_tls)
    _deliver(s, seen, envelope, _message(s, envelope, subject, body, signature=signature))
    return _quit(s)


# --- The scenarios -------------------------------------------------------------------------


def clean_starttls() -> Scenario:
    """Three sessions that negotiate STARTTLS and deliver under TLS; no byte differs."""
    plan = _Plan("clean-starttls", 0)
    subjects = ("Q1 figures", "Relay report week 10", "Maintenance window")
    bodies = (_BODIES[0], _report_body(plan.rng, 70), _BODIES[1])
    rcpts = (("bob@example.net",), ("bob@example.net", "carol@example.net"), ("ops@example.net",))
    for subject, body, to in zip(subjects, bodies, rcpts, strict=True):
        s = plan.session(POSTFIX)
        _greet(s)
        closer = _tls_mail(s, _env(*to), subject, body, keywords=POSTFIX.ehlo_keywords)
        plan.add(s, closer, "EHLO, STARTTLS, TLS 1.3, mail delivered under TLS", tampered=False)
    return plan.scenario(
        "Clean STARTTLS on both sides",
        "ASA with `no inspect esmtp`: NAT, ISN randomization and MSS clamping only",
    )


def pix_starttls_masked() -> Scenario:
    """EHLO keywords the PIX does not know are masked; the client never tries TLS."""
    plan = _Plan("pix-starttls-masked", 1)
    for n, (subject, body, to) in enumerate(
        [
            ("Q1 figures", _BODIES[0], ("bob@example.net",)),
            (None, None, ()),
            (
                "Relay report week 10",
                _report_body(plan.rng, 40),
                ("bob@example.net", "carol@example.net"),
            ),
            ("Ihre Anfrage", _BODIES[2], ("mueller@example.net",)),
        ]
    ):
        s = plan.session(POSTFIX)
        if subject is None or body is None:
            _check_smtp_session(plan, s, "check_smtp probe: banner, HELO, QUIT (nothing to mask)")
            continue
        _greet(s)
        seen = _ehlo(s, rewrite=mask_ehlo_keywords)
        envelope = _env(*to)
        signature = Signature.DKIM if n != 3 else Signature.NONE
        _deliver(s, seen, envelope, _message(s, envelope, subject, body, signature=signature))
        plan.add(
            s,
            _quit(s),
            "EHLO reply masked (STARTTLS→XXXXXXXA, SMTPUTF8→XXXXXXXB, "
            "CHUNKING→XXXXXXXC); mail sent in cleartext",
            tampered=True,
        )
    return plan.scenario(
        "PIX masks STARTTLS in the EHLO reply",
        "PIX 7.2 `inspect esmtp`: unknown EHLO keywords masked, no `allow-tls`, banner not masked",
    )


def _check_smtp_session(
    plan: _Plan,
    s: _Session,
    summary: str,
    *,
    port: int = 25,
    mask: Callable[[bytes], bytes] | None = None,
) -> None:
    _greet(s, mask=mask)
    _helo(s)
    plan.add(s, _quit(s), summary, tampered=mask is not None, server_port=port)


def esa_starttls_xxxxxxxx() -> Scenario:
    """Cisco ESA Q&A 118550: `250 XXXXXXXA` outside, STARTTLS anyway, `XXXXXXXX` inside, 500."""
    plan = _Plan("esa-starttls-xxxxxxxx", 2)
    starttls = b"STARTTLS\r\n"

    # s1: a client that tries STARTTLS whatever the EHLO reply says, then falls back.
    s = plan.session(ESA)
    _greet(s)
    seen = _ehlo(s, rewrite=mask_ehlo_keywords)
    s.client(starttls, _think(s.rng, 0.1, 0.3), inside=mask_command(starttls))
    s.server(s.reply(ESA.unrecognized), _think(s.rng, 0.2, 0.6))
    envelope = _env("bob@example.com")
    _deliver(
        s, seen, envelope, _message(s, envelope, "Q1 figures", _BODIES[0], signature=Signature.DKIM)
    )
    plan.add(
        s,
        _quit(s),
        "STARTTLS sent anyway, masked to XXXXXXXX, 500 from the ESA; "
        "the client falls back to cleartext and delivers",
        tampered=True,
    )

    # s2: the check_smtp probe.
    s = plan.session(ESA)
    _check_smtp_session(plan, s, "check_smtp probe: banner, HELO, QUIT (nothing to mask)")

    # s3: a client that requires TLS for this destination: it gives up after the 500.
    s = plan.session(ESA)
    _greet(s)
    _ehlo(s, rewrite=mask_ehlo_keywords)
    s.client(starttls, _think(s.rng, 0.1, 0.3), inside=mask_command(starttls))
    s.server(s.reply(ESA.unrecognized), _think(s.rng, 0.2, 0.6))
    plan.add(
        s,
        _quit(s),
        "TLS required: STARTTLS masked, 500, the client QUITs; the mail stays queued",
        tampered=True,
    )
    return plan.scenario(
        "ESA behind an ASA: STARTTLS masked both ways",
        "ASA `inspect esmtp` with the default policy's `no allow-tls` and EHLO-parameter "
        "masking, banner not masked; Cisco ESA inside",
    )


def banner_masked() -> Scenario:
    """The 220 greeting masked the PIX 5.1+ way; TLS allowed and working."""
    plan = _Plan("banner-masked", 3)
    for subject, body, to in (
        ("Q1 figures", _BODIES[0], ("bob@example.net",)),
        ("Your order has shipped", _BODIES[3], ("orders@example.net",)),
    ):
        s = plan.session(POSTFIX)
        _greet(s, mask=mask_banner)
        closer = _tls_mail(
            s,
            _env(*to),
            subject,
            body,
            keywords=POSTFIX_TRIMMED,
            after_tls=tuple(k for k in POSTFIX_TRIMMED if k != "STARTTLS"),
        )
        plan.add(
            s, closer, "banner masked to `220 ****…`; EHLO, STARTTLS, mail under TLS", tampered=True
        )
    s = plan.session(POSTFIX)
    _check_smtp_session(
        plan, s, "check_smtp probe of port 587 (not inspected): banner intact", port=SUBMISSION_PORT
    )
    return plan.scenario(
        "Banner masked",
        "PIX 7.2 `inspect esmtp` with `mask-banner` (PIX 5.1+ form: all but '2', '0', space → "
        "'*') and `allow-tls`; Postfix discards CHUNKING and SMTPUTF8",
    )


def pix_dkim_reset() -> Scenario:
    """PIX < 7.2(3) kills the connection right after a DKIM/DomainKey signature header."""
    plan = _Plan("pix-dkim-reset", 4)
    cases = (
        (Signature.NONE, "Maintenance window", _BODIES[1], "unsigned mail delivered"),
        (
            Signature.DKIM,
            "Q1 figures",
            _BODIES[0],
            "DKIM-signed: RST from the firewall right after the DKIM-Signature header",
        ),
        (
            Signature.DOMAINKEY,
            "Ihre Anfrage",
            _BODIES[2],
            "DomainKey-signed: RST right after the DomainKey-Signature header",
        ),
        (Signature.NONE, "Your order has shipped", _BODIES[3], "unsigned mail delivered"),
    )
    for signature, subject, body, summary in cases:
        s = plan.session(POSTFIX)
        _greet(s)
        seen = _ehlo(s, POSTFIX_NO_TLS)
        envelope = _env("bob@example.net")
        message = _message(s, envelope, subject, body, signature=signature)
        if signature is Signature.NONE:
            _deliver(s, seen, envelope, message)
            plan.add(s, _quit(s), summary, tampered=False)
            continue
        # The signer's prepended header goes out in a write of its own; the firewall lets it
        # through and resets on the next segment.
        name = b"DKIM-Signature" if signature is Signature.DKIM else b"DomainKey-Signature"
        cut = header_end(data_payload(message), name)
        _deliver(s, seen, envelope, message, breaks=(cut,), drop_from=cut)
        plan.add(s, None, summary, tampered=True)
    return plan.scenario(
        "PIX resets after DKIM / DomainKey signature headers",
        "PIX 7.2(2) `inspect esmtp` (signature-header bug fixed in 7.2(2.19)/7.2(3)); "
        "Postfix without STARTTLS",
    )


def long_header_drop() -> Scenario:
    """ASA drops (and here resets) a connection when a header line passes 998 bytes."""
    plan = _Plan("long-header-drop", 5)
    tracking = "v1." + "".join(
        plan.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for _ in range(1200 - len("X-Campaign-Tracking: v1."))
    )
    cases = (
        (Signature.DKIM, (), "Q1 figures", _BODIES[0], "folded DKIM signature: delivered"),
        (
            Signature.NONE,
            (("X-Campaign-Tracking", tracking),),
            "Spring offers",
            _BODIES[3],
            "1200-byte X-Campaign-Tracking header line: segment dropped, RST to both ends",
        ),
        (
            Signature.DKIM_UNFOLDED,
            (),
            "Relay report week 10",
            _report_body(plan.rng, 12),
            "unfolded DKIM-Signature line over 998 bytes: segment dropped, RST to both ends",
        ),
        (Signature.NONE, (), "Maintenance window", _BODIES[1], "unsigned mail delivered"),
    )
    for signature, extra, subject, body, summary in cases:
        s = plan.session(POSTFIX)
        _greet(s)
        seen = _ehlo(s, POSTFIX_NO_TLS)
        envelope = _env("bob@example.net")
        message = _message(s, envelope, subject, body, signature=signature, extra_headers=extra)
        payload = data_payload(message)
        start, length = longest_header_line(payload)
        if (length > HEADER_LINE_LIMIT) != ("dropped" in summary):
            raise ValueError(f"{summary}: the longest header line has {length} bytes")
        if length <= HEADER_LINE_LIMIT:
            _deliver(s, seen, envelope, message)
            plan.add(s, _quit(s), summary, tampered=False)
            continue
        # The segment holding the line's 999th byte never reaches the server.
        _deliver(s, seen, envelope, message, drop_from=start + HEADER_LINE_LIMIT)
        plan.add(s, None, summary, tampered=True)
    return plan.scenario(
        "Header line over 998 bytes",
        "ASA 9.x ESMTP map: `match header line length gt 998` with action `reset log` (the "
        "default map says `drop-connection log`), `no mask-banner`; Postfix without STARTTLS",
    )


def interactive_telnet() -> Scenario:
    """A person types SMTP into a character-mode telnet: every keystroke is its own segment,
    which the inspection masks on its own."""
    plan = _Plan("interactive-telnet", 6)
    s = plan.session(POSTFIX)
    rng = s.rng
    _greet(s)

    def gaps(n: int, first_s: float) -> list[int]:
        return [_think(rng, first_s * 1000, first_s * 1000 + 800)] + [
            _think(rng, 100, 300) for _ in range(n - 1)
        ]

    for i, line in enumerate((f"EHLO {CLIENT_NAME}", "HELO test", "QUIT")):
        text = line.encode()
        s.script.typed(text, gaps(len(text) + 1, 2.5 if i == 0 else 3.5), mask=mask_segment)
        s.server(s.reply(POSTFIX.unrecognized), _think(rng, 0.2, 0.5))
    plan.add(
        s,
        Peer.CLIENT,
        "character-mode telnet: each typed character masked to `X` on "
        "its own; three 500 replies, then the person quits telnet",
        tampered=True,
        close_think_us=_think(rng, 2500, 4000),
    )
    # Two MTA deliveries while the person is typing.
    for subject, body, to in (
        ("Q1 figures", _BODIES[0], ("bob@example.net",)),
        ("Relay report week 10", _report_body(plan.rng, 30), ("bob@example.net",)),
    ):
        s = plan.session(POSTFIX, gap_ms=(1500, 4000))
        _greet(s)
        closer = _tls_mail(
            s,
            _env(*to),
            subject,
            body,
            keywords=POSTFIX_TRIMMED,
            after_tls=tuple(k for k in POSTFIX_TRIMMED if k != "STARTTLS"),
        )
        plan.add(
            s,
            closer,
            "MTA delivery: EHLO, STARTTLS, mail under TLS (one line per segment: nothing masked)",
            tampered=False,
        )
    return plan.scenario(
        "Interactive telnet test through the inspection",
        "ASA `inspect esmtp` with `allow-tls`, `no mask-banner`; each one-character segment is "
        "inspected on its own and masked",
    )


def proxy_token_removed() -> Scenario:
    """A rewriting middlebox deletes `250-STARTTLS` from the EHLO reply: streams differ in
    length and later sequence numbers shift."""
    plan = _Plan("proxy-token-removed", 7)

    def strip(reply: bytes) -> bytes:
        return remove_ehlo_keyword(reply, "STARTTLS")

    for subject, body, to in (
        ("Q1 figures", _BODIES[0], ("bob@example.net",)),
        (None, None, ()),
        ("Relay report week 10", _report_body(plan.rng, 25), ("carol@example.net",)),
    ):
        s = plan.session(POSTFIX)
        if subject is None or body is None:
            _check_smtp_session(plan, s, "check_smtp probe: banner, HELO, QUIT (nothing removed)")
            continue
        _greet(s)
        seen = _ehlo(s, rewrite=strip)
        envelope = _env(*to)
        _deliver(s, seen, envelope, _message(s, envelope, subject, body, signature=Signature.DKIM))
        plan.add(
            s,
            _quit(s),
            "`250-STARTTLS` line (14 bytes) removed from the EHLO reply; mail sent in cleartext",
            tampered=True,
        )
    return plan.scenario(
        "Token-removing middlebox",
        "transparent SMTP proxy that deletes unsupported EHLO keywords in place and shifts "
        "later sequence/acknowledgement numbers (TCP timestamps pass through)",
    )


def old_pix_noop() -> Scenario:
    """PIX ≤ 6.x `fixup protocol smtp`: banner masked, EHLO replaced by NOOP."""
    plan = _Plan("old-pix-noop", 8)
    s = plan.session(POSTFIX)
    _greet(s, mask=mask_banner)
    seen = _ehlo(s, verb_inside=b"NOOP")
    envelope = _env("bob@example.net")
    _deliver(s, seen, envelope, _message(s, envelope, "Maintenance window", _BODIES[1]))
    plan.add(
        s,
        _quit(s),
        "banner masked; EHLO replaced by NOOP, `250 2.0.0 Ok` taken as an "
        "EHLO reply without extensions; mail delivered without ESMTP",
        tampered=True,
    )
    s = plan.session(POSTFIX)
    _check_smtp_session(plan, s, "check_smtp probe: banner masked, HELO passes", mask=mask_banner)
    s = plan.session(POSTFIX)
    _check_smtp_session(
        plan, s, "check_smtp probe of port 587 (no fixup there): untouched", port=SUBMISSION_PORT
    )
    return plan.scenario(
        "Old PIX replaces EHLO with NOOP",
        "PIX 6.3 `fixup protocol smtp 25` (Mailguard): banner masked, commands outside RFC 821 "
        "§4.5.1 replaced by NOOP",
    )


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "clean-starttls": clean_starttls,
    "pix-starttls-masked": pix_starttls_masked,
    "esa-starttls-xxxxxxxx": esa_starttls_xxxxxxxx,
    "banner-masked": banner_masked,
    "pix-dkim-reset": pix_dkim_reset,
    "long-header-drop": long_header_drop,
    "interactive-telnet": interactive_telnet,
    "proxy-token-removed": proxy_token_removed,
    "old-pix-noop": old_pix_noop,
}


def build(scenario: Scenario) -> CapturePair:
    """Play a scenario on the wire: the two capture files, byte for byte."""
    rng = random.Random(f"{SEED}:{scenario.name}:tcp")
    return simulate([p.connection for p in scenario.sessions], rng)


# --- Files ----------------------------------------------------------------------------------

README_BEGIN = "<!-- sessions:begin (written by generate.py) -->"
README_END = "<!-- sessions:end -->"


def _first_difference(a: bytes, b: bytes) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def _frame_at(frames: Sequence[FrameInfo], conn: int, from_client: bool, pos: int) -> str:
    for f in frames:
        if (
            f.conn == conn
            and f.from_client == from_client
            and f.offset <= pos < f.offset + f.length
        ):
            return f"#{f.number}"
    return "–"


def where(index: int, plan: SessionPlan, pair: CapturePair) -> str:
    """Where the two sides of a session part ways: the frames (client side / server side) that
    hold the first changed byte of each direction, and any RSTs the firewall made up."""
    parts = []
    for from_client, arrow, outside, inside in (
        (True, "c→s", plan.client_side.client_to_server, plan.server_side.client_to_server),
        (False, "s→c", plan.client_side.server_to_client, plan.server_side.server_to_client),
    ):
        pos = _first_difference(outside, inside)
        if pos is None:
            continue
        here = _frame_at(pair.client_frames, index, from_client, pos)
        there = _frame_at(pair.server_frames, index, from_client, pos)
        if from_client and pos == len(inside):
            parts.append(f"{arrow} byte {pos} on: {here} / never arrives")
        else:
            parts.append(f"{arrow} byte {pos}: {here} / {there}")
    resets = [
        ", ".join(f"#{f.number}" for f in frames if f.conn == index and f.flags & RST)
        for frames in (pair.client_frames, pair.server_frames)
    ]
    if any(resets):
        parts.append(f"RST {resets[0]} / {resets[1]}")
    return "; ".join(parts) or "–"


def session_table(built: Sequence[tuple[Scenario, CapturePair]]) -> str:
    """The README's per-session table (Markdown)."""
    t = TOPOLOGY
    rows = [
        "| scenario | session | client side (outside) | server side (inside) | tampered | what "
        "happens | where (client-side frame / server-side frame) |",
        "|---|---|---|---|---|---|---|",
    ]
    for sc, pair in built:
        for index, p in enumerate(sc.sessions):
            c = p.connection
            rows.append(
                f"| `{sc.name}` | {p.label} | {t.client_ip}:{c.client_port} → "
                f"{t.server_public_ip}:{c.server_port} | {t.nat_client_ip}:{c.nat_port} → "
                f"{t.server_ip}:{c.server_port} | {'yes' if p.tampered else 'no'} | "
                f"{p.summary} | {where(index, p, pair)} |"
            )
    return "\n".join(rows)


def refresh_readme(readme: Path, built: Sequence[tuple[Scenario, CapturePair]]) -> bool:
    """Rewrite the generated block of the README; returns True if it changed."""
    if not readme.exists():
        return False
    text = readme.read_text(encoding="utf-8")
    head, sep, rest = text.partition(README_BEGIN)
    _, sep2, tail = rest.partition(README_END)
    if not sep or not sep2:
        return False
    new = f"{head}{README_BEGIN}\n{session_table(built)}\n{README_END}{tail}"
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def built(names: Sequence[str] | None = None) -> list[tuple[Scenario, CapturePair]]:
    """Every named scenario (all by default) with its two capture files."""
    out = []
    for name in names or list(SCENARIOS):
        scenario = SCENARIOS[name]()
        out.append((scenario, build(scenario)))
    return out


def _files(pair: CapturePair) -> tuple[tuple[str, bytes], ...]:
    return ((CLIENT_SIDE, pair.client_side), (SERVER_SIDE, pair.server_side))


def write(root: Path, names: Sequence[str] | None = None) -> list[Path]:
    """Generate the named scenarios (all by default) under `root`; returns the files written.
    When `root` is the captures folder and every scenario is written, the README's session
    table is refreshed too."""
    written = []
    everything = built(names)
    for scenario, pair in everything:
        folder = root / scenario.name
        folder.mkdir(parents=True, exist_ok=True)
        for filename, data in _files(pair):
            path = folder / filename
            path.write_bytes(data)
            written.append(path)
    if root.resolve() == CAPTURES_DIR and names is None:
        refresh_readme(CAPTURES_DIR / "README.md", everything)
    return written


def check(root: Path, names: Sequence[str] | None = None) -> list[Path]:
    """Files under `root` that differ from what the generator makes now."""
    stale = []
    for scenario, pair in built(names):
        for filename, data in _files(pair):
            path = root / scenario.name / filename
            if not path.exists() or path.read_bytes() != data:
                stale.append(path)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"one of: {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument("--out", type=Path, default=CAPTURES_DIR, help="output folder")
    parser.add_argument(
        "--check",
        action="store_true",
        help="only compare the files on disk with a fresh generation",
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.scenarios if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario: {', '.join(unknown)}")
    names = args.scenarios or None
    if args.check:
        stale = check(args.out, names)
        for path in stale:
            print(f"stale: {path}")
        return 1 if stale else 0
    for path in write(args.out, names):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
