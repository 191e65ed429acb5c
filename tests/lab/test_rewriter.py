"""The emulated PIX/ASA engine rewrites like the box it imitates (no root, no network needed).

A `Wire` plays both TCP ends against `rewriter.Middlebox`: each end numbers its own bytes and
acknowledges what it received, and every verdict is applied as the kernel would apply it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .proxy import strip_keywords
from .rewriter import (
    ALLOWED_EHLO_KEYWORDS,
    FORGED_TTL,
    Action,
    Middlebox,
    MiddleboxConfig,
    Policy,
    Verdict,
)
from .tcpip import (
    IPPROTO_TCP,
    SEQ_MODULUS,
    TCP_ACK,
    TCP_OPT_SACK,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    TcpPacket,
    build_segment,
    internet_checksum,
    parse,
    rewrite,
    shift_sack_blocks,
)

CLIENT, CPORT, SERVER, SPORT = "198.51.100.10", 50123, "192.0.2.25", 25
BANNER = b"220 mx.lab.example ESMTP Postfix (Debian/GNU)\r\n"
POSTFIX_EHLO = (
    b"250-mx.lab.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n"
    b"250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
    b"250 CHUNKING\r\n"
)
POSTFIX_EHLO_MASKED = (
    POSTFIX_EHLO.replace(b"STARTTLS", b"XXXXXXXA")
    .replace(b"SMTPUTF8", b"XXXXXXXB")
    .replace(b"CHUNKING", b"XXXXXXXC")
)
EHLO_MASK = Policy(randomize_isn=True, mask_ehlo_keywords=True)
PIX = Policy(randomize_isn=True, mask_banner=True, mask_ehlo_keywords=True, mask_commands=True)
DKIM_HEADER = (
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d=client.example;\r\n"
    b" s=lab2024; h=from : to; bh=abc=;\r\n b=xyz=\r\n"
)


@dataclass
class Wire:
    """Both ends of one connection through the box, with what each end received."""

    policy: Policy
    box: Middlebox = field(init=False)
    c_next: int = 1_000_000  # client's next sequence number (its own space)
    s_next: int = 4_000_000_000  # server's, close to the wrap on purpose
    c_acked: int = 0  # what the client acknowledges (client-side view of server bytes)
    s_acked: int = 0  # what the server acknowledges (server-side view of client bytes)
    at_client: bytearray = field(default_factory=bytearray)
    at_server: bytearray = field(default_factory=bytearray)
    client_packets: list[TcpPacket] = field(default_factory=list)
    server_packets: list[TcpPacket] = field(default_factory=list)
    injected: list[TcpPacket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.box = Middlebox(MiddleboxConfig(default=self.policy, seed=7))

    def _deliver(self, verdict: Verdict, original: bytes, to_server: bool) -> TcpPacket | None:
        self.injected += [p for p in map(parse, verdict.inject) if p is not None]
        if verdict.action is Action.DROP:
            return None
        pkt = parse(verdict.packet or original)
        assert pkt is not None
        (self.server_packets if to_server else self.client_packets).append(pkt)
        (self.at_server if to_server else self.at_client).extend(pkt.payload)
        return pkt

    def handshake(self) -> None:
        syn = build_segment(src=CLIENT, dst=SERVER, sport=CPORT, dport=SPORT,
                            seq=self.c_next, ack=0, flags=TCP_SYN)  # fmt: skip
        out = self._deliver(self.box.handle(syn), syn, True)
        assert out is not None
        self.c_next += 1
        self.s_acked = (out.seq + 1) % SEQ_MODULUS
        synack = build_segment(src=SERVER, dst=CLIENT, sport=SPORT, dport=CPORT,
                               seq=self.s_next, ack=self.s_acked,
                               flags=TCP_SYN | TCP_ACK)  # fmt: skip
        out = self._deliver(self.box.handle(synack), synack, False)
        assert out is not None
        self.s_next = (self.s_next + 1) % SEQ_MODULUS
        self.c_acked = (out.seq + 1) % SEQ_MODULUS

    def client_sends(self, data: bytes, seq: int | None = None) -> Verdict:
        raw = build_segment(src=CLIENT, dst=SERVER, sport=CPORT, dport=SPORT,
                            seq=self.c_next if seq is None else seq, ack=self.c_acked,
                            flags=TCP_ACK | TCP_PSH, payload=data)  # fmt: skip
        verdict = self.box.handle(raw)
        out = self._deliver(verdict, raw, True)
        if seq is None:
            self.c_next = (self.c_next + len(data)) % SEQ_MODULUS
        if out is not None:
            self.s_acked = (out.seq + len(out.payload)) % SEQ_MODULUS
        return verdict

    def server_sends(self, data: bytes) -> Verdict:
        raw = build_segment(src=SERVER, dst=CLIENT, sport=SPORT, dport=CPORT,
                            seq=self.s_next, ack=self.s_acked, flags=TCP_ACK | TCP_PSH,
                            payload=data)  # fmt: skip
        verdict = self.box.handle(raw)
        out = self._deliver(verdict, raw, False)
        self.s_next = (self.s_next + len(data)) % SEQ_MODULUS
        if out is not None:
            self.c_acked = (out.seq + len(out.payload)) % SEQ_MODULUS
        return verdict

    def until_data(self, server_ehlo: bytes = POSTFIX_EHLO) -> None:
        """Handshake, banner, EHLO, MAIL, RCPT, DATA and the 354."""
        self.handshake()
        self.server_sends(BANNER)
        for command, reply in (
            (b"EHLO mta.client.example\r\n", server_ehlo),
            (b"MAIL FROM:<a@client.example>\r\n", b"250 2.1.0 Ok\r\n"),
            (b"RCPT TO:<b@lab.example>\r\n", b"250 2.1.5 Ok\r\n"),
            (b"DATA\r\n", b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        ):
            self.client_sends(command)
            self.server_sends(reply)


def _valid_checksums(pkt: TcpPacket) -> bool:
    ip = pkt.raw[: pkt.ip_header_len]
    segment = pkt.raw[pkt.ip_header_len :]
    pseudo = ip[12:20] + bytes([0, IPPROTO_TCP]) + len(segment).to_bytes(2, "big")
    return internet_checksum(ip) == 0 and internet_checksum(pseudo + segment) == 0


# -- packets -----------------------------------------------------------------------------------


@given(
    payload=st.binary(max_size=300),
    seq=st.integers(0, SEQ_MODULUS - 1),
    delta=st.integers(0, SEQ_MODULUS - 1),
)
def test_rewritten_packets_keep_valid_checksums(payload: bytes, seq: int, delta: int) -> None:
    raw = build_segment(src=CLIENT, dst=SERVER, sport=CPORT, dport=SPORT, seq=seq, ack=seq,
                        flags=TCP_ACK, payload=payload)  # fmt: skip
    pkt = parse(raw)
    assert pkt is not None and _valid_checksums(pkt) and pkt.payload == payload
    new = parse(rewrite(pkt, seq_delta=delta, ack_delta=-delta, payload=bytes(len(payload))))
    assert new is not None and _valid_checksums(new)
    assert new.seq == (seq + delta) % SEQ_MODULUS
    assert new.ack == (seq - delta) % SEQ_MODULUS


@given(
    edges=st.lists(st.integers(0, SEQ_MODULUS - 1), min_size=2, max_size=8).filter(
        lambda e: len(e) % 2 == 0
    ),
    delta=st.integers(0, SEQ_MODULUS - 1),
)
def test_sack_edges_move_by_the_offset_and_back(edges: list[int], delta: int) -> None:
    option = bytes([TCP_OPT_SACK, 2 + 4 * len(edges)]) + b"".join(
        e.to_bytes(4, "big") for e in edges
    )
    options = b"\x01\x01" + option
    moved = shift_sack_blocks(options, delta)
    assert [int.from_bytes(moved[4 + 4 * i : 8 + 4 * i], "big") for i in range(len(edges))] == [
        (e + delta) % SEQ_MODULUS for e in edges
    ]
    assert shift_sack_blocks(moved, SEQ_MODULUS - delta) == options


@given(st.binary(max_size=120))
def test_the_box_never_raises_on_arbitrary_packets(raw: bytes) -> None:
    box = Middlebox(MiddleboxConfig(default=PIX))
    verdict = box.handle(raw)
    assert verdict.action in (Action.ACCEPT, Action.DROP)


def test_a_policy_that_does_nothing_leaves_packets_untouched() -> None:
    wire = Wire(Policy())
    wire.handshake()
    verdict = wire.server_sends(BANNER + POSTFIX_EHLO)
    assert verdict.packet is None and verdict.action is Action.ACCEPT
    assert bytes(wire.at_client) == BANNER + POSTFIX_EHLO


# -- sequence numbers --------------------------------------------------------------------------


def test_isn_offsets_are_constant_per_direction_and_acks_shift_back() -> None:
    wire = Wire(EHLO_MASK)
    wire.handshake()
    c_syn_in = wire.server_packets[0]
    s_syn_out = wire.client_packets[0]
    conn = next(iter(wire.box.connections.values()))
    assert conn.dc and conn.ds
    assert c_syn_in.seq == (1_000_000 + conn.dc) % SEQ_MODULUS
    assert s_syn_out.seq == (4_000_000_000 + conn.ds) % SEQ_MODULUS
    for i in range(5):
        wire.client_sends(b"NOOP\r\n")
        wire.server_sends(b"250 2.0.0 Ok\r\n")
        sent, got = wire.server_packets[-1], wire.client_packets[-1]
        assert sent.seq == (wire.c_next - 6 + conn.dc) % SEQ_MODULUS
        assert got.seq == (wire.s_next - 14 + conn.ds) % SEQ_MODULUS, i
        # The server acknowledges exactly what it got; the client sees its own numbers back.
        assert got.ack == wire.c_next


def test_sack_blocks_are_moved_into_the_receivers_numbering() -> None:
    wire = Wire(EHLO_MASK)
    wire.handshake()
    conn = next(iter(wire.box.connections.values()))
    left, right = wire.c_acked + 100, wire.c_acked + 200
    sack = bytes([1, 1, TCP_OPT_SACK, 10]) + left.to_bytes(4, "big") + right.to_bytes(4, "big")
    raw = build_segment(src=CLIENT, dst=SERVER, sport=CPORT, dport=SPORT, seq=wire.c_next,
                        ack=wire.c_acked, flags=TCP_ACK, options=sack)  # fmt: skip
    out = parse(wire.box.handle(raw).packet or raw)
    assert out is not None and _valid_checksums(out)
    edges = [int.from_bytes(out.options[4 + 4 * i : 8 + 4 * i], "big") for i in range(2)]
    assert edges == [(left - conn.ds) % SEQ_MODULUS, (right - conn.ds) % SEQ_MODULUS]


# -- inspect esmtp ----------------------------------------------------------------------------


def test_unknown_ehlo_keywords_become_xs_with_a_counting_letter() -> None:
    wire = Wire(EHLO_MASK)
    wire.handshake()
    wire.server_sends(BANNER)
    wire.client_sends(b"EHLO mta.client.example\r\n")
    wire.server_sends(POSTFIX_EHLO)
    assert bytes(wire.at_client) == BANNER + POSTFIX_EHLO_MASKED
    assert bytes(wire.at_server) == b"EHLO mta.client.example\r\n"


def test_masking_applies_to_the_ehlo_reply_only() -> None:
    wire = Wire(EHLO_MASK)
    wire.handshake()
    wire.server_sends(BANNER)
    wire.client_sends(b"HELP\r\n")
    wire.server_sends(b"214-STARTTLS is a keyword\r\n214 2.0.0 Ok\r\n")
    assert bytes(wire.at_client).endswith(b"214-STARTTLS is a keyword\r\n214 2.0.0 Ok\r\n")


def test_banner_keeps_only_2_0_and_space() -> None:
    wire = Wire(PIX)
    wire.handshake()
    wire.server_sends(BANNER)
    assert bytes(wire.at_client) == b"220 ************** ***** ******* ************\r\n"


def test_disallowed_commands_are_overwritten_and_allowed_ones_pass() -> None:
    wire = Wire(PIX)
    wire.handshake()
    wire.server_sends(BANNER)
    wire.client_sends(b"EHLO mta.client.example\r\n")
    wire.server_sends(POSTFIX_EHLO)
    wire.client_sends(b"STARTTLS\r\n")
    wire.server_sends(b"500 5.5.2 Error: command not recognized\r\n")
    wire.client_sends(b"mail FROM:<a@client.example>\r\nBDAT 10 LAST\r\n")
    assert bytes(wire.at_server) == (
        b"EHLO mta.client.example\r\nXXXXXXXX\r\nmail FROM:<a@client.example>\r\nXXXX 10 LAST\r\n"
    )


def test_typing_one_character_per_segment_masks_every_word() -> None:
    wire = Wire(PIX)
    wire.handshake()
    wire.server_sends(BANNER)
    for ch in b"EHLO x.example":
        wire.client_sends(bytes([ch]))
    wire.client_sends(b"\r\n")
    assert bytes(wire.at_server) == b"XXXX XXXXXXXXX\r\n"


def test_nothing_is_inspected_once_tls_started() -> None:
    wire = Wire(Policy(mask_ehlo_keywords=True, reset_after_dkim_header=True))
    wire.handshake()
    wire.server_sends(BANNER)
    wire.client_sends(b"STARTTLS\r\n")
    wire.server_sends(b"220 2.0.0 Ready to start TLS\r\n")
    wire.client_sends(b"EHLO inside-tls\r\n")
    wire.server_sends(b"250-mx\r\n250-STARTTLS\r\n250 CHUNKING\r\n")
    wire.client_sends(b"DATA\r\n")
    wire.server_sends(b"354 go\r\n")
    verdict = wire.client_sends(DKIM_HEADER + b"From: a@client.example\r\n")
    assert verdict.inject == ()
    assert bytes(wire.at_client).endswith(b"250-mx\r\n250-STARTTLS\r\n250 CHUNKING\r\n354 go\r\n")


def test_a_retransmission_is_rewritten_like_the_first_copy() -> None:
    wire = Wire(EHLO_MASK)
    wire.handshake()
    wire.server_sends(BANNER)
    wire.client_sends(b"EHLO mta.client.example\r\n")
    first = wire.s_next
    wire.server_sends(POSTFIX_EHLO)
    raw = build_segment(src=SERVER, dst=CLIENT, sport=SPORT, dport=CPORT, seq=first,
                        ack=wire.s_acked, flags=TCP_ACK | TCP_PSH,
                        payload=POSTFIX_EHLO)  # fmt: skip
    again = parse(wire.box.handle(raw).packet or raw)
    assert again is not None
    assert again.payload == POSTFIX_EHLO_MASKED
    assert again.seq == wire.client_packets[-1].seq


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, len(POSTFIX_EHLO) - 1), max_size=12, unique=True))
def test_any_segmentation_keeps_lengths_and_touches_only_unknown_keywords(
    cuts: list[int],
) -> None:
    wire = Wire(EHLO_MASK)
    wire.handshake()
    wire.server_sends(BANNER)
    wire.client_sends(b"EHLO mta.client.example\r\n")
    bounds = [0, *sorted(cuts), len(POSTFIX_EHLO)]
    for a, b in itertools.pairwise(bounds):
        wire.server_sends(POSTFIX_EHLO[a:b])
    seen = bytes(wire.at_client)[len(BANNER) :]
    assert len(seen) == len(POSTFIX_EHLO)
    for original, masked in zip(POSTFIX_EHLO.split(b"\r\n"), seen.split(b"\r\n"), strict=True):
        keyword = original[4:].split(b" ")[0].decode()
        if original.startswith(b"250-mx") or keyword in ALLOWED_EHLO_KEYWORDS:
            assert masked == original
        else:
            assert masked[:4] == original[:4]
            assert set(masked[4:]) - set(original[4:]) <= set(b"XABC")
    line_cuts = {i + 2 for i in range(len(POSTFIX_EHLO)) if POSTFIX_EHLO[i : i + 2] == b"\r\n"}
    if set(cuts) <= line_cuts:
        assert seen == POSTFIX_EHLO_MASKED


# -- teardown by the box ----------------------------------------------------------------------


def _assert_forged_resets(wire: Wire, server_next: int) -> None:
    to_client, to_server = wire.injected
    assert to_client.has(TCP_RST) and to_server.has(TCP_RST)
    assert to_client.ttl == to_server.ttl == FORGED_TTL
    assert to_client.ip_id != to_server.ip_id
    assert (to_client.src, to_client.dst, to_client.sport, to_client.dport) == (
        SERVER, CLIENT, SPORT, CPORT
    )  # fmt: skip
    assert (to_server.src, to_server.dst) == (CLIENT, SERVER)
    # Each RST carries exactly the sequence number its receiver expects next.
    assert to_server.seq == server_next
    assert to_client.seq == wire.c_acked
    assert _valid_checksums(to_client) and _valid_checksums(to_server)


def test_dkim_signature_header_gets_its_segment_delivered_then_both_ends_reset() -> None:
    wire = Wire(Policy(randomize_isn=True, reset_after_dkim_header=True))
    wire.until_data()
    verdict = wire.client_sends(DKIM_HEADER + b"From: a@client.example\r\n")
    assert verdict.action is Action.ACCEPT
    assert bytes(wire.at_server).endswith(b"From: a@client.example\r\n")
    _assert_forged_resets(wire, wire.s_acked)
    assert wire.client_sends(b"To: b@lab.example\r\n").action is Action.DROP
    assert wire.server_sends(b"250 ok\r\n").action is Action.DROP


def test_dkim_reset_waits_for_the_first_byte_of_the_next_header() -> None:
    wire = Wire(Policy(reset_after_dkim_header=True))
    wire.until_data()
    assert wire.client_sends(DKIM_HEADER).inject == ()
    verdict = wire.client_sends(b"From: a@client.example\r\n")
    assert verdict.action is Action.ACCEPT and len(verdict.inject) == 2


def test_other_headers_and_dkim_in_the_body_do_not_reset() -> None:
    wire = Wire(Policy(reset_after_dkim_header=True))
    wire.until_data()
    verdict = wire.client_sends(
        b"From: a@client.example\r\nSubject: DKIM-Signature: no\r\n\r\n" + DKIM_HEADER
        + b"body\r\n.\r\n"
    )  # fmt: skip
    assert verdict.inject == () and verdict.action is Action.ACCEPT


@pytest.mark.parametrize("length", [998, 999])
def test_a_header_line_over_998_octets_drops_the_segment_and_resets(length: int) -> None:
    wire = Wire(Policy(randomize_isn=True, drop_long_header_lines=True))
    wire.until_data()
    line = b"X-Long: " + b"a" * (length - 8) + b"\r\n"
    before = len(wire.at_server)
    expected_next = wire.s_acked
    verdict = wire.client_sends(b"From: a@client.example\r\n" + line)
    if length == 998:
        assert verdict.action is Action.ACCEPT and verdict.inject == ()
        return
    assert verdict.action is Action.DROP
    assert len(wire.at_server) == before
    _assert_forged_resets(wire, expected_next)


def test_a_long_body_line_is_only_noted() -> None:
    wire = Wire(Policy(drop_long_header_lines=True))
    wire.until_data()
    verdict = wire.client_sends(b"From: a@client.example\r\n\r\n" + b"b" * 1200 + b"\r\n")
    assert verdict.action is Action.ACCEPT and verdict.inject == ()
    assert [n["event"] for n in verdict.notes] == ["long_body_line"]


# -- the proxy ---------------------------------------------------------------------------------


def test_proxy_deletes_a_middle_keyword_line() -> None:
    reply = [line + b"\r\n" for line in POSTFIX_EHLO.split(b"\r\n")[:-1]]
    kept, removed = strip_keywords(reply, frozenset({"STARTTLS"}))
    assert removed == ["STARTTLS"]
    assert b"".join(kept) == POSTFIX_EHLO.replace(b"250-STARTTLS\r\n", b"")


def test_proxy_fixes_the_separator_when_the_last_line_goes() -> None:
    reply = [b"250-mx2.lab.example\r\n", b"250-SIZE 1000\r\n", b"250 STARTTLS\r\n"]
    kept, _ = strip_keywords(reply, frozenset({"STARTTLS"}))
    assert kept == [b"250-mx2.lab.example\r\n", b"250 SIZE 1000\r\n"]
