"""Regenerate the report.json fixtures in tests/report/data/ from simulated capture pairs.

What it does: plays scripted SMTP conversations between a client and a server through the lab's
PIX/ASA emulator (`tests.lab.rewriter.Middlebox`), writes what a capture on each side of the box
would hold (classic pcap, Ethernet, the server-side clock running ahead, the server behind
destination NAT), runs the real pipeline (`analyze` → `build_report`) on them and saves the
report; it also saves the reports of a few bundled pairs from captures/ and a hostile variant
of one report. The reports are inputs of the renderer tests; they are committed so those tests
do not depend on the rest of the pipeline.

What it does not do: run in the test suite, or model TCP beyond what the analysis needs (no
window, no loss; every segment carries ACK, one flight per command or reply).

Usage: .venv/bin/python -m tests.report.make_fixtures   (then review `git diff tests/report`)
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.pipeline import analyze
from analyzer.report import build_report, dumps
from tests.capture.craft import Rec, ether, ipv4, pcap, tcp
from tests.lab.rewriter import Action, Middlebox, MiddleboxConfig, Policy
from tests.lab.tcpip import TCP_RST, parse

DATA = Path(__file__).resolve().parent / "data"

ACK, PSH, SYN, FIN = 0x10, 0x08, 0x02, 0x01
MSS = 1448
T0 = 1_709_630_042.25  # 2024-03-05 09:14:02 UTC
SERVER_CLOCK_AHEAD = 1.734
"""The server-side capture host's clock runs this much ahead of the client-side one."""
OUTSIDE_LATENCY = 0.0118
"""Client ↔ firewall one-way delay, seconds."""
INSIDE_LATENCY = 0.0004
"""Firewall ↔ server one-way delay, seconds."""

PUBLIC_SERVER = "203.0.113.25"
PRIVATE_SERVER = "10.20.0.25"
CLIENT_MAC = bytes.fromhex("5254000a0101")
FW_OUTSIDE_MAC = bytes.fromhex("0026cb3f1a01")
FW_INSIDE_MAC = bytes.fromhex("0026cb3f1a02")
SERVER_MAC = bytes.fromhex("5254000b0219")

EHLO_KEYWORDS = (
    "PIPELINING",
    "SIZE 52428800",
    "VRFY",
    "ETRN",
    "STARTTLS",
    "ENHANCEDSTATUSCODES",
    "8BITMIME",
    "DSN",
    "CHUNKING",
)


def _nat(raw: bytes, src: str | None = None, dst: str | None = None) -> bytes:
    """The IPv4 packet with its source and/or destination address replaced."""
    data = bytearray(raw)
    if src is not None:
        data[12:16] = bytes(int(p) for p in src.split("."))
    if dst is not None:
        data[16:20] = bytes(int(p) for p in dst.split("."))
    return bytes(data)


def _ttl(raw: bytes, delta: int) -> bytes:
    data = bytearray(raw)
    data[8] = max(1, data[8] + delta)
    return bytes(data)


@dataclass
class Captures:
    """The two captures being written, and the box between them."""

    box: Middlebox
    client_side: list[Rec] = field(default_factory=list)
    server_side: list[Rec] = field(default_factory=list)
    ip_id: int = 0x3A10

    def next_id(self) -> int:
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        return self.ip_id


class Connection:
    """One TCP connection client → firewall → server, written into both captures."""

    def __init__(self, caps: Captures, client: str, port: int, now: float) -> None:
        self.caps = caps
        self.client = client
        self.port = port
        self.now = now
        self.c_seq = (0x1000_0000 + port * 7919) % 2**32
        self.s_seq = (0x6000_0000 + port * 104729) % 2**32
        self.c_rcv = 0  # what the client has received (its ACK number, in its own view)
        self.s_rcv = 0
        self.dead = False
        self.server_got = bytearray()
        self.client_got = bytearray()

    def _packet(self, from_client: bool, flags: int, payload: bytes) -> bytes:
        if from_client:
            segment = tcp(self.port, 25, self.c_seq, self.c_rcv, flags, 64240, b"", payload)
            packet = ipv4(segment, self.client, PUBLIC_SERVER, ttl=64, ident=self.caps.next_id())
            self.c_seq = (self.c_seq + len(payload) + bool(flags & (SYN | FIN))) % 2**32
        else:
            segment = tcp(25, self.port, self.s_seq, self.s_rcv, flags, 65160, b"", payload)
            packet = ipv4(segment, PUBLIC_SERVER, self.client, ttl=64, ident=self.caps.next_id())
            self.s_seq = (self.s_seq + len(payload) + bool(flags & (SYN | FIN))) % 2**32
        return packet

    def _deliver(self, to_client: bool, raw: bytes, at: float) -> None:
        """A packet leaving the firewall towards one end."""
        pkt = parse(raw)
        assert pkt is not None
        if to_client:
            self.caps.client_side.append(
                Rec(
                    ether(
                        _ttl(raw, -1) if pkt.ttl < 255 else raw, src=FW_OUTSIDE_MAC, dst=CLIENT_MAC
                    ),
                    at + OUTSIDE_LATENCY,
                )
            )
            if pkt.flags & TCP_RST:
                self.dead = True
                return
            self.client_got += pkt.payload
            self.c_rcv = (pkt.seq + len(pkt.payload) + bool(pkt.flags & (SYN | FIN))) % 2**32
        else:
            inside = _nat(raw, dst=PRIVATE_SERVER)
            self.caps.server_side.append(
                Rec(
                    ether(
                        _ttl(inside, -1) if pkt.ttl < 255 else inside,
                        src=FW_INSIDE_MAC,
                        dst=SERVER_MAC,
                    ),
                    at + INSIDE_LATENCY + SERVER_CLOCK_AHEAD,
                )
            )
            if pkt.flags & TCP_RST:
                self.dead = True
                return
            self.server_got += pkt.payload
            self.s_rcv = (pkt.seq + len(pkt.payload) + bool(pkt.flags & (SYN | FIN))) % 2**32

    def send(self, from_client: bool, payload: bytes = b"", flags: int = ACK | PSH) -> None:
        """One flight, cut into MSS-sized segments, through the box."""
        if self.dead:
            return
        chunks = [payload[i : i + MSS] for i in range(0, len(payload), MSS)] or [b""]
        for chunk in chunks:
            raw = self._packet(from_client, flags, chunk)
            if from_client:
                self.caps.client_side.append(
                    Rec(ether(raw, src=CLIENT_MAC, dst=FW_OUTSIDE_MAC), self.now)
                )
                at = self.now + OUTSIDE_LATENCY
            else:
                inside = _nat(raw, src=PRIVATE_SERVER)
                self.caps.server_side.append(
                    Rec(
                        ether(inside, src=SERVER_MAC, dst=FW_INSIDE_MAC),
                        self.now + SERVER_CLOCK_AHEAD,
                    )
                )
                at = self.now + INSIDE_LATENCY
            verdict = self.caps.box.handle(raw)
            if verdict.action is Action.ACCEPT:
                self._deliver(not from_client, verdict.packet or raw, at)
            for forged in verdict.inject:
                rst = parse(forged)
                assert rst is not None
                self._deliver(rst.dst == self.client, forged, at)
            self.now += 0.0002
            if self.dead and not from_client:
                return  # a sender keeps sending its flight until the reset reaches it
        self.now += 2 * (OUTSIDE_LATENCY + INSIDE_LATENCY) + 0.003

    def handshake(self) -> None:
        self.send(True, flags=SYN)
        self.send(False, flags=SYN | ACK)
        self.send(True, flags=ACK)

    def close(self, client_first: bool = False) -> None:
        first, second = (True, False) if client_first else (False, True)
        self.send(first, flags=FIN | ACK)
        self.send(second, flags=FIN | ACK)
        self.send(first, flags=ACK)


def _server_reply(received: bytes, in_data: bool) -> tuple[bytes, bool]:
    """What a Postfix-like server answers to one received command line (and the DATA state)."""
    if in_data:
        return b"250 2.0.0 Ok: queued as 4Tq2Xk1Z3Fz\r\n", False
    line = received.rstrip(b"\r\n")
    verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper()
    if verb == b"EHLO":
        keywords = ["mx1.example.net", *EHLO_KEYWORDS]
        lines = [("250-" if i < len(keywords) - 1 else "250 ") + k for i, k in enumerate(keywords)]
        return ("\r\n".join(lines) + "\r\n").encode(), False
    replies = {
        b"MAIL": b"250 2.1.0 Ok\r\n",
        b"RCPT": b"250 2.1.5 Ok\r\n",
        b"DATA": b"354 End data with <CR><LF>.<CR><LF>\r\n",
        b"QUIT": b"221 2.0.0 Bye\r\n",
        b"RSET": b"250 2.0.0 Ok\r\n",
        b"NOOP": b"250 2.0.0 Ok\r\n",
        b"STARTTLS": b"220 2.0.0 Ready to start TLS\r\n",
    }
    return replies.get(verb, b"500 5.5.2 Error: command not recognized\r\n"), verb == b"DATA"


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: tuple[str, ...]
    message: bytes


def _message(subject: str, msgid: str, dkim: bool, body_lines: int = 12) -> bytes:
    headers = [
        "From: Billing <billing@example.org>",
        "To: Accounts <accounts@example.net>",
        f"Subject: {subject}",
        "Date: Tue, 05 Mar 2024 09:14:00 +0000",
        f"Message-ID: <{msgid}>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    if dkim:  # appended last by the signing filter, as some signers do
        headers.append(
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;\r\n"
            " s=mail2024; t=1709630040; h=from:to:subject:date:message-id;\r\n"
            " bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
            " b=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzR"
        )
    body = [f"Line {i} of the monthly statement." for i in range(body_lines)]
    return ("\r\n".join(headers) + "\r\n\r\n" + "\r\n".join(body) + "\r\n").encode()


def converse(
    conn: Connection,
    helo: str,
    mails: list[Mail],
    want_tls: bool,
    banner: bytes = b"220 mx1.example.net ESMTP Postfix (Debian/GNU)\r\n",
) -> None:
    """The client's side of a dialogue, reacting to what the client received."""
    conn.handshake()
    conn.send(False, banner)
    in_data = False

    def command(line: bytes) -> bytes:
        nonlocal in_data
        before = len(conn.client_got)
        server_before = len(conn.server_got)
        conn.send(True, line)
        if conn.dead:
            return b""
        received = bytes(conn.server_got[server_before:])
        reply, in_data = _server_reply(received, in_data)
        conn.send(False, reply)
        return bytes(conn.client_got[before:])

    ehlo = command(f"EHLO {helo}\r\n".encode())
    offered = b"STARTTLS" in ehlo
    if want_tls and offered:
        reply = command(b"STARTTLS\r\n")
        if reply.startswith(b"220"):
            conn.send(True, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(160)))
            conn.send(False, b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03" + bytes(range(85)))
            conn.send(True, b"\x17\x03\x03\x00\x40" + bytes(64))
            conn.send(False, b"\x17\x03\x03\x00\x40" + bytes(64))
            conn.close(client_first=True)
            return
    for mail in mails:
        command(f"MAIL FROM:<{mail.sender}> SIZE={len(mail.message)}\r\n".encode())
        for rcpt in mail.recipients:
            command(f"RCPT TO:<{rcpt}>\r\n".encode())
        command(b"DATA\r\n")
        command(mail.message + b".\r\n")
        if conn.dead:
            return
    if conn.dead:
        return
    command(b"QUIT\r\n")
    conn.close()


@dataclass(frozen=True)
class Scenario:
    name: str
    policy: Policy
    sessions: tuple[tuple[str, float, str, list[Mail], bool], ...]
    """(client address, start offset in seconds, EHLO name, mails, client wants TLS)."""


def _scenarios() -> list[Scenario]:
    statement = Mail(
        "billing@example.org",
        ("accounts@example.net",),
        _message("Statement March 2024", "20240305091400.1@example.org", False),
    )
    payroll = Mail(
        "hr@example.org",
        ("payroll@example.net", "cfo@example.net"),
        _message("Payroll run", "20240305091500.2@example.org", False),
    )
    signed = Mail(
        "billing@example.org",
        ("accounts@example.net",),
        _message("Invoice 2024-0117", "20240305091400.3@example.org", True, body_lines=160),
    )
    asa = Policy(randomize_isn=True, mask_banner=True, mask_ehlo_keywords=True)
    return [
        Scenario(
            "pix-starttls-masked",
            asa,
            (
                ("198.51.100.7", 0.0, "mail.example.org", [statement], True),
                ("198.51.100.7", 61.5, "mail.example.org", [payroll], True),
                ("198.51.100.7", 183.25, "mail.example.org", [], True),
            ),
        ),
        Scenario(
            "pix-dkim-reset",
            Policy(randomize_isn=True, reset_after_dkim_header=True),
            (
                ("192.0.2.44", 0.0, "out1.example.org", [signed], False),
                ("192.0.2.44", 300.0, "out1.example.org", [signed], False),
                ("192.0.2.44", 420.0, "out1.example.org", [statement], False),
            ),
        ),
        Scenario(
            "asa-starttls-command-masked",
            Policy(randomize_isn=True, mask_commands=True),
            (
                ("198.51.100.9", 0.0, "relay.example.org", [statement], True),
                ("198.51.100.9", 45.0, "relay.example.org", [payroll], True),
            ),
        ),
        Scenario(
            "clean",
            Policy(),
            (
                ("198.51.100.7", 0.0, "mail.example.org", [statement], True),
                ("198.51.100.7", 30.0, "mail.example.org", [payroll], False),
            ),
        ),
    ]


def simulate(scenario: Scenario, folder: Path) -> tuple[Path, Path]:
    box = Middlebox(MiddleboxConfig(default=scenario.policy, seed=7))
    caps = Captures(box)
    for i, (client, start, helo, mails, tls) in enumerate(scenario.sessions):
        conn = Connection(caps, client, 51_000 + 37 * i, T0 + start)
        converse(conn, helo, mails, tls)
    folder.mkdir(parents=True, exist_ok=True)
    client_path, server_path = folder / "client-side.pcap", folder / "server-side.pcap"
    order: Callable[[Rec], float] = lambda r: r.ts  # noqa: E731
    client_path.write_bytes(pcap(sorted(caps.client_side, key=order)))
    server_path.write_bytes(pcap(sorted(caps.server_side, key=order)))
    return client_path, server_path


HOSTILE = (
    "<script>document.title='pwned'</script>",
    "</svg></table></pre><script>alert(1)</script>",
    "\"'><img src=x onerror=alert(1)>",
    "| pipe | `tick` ``` fence ~~~ *star* _under_ [link](javascript:alert(1)) # head",
    "\x1b[31mred\x1b[0m\x00NUL\x07bell\r\rCR",
    "\udcff\udcfe undecodable \ud800 lone surrogate \u202e bidi \u2028 line sep",
    "${css} $$ &amp; &lt; <!-- ]]> {{x}}",
    "first line\n```\n<b>after a fence</b>\n~~~\n    indented",
)


def hostile(report: dict[str, Any]) -> dict[str, Any]:
    """A copy of a report whose captured strings are all attacks on the renderers."""
    evil = iter(HOSTILE * 400)

    def bad(prefix: str = "") -> str:
        return prefix + next(evil)

    out = copy.deepcopy(report)
    out["captures"][0]["path"] = out["captures"][0]["files"][0]["path"] = bad("captures/")
    out["captures"][1]["anomalies"] = {bad(): 3}
    for session in out["sessions"]:
        session["banner"] = bad("220 ")
        session["helo"] = bad()
        session["client"] = bad("198.51.100.7:")
        session["ehlo_keywords"] = [bad(), "STARTTLS"]
        for txn in session["transactions"]:
            txn["mail_from"] = bad()
            txn["rcpt_to"] = [bad(), bad()]
            txn["subject"] = bad()
            txn["message_id"] = bad()
    for lines in out["transcripts"].values():
        for line in lines:
            if not line["text"].startswith("[") and "STARTTLS" not in line["text"]:
                line["text"] = line["text"][:4] + bad() + "\n" + bad()
    for pair in out["pairs"]:
        for d in pair["divergences"]:
            d["sent"], d["received"] = bad(), bad()
        pair["matched_on"].append(bad())
    for finding in out["findings"]:
        finding["summary"] = bad(finding["summary"][:20])
        finding["cause"] = bad("cause ") + " `" + bad() + "`"
        for ev in finding["evidence"]:
            ev["excerpt"] = ev["excerpt"].replace("XXXXXXXA", bad() + "XXXXXXXA") + "\n" + bad()
            ev["note"] = bad()
    long_line = "A" * 50_000 + "<script>late</script>"
    out["findings"][0]["evidence"][0]["excerpt"] += "\n" + long_line
    out["generator"]["version"] = bad()
    return out


ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ("old-pix-noop", "proxy-token-removed", "interactive-telnet", "lab/dkim-long-line-drop")
"""Pairs from captures/ (generated and real-traffic lab captures) also kept as fixtures."""


def bundled() -> None:
    """Reports of some bundled capture pairs, with paths relative to the project."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for pair in BUNDLED:
            folder = Path("captures") / pair
            if not (folder / "client-side.pcap").exists():
                print(f"{pair}: not bundled, skipped", file=sys.stderr)
                continue
            report = build_report(
                analyze(
                    client_side=folder / "client-side.pcap", server_side=folder / "server-side.pcap"
                )
            )
            report["generator"]["version"] = "fixture"
            name = "captured-" + pair.replace("/", "-")
            (DATA / f"{name}.json").write_text(dumps(report), encoding="ascii")
            print(f"{name}: {len(report['findings'])} finding(s)", file=sys.stderr)
    finally:
        os.chdir(cwd)


def main() -> int:
    DATA.mkdir(parents=True, exist_ok=True)
    bundled()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)  # capture paths in the reports are relative, as a user would type them
        try:
            for scenario in _scenarios():
                client, server = simulate(scenario, Path("captures") / scenario.name)
                report = build_report(analyze(client_side=client, server_side=server))
                report["generator"]["version"] = "fixture"
                (DATA / f"{scenario.name}.json").write_text(dumps(report), encoding="ascii")
                if scenario.name == "pix-starttls-masked":
                    (DATA / "hostile.json").write_text(dumps(hostile(report)), encoding="ascii")
                    single = build_report(analyze(client))
                    single["generator"]["version"] = "fixture"
                    (DATA / "pix-starttls-masked-client-only.json").write_text(
                        dumps(single), encoding="ascii"
                    )
                print(f"{scenario.name}: {len(report['findings'])} finding(s)", file=sys.stderr)
        finally:
            os.chdir(cwd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
