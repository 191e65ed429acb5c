"""The lab's scenario matrix, as data: what runs, what the middlebox does, what must be found.

Each `Scenario` names the server personality, the middlebox behaviours (for every client, or
only for the listed tampered client addresses), the client sessions, how the two sides are
captured, and the expected result of analysing the pair: the finding kinds that must appear,
those that may, those that must not, which client addresses' sessions are tampered with, and
who sends any resets. Finding kinds are the stable strings of the report contract.
This module only declares; `runner.py` executes and the tests compare.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from . import addresses as A
from .messages import MessageSpec
from .rewriter import Policy


class Kind(enum.StrEnum):
    """Finding kinds of the report contract (report.json `findings[].kind`)."""

    BANNER_MASKED = "banner_masked"
    BANNER_REPLACED = "banner_replaced"
    EHLO_KEYWORD_MASKED = "ehlo_keyword_masked"
    EHLO_KEYWORD_REMOVED = "ehlo_keyword_removed"
    COMMAND_MASKED = "command_masked"
    COMMAND_REPLACED = "command_replaced"
    STARTTLS_REJECTED = "starttls_rejected"
    TLS_DOWNGRADE = "tls_downgrade"
    RESET_AFTER_DKIM_HEADER = "reset_after_dkim_header"
    HEADER_LINE_TOO_LONG_DROP = "header_line_too_long_drop"
    RESET_INJECTED = "reset_injected"
    PAYLOAD_MODIFIED = "payload_modified"
    DATA_MISSING = "data_missing"
    SESSION_UNMATCHED = "session_unmatched"
    INTERACTIVE_TEST_ARTEFACT = "interactive_test_artefact"


class Server(enum.StrEnum):
    POSTFIX = "postfix"
    AIOSMTPD = "aiosmtpd"

    @property
    def address(self) -> str:
        return A.POSTFIX_ADDRESS if self is Server.POSTFIX else A.AIOSMTPD_ADDRESS


class Behaviour(enum.StrEnum):
    """What the emulated PIX/ASA does (several per scenario)."""

    NAT = "nat"
    """Source NAT of the client to NAT_ADDRESS, another port (iptables SNAT)."""
    RANDOMIZE_ISN = "randomize_isn"
    MASK_BANNER = "mask_banner"
    MASK_EHLO_KEYWORDS = "mask_ehlo_keywords"
    MASK_COMMANDS = "mask_commands"
    RESET_AFTER_DKIM_HEADER = "reset_after_dkim_header"
    DROP_LONG_HEADER_LINES = "drop_long_header_lines"
    PROXY_REMOVE_KEYWORDS = "proxy_remove_keywords"
    """A re-terminating proxy deletes the STARTTLS line (lengths change)."""
    NGINX_MAIL_PROXY = "nginx_mail_proxy"
    """nginx's mail proxy: its own banner and EHLO reply (no STARTTLS), its own connection."""
    HAPROXY_TCP = "haproxy_tcp"
    """haproxy in TCP mode: its own connection to the server, every byte relayed unchanged."""
    STRING_RESET = "string_reset"
    """iptables string match on DKIM-Signature: the rest of the connection answered with RSTs."""


REWRITER_BEHAVIOURS = frozenset(
    {
        Behaviour.RANDOMIZE_ISN,
        Behaviour.MASK_BANNER,
        Behaviour.MASK_EHLO_KEYWORDS,
        Behaviour.MASK_COMMANDS,
        Behaviour.RESET_AFTER_DKIM_HEADER,
        Behaviour.DROP_LONG_HEADER_LINES,
    }
)
# An ASA always translates and randomizes; these alone change no SMTP byte (nor does haproxy).
TRANSPORT_ONLY = frozenset({Behaviour.NAT, Behaviour.RANDOMIZE_ISN, Behaviour.HAPROXY_TCP})
FULL_PROXIES = frozenset(
    {Behaviour.PROXY_REMOVE_KEYWORDS, Behaviour.NGINX_MAIL_PROXY, Behaviour.HAPROXY_TCP}
)
"""Middleboxes that terminate TCP and open a connection of their own to the server."""


def policy_of(behaviours: frozenset[Behaviour]) -> Policy:
    return Policy(
        randomize_isn=Behaviour.RANDOMIZE_ISN in behaviours,
        mask_banner=Behaviour.MASK_BANNER in behaviours,
        mask_ehlo_keywords=Behaviour.MASK_EHLO_KEYWORDS in behaviours,
        mask_commands=Behaviour.MASK_COMMANDS in behaviours,
        reset_after_dkim_header=Behaviour.RESET_AFTER_DKIM_HEADER in behaviours,
        drop_long_header_lines=Behaviour.DROP_LONG_HEADER_LINES in behaviours,
    )


class ClientKind(enum.StrEnum):
    SMTPLIB = "smtplib"
    SWAKS = "swaks"
    TYPING = "typing"


class HoldPoint(enum.StrEnum):
    """Where a client session waits for the runner (the capture accident happens meanwhile)."""

    AFTER_EHLO = "ehlo"
    AFTER_RCPT = "rcpt"


class Outcome(enum.StrEnum):
    """How a client session ends, as the client saw it."""

    DELIVERED = "delivered"
    CONNECTION_RESET = "connection_reset"
    COMPLETED = "completed"
    """An interactive session that typed all its lines."""


@dataclass(frozen=True, slots=True)
class ClientAction:
    """One client session."""

    kind: ClientKind
    source: str = A.CLIENT_ADDRESS
    message: MessageSpec | None = None
    typed_lines: tuple[str, ...] = ()
    expect_outcome: Outcome = Outcome.DELIVERED
    expect_tls: bool = False
    starttls: bool = True
    """Use STARTTLS when offered (False: an MTA with TLS turned off)."""
    hold: HoldPoint | None = None
    """Pause here until the runner has done the scenario's capture accident."""


class Side(enum.StrEnum):
    CLIENT = "client-side"
    SERVER = "server-side"


class Accident(enum.StrEnum):
    LATE_START = "late_start"
    """tcpdump on this side starts only while the held session is under way."""
    EARLY_STOP = "early_stop"
    """tcpdump on this side stops while the held session is under way."""


@dataclass(frozen=True, slots=True)
class CaptureAccident:
    """Something that goes wrong with one side's capture, timed by a held client session."""

    side: Side
    accident: Accident


class CaptureLink(enum.StrEnum):
    INTERFACE = "interface"
    """tcpdump -i <fw interface>: Ethernet."""
    ANY = "any"
    """tcpdump -i any -y LINUX_SLL2, filtered to the interface by ifindex."""


class CaptureFormat(enum.StrEnum):
    PCAP = "pcap"
    PCAPNG = "pcapng"
    """Captured with nanosecond time stamps, then converted by editcap."""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    server: Server
    behaviours: frozenset[Behaviour]
    """What the middlebox does to the tampered clients (all clients when `tampered` is None)."""
    clients: tuple[ClientAction, ...]
    expected_kinds: frozenset[Kind] = frozenset()
    """Kinds the analysis must report; empty means the pair must come out clean."""
    tolerated_kinds: frozenset[Kind] = frozenset()
    """Kinds the analysis may also report (secondary consequences)."""
    forbidden_kinds: frozenset[Kind] = frozenset()
    """Kinds that would be a misdiagnosis here."""
    tampered: frozenset[str] | None = None
    """Client addresses whose sessions the middlebox tampers with; None: every client."""
    parallel: bool = False
    resets_by: str | None = None
    """'middlebox' when the middlebox forges the resets; None when nobody resets."""
    server_side_link: CaptureLink = CaptureLink.INTERFACE
    file_format: CaptureFormat = CaptureFormat.PCAP
    seed: int = 0
    notes: tuple[str, ...] = field(default=())
    concurrency: int = 0
    """Sessions in flight at once, started a few milliseconds apart (0: as `parallel` says)."""
    client_tcp_timestamps: bool = True
    """False: the client namespace sends no TCP timestamps (net.ipv4.tcp_timestamps=0)."""
    accident: CaptureAccident | None = None
    """A capture that starts late or stops early (timed by the client session that holds)."""
    snaplen: tuple[Side, int] | None = None
    """One side captured with this snap length (tcpdump -s): payloads cut."""

    @property
    def expect_clean(self) -> bool:
        return not self.expected_kinds

    @property
    def uses_proxy(self) -> bool:
        """The lab's own keyword-removing proxy (proxy.py) is in the path."""
        return Behaviour.PROXY_REMOVE_KEYWORDS in self.behaviours

    @property
    def full_proxy(self) -> bool:
        """A proxy re-terminates TCP: the two sides are different connections."""
        return bool(self.behaviours & FULL_PROXIES)

    @property
    def through_rewriter(self) -> bool:
        """The packets cross the lab's NFQUEUE engine or nothing at all (same connection)."""
        return not self.full_proxy and Behaviour.STRING_RESET not in self.behaviours

    @property
    def nat(self) -> bool:
        return Behaviour.NAT in self.behaviours or self.full_proxy

    @property
    def complete_captures(self) -> bool:
        """Both captures hold every packet whole (no late start, early stop or snap length)."""
        return self.accident is None and self.snaplen is None

    @property
    def tampered_clients(self) -> frozenset[str]:
        """Client addresses whose SMTP bytes the middlebox changes."""
        if self.behaviours <= TRANSPORT_ONLY:
            return frozenset()
        sources = frozenset(c.source for c in self.clients)
        return sources if self.tampered is None else self.tampered & sources

    @property
    def length_preserving(self) -> bool:
        """Both captures carry the same bytes per direction, up to the drop point."""
        return not self.full_proxy and Behaviour.DROP_LONG_HEADER_LINES not in self.behaviours

    def policy_for(self, client: str) -> frozenset[Behaviour]:
        if self.tampered is None or client in self.tampered:
            return self.behaviours
        return self.behaviours & TRANSPORT_ONLY


ASA = frozenset({Behaviour.NAT, Behaviour.RANDOMIZE_ISN})
EHLO_MASK = ASA | {Behaviour.MASK_EHLO_KEYWORDS}
COMMAND_MASK = ASA | {Behaviour.MASK_COMMANDS}
PIX = ASA | {Behaviour.MASK_BANNER, Behaviour.MASK_EHLO_KEYWORDS, Behaviour.MASK_COMMANDS}
DOWNGRADED = frozenset({Kind.EHLO_KEYWORD_MASKED, Kind.TLS_DOWNGRADE})
BULK_SESSIONS = 120
BULK_CONCURRENCY = 24
SNAPLEN = 96
"""Bytes per packet: Ethernet, IPv4 and TCP with timestamps take 66, leaving 30 of payload."""


def _mail(
    name: str, *, long_header_octets: int | None = None, dkim_line_over: int | None = None
) -> MessageSpec:
    return MessageSpec(
        local_id=name,
        subject=f"lab scenario {name}",
        long_header_octets=long_header_octets,
        dkim_line_over=dkim_line_over,
    )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="clean-postfix",
        description="Postfix behind an ASA that only translates addresses and randomizes ISNs; "
        "STARTTLS offered and used.",
        server=Server.POSTFIX,
        behaviours=ASA,
        clients=(
            ClientAction(ClientKind.SMTPLIB, message=_mail("clean-postfix"), expect_tls=True),
        ),
    ),
    Scenario(
        name="clean-aiosmtpd",
        description="aiosmtpd behind a middlebox that forwards untouched (no NAT, same ISNs); "
        "swaks uses STARTTLS.",
        server=Server.AIOSMTPD,
        behaviours=frozenset(),
        clients=(ClientAction(ClientKind.SWAKS, message=_mail("clean-aiosmtpd"), expect_tls=True),),
    ),
    Scenario(
        name="ehlo-masked",
        description="inspect esmtp masks STARTTLS (XXXXXXXA) and the other unknown keywords in "
        "Postfix's EHLO reply; the client sends in cleartext.",
        server=Server.POSTFIX,
        behaviours=EHLO_MASK,
        clients=(ClientAction(ClientKind.SMTPLIB, message=_mail("ehlo-masked")),),
        expected_kinds=DOWNGRADED,
    ),
    Scenario(
        name="starttls-command-masked",
        description="The client's STARTTLS becomes XXXXXXXX; Postfix answers 500 5.5.2, the "
        "client goes on in cleartext.",
        server=Server.POSTFIX,
        behaviours=COMMAND_MASK,
        clients=(ClientAction(ClientKind.SMTPLIB, message=_mail("starttls-command-masked")),),
        expected_kinds=frozenset({Kind.COMMAND_MASKED, Kind.STARTTLS_REJECTED, Kind.TLS_DOWNGRADE}),
    ),
    Scenario(
        name="starttls-command-masked-aiosmtpd",
        description="As starttls-command-masked, against aiosmtpd: "
        '500 Error: command "XXXXXXXX" not recognized.',
        server=Server.AIOSMTPD,
        behaviours=COMMAND_MASK,
        clients=(
            ClientAction(ClientKind.SMTPLIB, message=_mail("starttls-command-masked-aiosmtpd")),
        ),
        expected_kinds=frozenset({Kind.COMMAND_MASKED, Kind.STARTTLS_REJECTED, Kind.TLS_DOWNGRADE}),
    ),
    Scenario(
        name="pix-combination",
        description="A PIX 7.x with inspect esmtp and banner masking: '220 ****…', EHLO "
        "keywords masked, commands inspected; swaks sends in cleartext.",
        server=Server.POSTFIX,
        behaviours=PIX,
        clients=(ClientAction(ClientKind.SWAKS, message=_mail("pix-combination")),),
        expected_kinds=frozenset({Kind.BANNER_MASKED} | DOWNGRADED),
    ),
    Scenario(
        name="dkim-reset",
        description="PIX < 7.2(3): after the DKIM-Signature header crossed, both ends get an RST "
        "forged by the box; the mail is not delivered.",
        server=Server.POSTFIX,
        behaviours=EHLO_MASK | {Behaviour.RESET_AFTER_DKIM_HEADER},
        clients=(
            ClientAction(
                ClientKind.SMTPLIB,
                message=_mail("dkim-reset"),
                expect_outcome=Outcome.CONNECTION_RESET,
            ),
        ),
        expected_kinds=frozenset({Kind.RESET_AFTER_DKIM_HEADER, Kind.RESET_INJECTED}) | DOWNGRADED,
        tolerated_kinds=frozenset({Kind.DATA_MISSING}),
        forbidden_kinds=frozenset({Kind.HEADER_LINE_TOO_LONG_DROP}),
        resets_by="middlebox",
    ),
    Scenario(
        name="long-header-drop",
        description="ASA default policy: a 1100-octet X-Long-Header line drops the connection "
        "(segment dropped, RST both ways), though the mail is also DKIM-signed.",
        server=Server.POSTFIX,
        behaviours=EHLO_MASK | {Behaviour.DROP_LONG_HEADER_LINES},
        clients=(
            ClientAction(
                ClientKind.SMTPLIB,
                message=_mail("long-header-drop", long_header_octets=1100),
                expect_outcome=Outcome.CONNECTION_RESET,
            ),
        ),
        expected_kinds=frozenset({Kind.HEADER_LINE_TOO_LONG_DROP, Kind.RESET_INJECTED})
        | DOWNGRADED,
        tolerated_kinds=frozenset({Kind.DATA_MISSING}),
        forbidden_kinds=frozenset({Kind.RESET_AFTER_DKIM_HEADER}),
        resets_by="middlebox",
    ),
    Scenario(
        name="dkim-long-line-drop",
        description="An unfolded DKIM-Signature line over 998 octets: the connection dies on "
        "the DKIM header, but by the length rule, not the DKIM bug.",
        server=Server.POSTFIX,
        behaviours=EHLO_MASK | {Behaviour.DROP_LONG_HEADER_LINES},
        clients=(
            ClientAction(
                ClientKind.SMTPLIB,
                message=_mail("dkim-long-line-drop", dkim_line_over=998),
                expect_outcome=Outcome.CONNECTION_RESET,
            ),
        ),
        expected_kinds=frozenset({Kind.HEADER_LINE_TOO_LONG_DROP, Kind.RESET_INJECTED})
        | DOWNGRADED,
        tolerated_kinds=frozenset({Kind.DATA_MISSING}),
        forbidden_kinds=frozenset({Kind.RESET_AFTER_DKIM_HEADER}),
        resets_by="middlebox",
    ),
    Scenario(
        name="proxy-removes-keyword",
        description="A re-terminating proxy deletes the 250-STARTTLS line: the client side's "
        "EHLO reply is shorter, ISNs and segmentation unrelated.",
        server=Server.POSTFIX,
        behaviours=frozenset({Behaviour.PROXY_REMOVE_KEYWORDS}),
        clients=(ClientAction(ClientKind.SMTPLIB, message=_mail("proxy-removes-keyword")),),
        expected_kinds=frozenset({Kind.EHLO_KEYWORD_REMOVED, Kind.TLS_DOWNGRADE}),
    ),
    Scenario(
        name="concurrent",
        description="Four clients at once; the box masks EHLO keywords only for .11 and .13 "
        "(all four NATed to one address).",
        server=Server.POSTFIX,
        behaviours=EHLO_MASK,
        tampered=frozenset({A.CLIENT_ADDRESSES[1], A.CLIENT_ADDRESSES[3]}),
        parallel=True,
        clients=tuple(
            ClientAction(
                ClientKind.SMTPLIB,
                source=address,
                message=_mail(f"concurrent-{i}"),
                expect_tls=i in (0, 2),
            )
            for i, address in enumerate(A.CLIENT_ADDRESSES)
        ),
        expected_kinds=DOWNGRADED,
    ),
    Scenario(
        name="telnet-artefact",
        description="Someone types EHLO and QUIT at a telnet prompt through a box inspecting "
        "commands: one character per segment, every word masked, the server sees XXXX.",
        server=Server.POSTFIX,
        behaviours=COMMAND_MASK,
        clients=(
            ClientAction(
                ClientKind.TYPING,
                typed_lines=(f"EHLO {A.CLIENT_HELO}", "QUIT"),
                expect_outcome=Outcome.COMPLETED,
            ),
        ),
        expected_kinds=frozenset({Kind.INTERACTIVE_TEST_ARTEFACT}),
        tolerated_kinds=frozenset({Kind.COMMAND_MASKED}),
    ),
    Scenario(
        name="sll2-any-interface",
        description="As ehlo-masked, the server side captured with tcpdump -i any (Linux "
        "cooked v2 link type).",
        server=Server.POSTFIX,
        behaviours=EHLO_MASK,
        clients=(ClientAction(ClientKind.SWAKS, message=_mail("sll2-any-interface")),),
        expected_kinds=DOWNGRADED,
        server_side_link=CaptureLink.ANY,
    ),
    Scenario(
        name="pcapng-nanosecond",
        description="A PIX in front of aiosmtpd (banner and keywords masked), both sides "
        "written as pcapng with nanosecond time stamps.",
        server=Server.AIOSMTPD,
        behaviours=PIX,
        clients=(ClientAction(ClientKind.SMTPLIB, message=_mail("pcapng-nanosecond")),),
        expected_kinds=frozenset({Kind.BANNER_MASKED} | DOWNGRADED),
        file_format=CaptureFormat.PCAPNG,
    ),
    Scenario(
        name="nginx-mail-proxy",
        description="nginx's mail proxy in front of Postfix: its own 220 banner and EHLO reply "
        "without STARTTLS, its own connection to Postfix after RCPT; the client sends in "
        "cleartext.",
        server=Server.POSTFIX,
        behaviours=frozenset({Behaviour.NGINX_MAIL_PROXY}),
        clients=(ClientAction(ClientKind.SMTPLIB, message=_mail("nginx-mail-proxy")),),
        expected_kinds=frozenset(
            {Kind.EHLO_KEYWORD_REMOVED, Kind.TLS_DOWNGRADE, Kind.BANNER_REPLACED}
        ),
        forbidden_kinds=frozenset({Kind.BANNER_MASKED, Kind.COMMAND_REPLACED}),
    ),
    Scenario(
        name="haproxy-tcp",
        description="haproxy in TCP mode: a connection of its own to Postfix (new ISNs, its "
        "own segmentation), every byte relayed unchanged; two sessions, STARTTLS used.",
        server=Server.POSTFIX,
        behaviours=frozenset({Behaviour.HAPROXY_TCP}),
        clients=(
            ClientAction(ClientKind.SMTPLIB, message=_mail("haproxy-tcp-0"), expect_tls=True),
            ClientAction(
                ClientKind.SWAKS,
                source=A.CLIENT_ADDRESSES[1],
                message=_mail("haproxy-tcp-1"),
                expect_tls=True,
            ),
        ),
    ),
    Scenario(
        name="iptables-dkim-reset",
        description="A Linux packet filter (iptables string match, CONNMARK, REJECT "
        "tcp-reset) lets the segment carrying DKIM-Signature through, then answers every later "
        "packet of the connection with an RST: both ends reset, no NAT; the MTA does not use "
        "TLS.",
        server=Server.POSTFIX,
        behaviours=frozenset({Behaviour.STRING_RESET}),
        clients=(
            ClientAction(
                ClientKind.SMTPLIB,
                message=_mail("iptables-dkim-reset"),
                starttls=False,
                expect_outcome=Outcome.CONNECTION_RESET,
            ),
        ),
        expected_kinds=frozenset({Kind.RESET_INJECTED, Kind.RESET_AFTER_DKIM_HEADER}),
        tolerated_kinds=frozenset({Kind.DATA_MISSING}),
        forbidden_kinds=frozenset({Kind.TLS_DOWNGRADE, Kind.HEADER_LINE_TOO_LONG_DROP}),
        resets_by="middlebox",
    ),
    Scenario(
        name="bulk-identical",
        description=f"A list server's run: {BULK_SESSIONS} sessions carrying one message (same "
        f"Message-ID, size and EHLO name), {BULK_CONCURRENCY} in flight at once, client TCP "
        "timestamps off, NAT to random ports, ISNs randomized, no TLS; nothing changed.",
        server=Server.POSTFIX,
        behaviours=ASA,
        clients=tuple(
            ClientAction(ClientKind.SMTPLIB, message=_mail("bulk-identical"), starttls=False)
            for _ in range(BULK_SESSIONS)
        ),
        concurrency=BULK_CONCURRENCY,
        client_tcp_timestamps=False,
        forbidden_kinds=frozenset({Kind.TLS_DOWNGRADE}),
    ),
    Scenario(
        name="capture-late-start",
        description="The server-side capture starts while the first session is past EHLO "
        "(seen midstream there); the box masks EHLO keywords for the second client only.",
        server=Server.POSTFIX,
        behaviours=EHLO_MASK,
        tampered=frozenset({A.CLIENT_ADDRESSES[1]}),
        clients=(
            ClientAction(
                ClientKind.SMTPLIB,
                message=_mail("capture-late-start-0"),
                starttls=False,
                hold=HoldPoint.AFTER_EHLO,
            ),
            ClientAction(
                ClientKind.SMTPLIB,
                source=A.CLIENT_ADDRESSES[1],
                message=_mail("capture-late-start-1"),
            ),
            ClientAction(
                ClientKind.SMTPLIB,
                source=A.CLIENT_ADDRESSES[2],
                message=_mail("capture-late-start-2"),
                expect_tls=True,
            ),
        ),
        expected_kinds=DOWNGRADED,
        forbidden_kinds=frozenset(
            {Kind.DATA_MISSING, Kind.PAYLOAD_MODIFIED, Kind.COMMAND_REPLACED}
        ),
        accident=CaptureAccident(Side.SERVER, Accident.LATE_START),
    ),
    Scenario(
        name="capture-early-stop",
        description="The client-side capture stops while the second session is past RCPT "
        "(its DATA is on the server side only); the box masks EHLO keywords for the first "
        "client only.",
        server=Server.POSTFIX,
        behaviours=EHLO_MASK,
        tampered=frozenset({A.CLIENT_ADDRESSES[0]}),
        clients=(
            ClientAction(ClientKind.SMTPLIB, message=_mail("capture-early-stop-0")),
            ClientAction(
                ClientKind.SMTPLIB,
                source=A.CLIENT_ADDRESSES[1],
                message=_mail("capture-early-stop-1"),
                starttls=False,
                hold=HoldPoint.AFTER_RCPT,
            ),
        ),
        expected_kinds=DOWNGRADED,
        forbidden_kinds=frozenset(
            {Kind.DATA_MISSING, Kind.PAYLOAD_MODIFIED, Kind.COMMAND_REPLACED}
        ),
        accident=CaptureAccident(Side.CLIENT, Accident.EARLY_STOP),
    ),
    Scenario(
        name="snaplen-cut",
        description=f"The server side captured with tcpdump -s {SNAPLEN} (a few dozen payload "
        "bytes per packet); a PIX masks the banner for the first client only, STARTTLS used.",
        server=Server.POSTFIX,
        behaviours=ASA | {Behaviour.MASK_BANNER},
        tampered=frozenset({A.CLIENT_ADDRESSES[0]}),
        clients=(
            ClientAction(ClientKind.SMTPLIB, message=_mail("snaplen-cut-0"), expect_tls=True),
            ClientAction(
                ClientKind.SMTPLIB,
                source=A.CLIENT_ADDRESSES[1],
                message=_mail("snaplen-cut-1"),
                expect_tls=True,
            ),
        ),
        expected_kinds=frozenset({Kind.BANNER_MASKED}),
        forbidden_kinds=frozenset(
            {Kind.DATA_MISSING, Kind.PAYLOAD_MODIFIED, Kind.COMMAND_REPLACED}
        ),
        snaplen=(Side.SERVER, SNAPLEN),
    ),
)

BY_NAME = {s.name: s for s in SCENARIOS}
