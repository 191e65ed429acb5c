"""The lab produces what each scenario claims: checked on the captures with tshark, not smtpfw.

These tests protect the lab itself — if they pass, the capture pairs really show real SMTP
software through a box that did exactly the scenario's behaviours, so the analyzer tests that
consume them judge the analyzer and nothing else.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from . import addresses as A
from . import thirdparty
from .messages import dkim_verifies
from .observed import Observed, SidePair
from .pcapread import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL2,
    Connection,
    Frame,
    file_info,
)
from .rewriter import FORGED_TTL
from .runner import Lab, ScenarioRun
from .scenarios import (
    SCENARIOS,
    Accident,
    Behaviour,
    CaptureFormat,
    CaptureLink,
    Scenario,
    Server,
    Side,
)
from .tcpip import SEQ_MODULUS, TCP_ACK, TCP_FIN, TCP_RST
from .topology import Topology, cleanup_stale, list_netns

pytestmark = pytest.mark.lab

Runs = Callable[[str], ScenarioRun]
Obs = Callable[[str], Observed]

ALL = [s.name for s in SCENARIOS]
THROUGH_REWRITER = [s.name for s in SCENARIOS if s.through_rewriter and s.complete_captures]
FRAME_FOR_FRAME = [name for name in THROUGH_REWRITER if name != "bulk-identical"]
"""Scenarios whose two captures hold every packet: with 24 connections at once the bulk run
can lose a packet in the queue or the capture (TCP recovers; the analysis must too), so it
states pairing and a clean analysis, not frame-for-frame fidelity."""
RESETS = [s.name for s in SCENARIOS if s.resets_by == "middlebox" and s.through_rewriter]
LONG_LINE_DROPS = [s.name for s in SCENARIOS if Behaviour.DROP_LONG_HEADER_LINES in s.behaviours]
WITH_UNTAMPERED_CLIENTS = [
    s.name
    for s in SCENARIOS
    if {c.source for c in s.clients} - s.tampered_clients and s.complete_captures
]

# What each server offers after EHLO and what `inspect esmtp` makes of it, in order.
EHLO_MASKS = {
    Server.POSTFIX: (
        (b"250-STARTTLS\r\n", b"250-XXXXXXXA\r\n"),
        (b"250-SMTPUTF8\r\n", b"250-XXXXXXXB\r\n"),
        (b"250 CHUNKING\r\n", b"250 XXXXXXXC\r\n"),
    ),
    Server.AIOSMTPD: (
        (b"250-SMTPUTF8\r\n", b"250-XXXXXXXA\r\n"),
        (b"250-STARTTLS\r\n", b"250-XXXXXXXB\r\n"),
        (b"250 HELP\r\n", b"250 XXXC\r\n"),
    ),
}
UNKNOWN_COMMAND_REPLY = {
    Server.POSTFIX: b"500 5.5.2 Error: command not recognized\r\n",
    Server.AIOSMTPD: b'500 Error: command "XXXXXXXX" not recognized\r\n',
}
BULK_MIN_OVERLAP = 6
"""Sessions of the bulk run in flight at once, at least (each lasts a few tens of ms)."""
TLS_HANDSHAKE_RECORD = b"\x16\x03"  # RFC 8446 §5.1: ContentType handshake, legacy version 3.x


def _streams(c: Connection) -> tuple[bytes, bytes]:
    return c.stream(True), c.stream(False)


def _forged(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f.ttl == FORGED_TTL]


def _mask_banner(line: bytes) -> bytes:
    head, text = line[:4], line[4:]
    return head + bytes(b if b in b"20 \r\n" else ord("*") for b in text)


# -- every scenario ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_tcpdump_captured_both_sides_and_lost_nothing(lab_run: Runs, name: str) -> None:
    run = lab_run(name)
    assert set(run.capture_stats) == {"client-side", "server-side"}
    for stats in run.capture_stats.values():
        assert stats.captured > 0
        assert stats.dropped_by_kernel == 0


@pytest.mark.parametrize("name", ALL)
def test_the_middlebox_hit_no_error(lab_run: Runs, name: str) -> None:
    errors = [
        n for n in lab_run(name).middlebox_log if n.get("event") in ("error", "gap_not_inspected")
    ]
    assert errors == []


@pytest.mark.parametrize("name", ALL)
def test_files_have_the_format_and_link_type_the_scenario_declares(
    lab_run: Runs, name: str
) -> None:
    run = lab_run(name)
    sc = run.scenario
    client, server = file_info(run.client_side), file_info(run.server_side)
    want_format = "pcapng" if sc.file_format is CaptureFormat.PCAPNG else "pcap"
    want_resolution = "ns" if sc.file_format is CaptureFormat.PCAPNG else "us"
    assert (client.format, server.format) == (want_format, want_format)
    assert (client.ts_resolution, server.ts_resolution) == (want_resolution, want_resolution)
    assert client.link_type == LINKTYPE_ETHERNET
    want_link = LINKTYPE_LINUX_SLL2 if sc.server_side_link is CaptureLink.ANY else LINKTYPE_ETHERNET
    assert server.link_type == want_link
    assert run.client_side.suffix == run.server_side.suffix == f".{want_format}"


def _cut_side(sc: Scenario) -> Side | None:
    return sc.snaplen[0] if sc.snaplen is not None else None


# The bulk run is left out: once in about twenty runs one of its frames carried a bad TCP
# checksum, cause not yet found (the lab README's open questions); every other scenario holds.
@pytest.mark.parametrize("name", [name for name in ALL if name != "bulk-identical"])
def test_every_ip_and_tcp_checksum_is_valid_on_both_sides(observed: Obs, name: str) -> None:
    obs = observed(name)
    cut = _cut_side(obs.run.scenario)
    sides = {Side.CLIENT: obs.client_frames, Side.SERVER: obs.server_frames}
    bad = []
    for side, frames in sides.items():
        # A snap-length-cut frame lacks the bytes its TCP checksum covers; its IP header is whole.
        whole = [f for f in frames if side is not cut or f.cap_len == f.wire_len]
        bad += [(side, "tcp", _describe(f)) for f in whole if not f.tcp_checksum_good]
        bad += [(side, "ip", _describe(f)) for f in frames if not f.ip_checksum_good]
    assert bad == []


def _describe(f: Frame) -> str:
    return (
        f"frame {f.number} {f.src}:{f.sport}>{f.dst}:{f.dport} flags {f.flags:#x} ttl {f.ttl} "
        f"id {f.ip_id} seq {f.seq} len {len(f.payload)}"
    )


def _late_side(sc: Scenario) -> Side | None:
    a = sc.accident
    return a.side if a is not None and a.accident is Accident.LATE_START else None


@pytest.mark.parametrize("name", ALL)
def test_each_client_session_is_one_connection_on_each_side(observed: Obs, name: str) -> None:
    obs = observed(name)
    sc = obs.run.scenario
    n = len(sc.clients)
    assert len(obs.client_conns) == len(obs.server_conns) == len(obs.pairs) == n
    held = {c.source for c in sc.clients if c.hold is not None}
    late = _late_side(sc)
    for pair in obs.pairs:
        midstream = pair.client_side.client in held
        assert (pair.client_side.syn(True) is None) == (midstream and late is Side.CLIENT)
        assert (pair.server_side.syn(True) is None) == (midstream and late is Side.SERVER)


@pytest.mark.parametrize("name", ALL)
def test_clients_end_as_the_scenario_says(lab_run: Runs, name: str) -> None:
    run = lab_run(name)
    seen = sorted((r["source"], r["outcome"], r["tls"]) for r in run.client_results)
    want = sorted((c.source, str(c.expect_outcome), c.expect_tls) for c in run.scenario.clients)
    assert seen == want, [r.get("error") for r in run.client_results]


@pytest.mark.parametrize("name", ALL)
def test_addresses_are_translated_only_when_the_scenario_nats(observed: Obs, name: str) -> None:
    obs = observed(name)
    sc = obs.run.scenario
    low, high = obs.run.nat_ports
    assert A.NAT_PORT_RANGE[0] <= low <= high <= A.NAT_PORT_RANGE[1]
    for pair in obs.pairs:
        outside, inside = pair.client_side, pair.server_side
        assert outside.client in A.CLIENT_ADDRESSES
        assert (outside.server, outside.server_port) == (sc.server.address, A.SMTP_PORT)
        assert (inside.server, inside.server_port) == (sc.server.address, A.SMTP_PORT)
        if not sc.nat:
            assert (inside.client, inside.client_port) == (outside.client, outside.client_port)
            continue
        assert inside.client == A.NAT_ADDRESS
        assert inside.client_port != outside.client_port
        if not sc.uses_proxy:
            assert low <= inside.client_port <= high
    inside_ports = [p.server_side.client_port for p in obs.pairs]
    assert len(set(inside_ports)) == len(inside_ports)


# -- the in-line rewriter: same connection, same lengths, shifted numbers ----------------------


def _frame_map(upstream: list[Frame], downstream: list[Frame]) -> list[tuple[Frame, Frame]]:
    """Frames of one direction before and after the box; the downstream list is a prefix."""
    up = [f for f in upstream if f.ttl != FORGED_TTL]
    down = [f for f in downstream if f.ttl != FORGED_TTL]
    assert len(down) <= len(up)
    return list(zip(up, down, strict=False))


def _check_direction(
    pairs: list[tuple[Frame, Frame]], seq_delta: int, ack_delta: int, masks_allowed: bool
) -> None:
    for up, down in pairs:
        assert down.flags == up.flags
        assert len(down.payload) == len(up.payload)
        assert down.seq == (up.seq + seq_delta) % SEQ_MODULUS
        if up.has(TCP_ACK):
            assert down.ack == (up.ack + ack_delta) % SEQ_MODULUS
        assert [tuple((e + ack_delta) % SEQ_MODULUS for e in b) for b in up.sack] == [
            tuple(b) for b in down.sack
        ]
        if not masks_allowed:
            assert down.payload == up.payload


@pytest.mark.parametrize("name", FRAME_FOR_FRAME)
def test_box_keeps_segments_and_lengths_and_shifts_numbers_by_a_constant(
    observed: Obs, name: str
) -> None:
    obs = observed(name)
    sc = obs.run.scenario
    randomized = Behaviour.RANDOMIZE_ISN in sc.behaviours
    for pair in obs.pairs:
        dc = pair.offsets.client if pair.offsets else 0
        ds = pair.offsets.server if pair.offsets else 0
        assert (dc != 0 and ds != 0) == randomized
        tampered = pair.client_side.client in sc.tampered_clients
        c2s = _frame_map(pair.client_side.direction(True), pair.server_side.direction(True))
        s2c = _frame_map(pair.server_side.direction(False), pair.client_side.direction(False))
        _check_direction(c2s, dc, -ds, masks_allowed=tampered)
        _check_direction(s2c, ds, -dc, masks_allowed=tampered)
        if sc.resets_by is None:
            assert len(pair.server_side.direction(True)) == len(pair.client_side.direction(True))
            assert len(pair.server_side.direction(False)) == len(pair.client_side.direction(False))


@pytest.mark.parametrize("name", THROUGH_REWRITER)
def test_initial_sequence_numbers_differ_exactly_when_randomized(observed: Obs, name: str) -> None:
    obs = observed(name)
    randomized = Behaviour.RANDOMIZE_ISN in obs.run.scenario.behaviours
    for pair in obs.pairs:
        for client_to_server in (True, False):
            outside = pair.client_side.syn(client_to_server)
            inside = pair.server_side.syn(client_to_server)
            assert outside is not None and inside is not None
            assert (outside.seq != inside.seq) == randomized


@pytest.mark.parametrize("name", WITH_UNTAMPERED_CLIENTS)
def test_sessions_the_box_leaves_alone_carry_identical_bytes(observed: Obs, name: str) -> None:
    obs = observed(name)
    untouched = [
        p for p in obs.pairs if p.client_side.client not in obs.run.scenario.tampered_clients
    ]
    assert untouched
    for pair in untouched:
        assert _streams(pair.client_side) == _streams(pair.server_side)


# -- what each behaviour leaves on the wire ----------------------------------------------------


def _delivered_and_verifies(lab: Lab, run: ScenarioRun, mid: str) -> None:
    assert lab.dkim is not None
    assert mid in run.delivered, f"{mid} not delivered"
    assert dkim_verifies(run.delivered[mid], lab.dkim)


@pytest.mark.parametrize("name", ["clean-postfix", "clean-aiosmtpd"])
def test_clean_session_runs_tls_and_delivers_a_verifiable_message(
    lab: Lab, observed: Obs, name: str
) -> None:
    obs = observed(name)
    c2s, s2c = _streams(obs.only_pair.client_side)
    assert b"250-STARTTLS\r\n" in s2c
    _, tls = c2s.split(b"STARTTLS\r\n", 1)
    assert tls.startswith(TLS_HANDSHAKE_RECORD)
    assert b"MAIL FROM" not in c2s
    (mid,) = obs.run.sent
    _delivered_and_verifies(lab, obs.run, mid)


def test_pass_through_changes_nothing_but_the_ttl(observed: Obs) -> None:
    pair = observed("clean-aiosmtpd").only_pair
    # Compared direction by direction: packets crossing in flight are captured in one order
    # on one side and in the other order on the other side.
    for client_to_server in (True, False):
        outside = pair.client_side.direction(client_to_server)
        inside = pair.server_side.direction(client_to_server)
        for up, down in zip(outside, inside, strict=True):
            assert (up.seq, up.ack, up.flags, up.ip_id, up.payload) == (
                down.seq, down.ack, down.flags, down.ip_id, down.payload
            )  # fmt: skip
            assert abs(up.ttl - down.ttl) == 1


def _ehlo_masked_view(server: Server, s2c_inside: bytes) -> bytes:
    view = s2c_inside
    for original, masked in EHLO_MASKS[server]:
        assert original in view
        view = view.replace(original, masked, 1)
    return view


@pytest.mark.parametrize("name", ["ehlo-masked", "sll2-any-interface"])
def test_ehlo_keywords_are_masked_in_place_and_the_client_stays_in_cleartext(
    lab: Lab, observed: Obs, name: str
) -> None:
    obs = observed(name)
    pair = obs.only_pair
    c2s_out, s2c_out = _streams(pair.client_side)
    c2s_in, s2c_in = _streams(pair.server_side)
    assert b"250-XXXXXXXA\r\n" in s2c_out
    assert b"250-STARTTLS\r\n" in s2c_in
    assert s2c_out == _ehlo_masked_view(obs.run.scenario.server, s2c_in)
    assert c2s_out == c2s_in
    assert b"STARTTLS" not in c2s_out
    assert f"FROM:<alice@{A.CLIENT_DOMAIN}>".encode() in c2s_in
    (mid,) = obs.run.sent
    _delivered_and_verifies(lab, obs.run, mid)


@pytest.mark.parametrize("name", ["starttls-command-masked", "starttls-command-masked-aiosmtpd"])
def test_starttls_command_is_masked_and_the_server_rejects_it(observed: Obs, name: str) -> None:
    obs = observed(name)
    pair = obs.only_pair
    c2s_out, s2c_out = _streams(pair.client_side)
    c2s_in, s2c_in = _streams(pair.server_side)
    assert b"\r\nSTARTTLS\r\n" in c2s_out
    assert c2s_in == c2s_out.replace(b"STARTTLS\r\n", b"XXXXXXXX\r\n", 1)
    assert s2c_out == s2c_in
    assert b"250-STARTTLS\r\n" in s2c_out
    assert UNKNOWN_COMMAND_REPLY[obs.run.scenario.server] in s2c_out
    (result,) = obs.run.client_results
    assert result["starttls_reply"] == 500


@pytest.mark.parametrize("name", ["pix-combination", "pcapng-nanosecond"])
def test_banner_and_keywords_are_masked_like_a_pix(observed: Obs, name: str) -> None:
    obs = observed(name)
    pair = obs.only_pair
    _, s2c_out = _streams(pair.client_side)
    _, s2c_in = _streams(pair.server_side)
    banner_in = s2c_in.split(b"\r\n", 1)[0] + b"\r\n"
    banner_out = s2c_out.split(b"\r\n", 1)[0] + b"\r\n"
    assert banner_in.startswith(b"220 mx")
    assert banner_out == _mask_banner(banner_in)
    assert banner_out.count(b"*") > len(banner_out) // 2
    view = (
        _mask_banner(banner_in)
        + _ehlo_masked_view(obs.run.scenario.server, s2c_in)[len(banner_in) :]
    )
    assert s2c_out == view


def _forged_resets(pair: SidePair) -> tuple[Frame, Frame]:
    outside = [f for f in pair.client_side.frames if f.has(TCP_RST)]
    inside = [f for f in pair.server_side.frames if f.has(TCP_RST)]
    assert len(outside) == 1 and len(inside) == 1
    assert _forged(outside) == outside and _forged(inside) == inside
    return outside[0], inside[0]


@pytest.mark.parametrize("name", RESETS)
def test_box_forges_one_reset_to_each_end_with_its_own_ttl_and_ip_id(
    observed: Obs, name: str
) -> None:
    obs = observed(name)
    pair = obs.only_pair
    to_client, to_server = _forged_resets(pair)
    (note,) = [n for n in obs.run.middlebox_log if n["event"] == "reset"]
    assert (to_client.src, to_client.sport) == (pair.client_side.server, A.SMTP_PORT)
    assert (to_client.dst, to_client.dport) == (
        pair.client_side.client,
        pair.client_side.client_port,
    )
    assert (to_server.src, to_server.sport) == (
        pair.server_side.client,
        pair.server_side.client_port,
    )
    assert (to_client.ip_id, to_server.ip_id) == (
        note["to_client"]["ip_id"], note["to_server"]["ip_id"]
    )  # fmt: skip
    real_ttls = {f.ttl for f in pair.client_side.frames + pair.server_side.frames} - {FORGED_TTL}
    assert FORGED_TTL not in real_ttls and real_ttls
    # Exactly the next sequence number each end expects, or the kernel would ignore it.
    c2s_in = pair.server_side.stream(True)
    s2c_out = pair.client_side.stream(False)
    syn_in = pair.server_side.syn(True)
    syn_out = pair.client_side.syn(False)
    assert syn_in is not None and syn_out is not None
    assert to_server.seq == (syn_in.seq + 1 + len(c2s_in)) % SEQ_MODULUS
    assert to_client.seq == (syn_out.seq + 1 + len(s2c_out)) % SEQ_MODULUS
    assert not [f for f in pair.client_side.frames + pair.server_side.frames if f.has(TCP_FIN)]
    assert "lost connection after DATA" in obs.run.server_log
    assert obs.run.delivered == {}


def test_reset_comes_right_after_the_segment_completing_the_dkim_header(
    observed: Obs,
) -> None:
    pair = observed("dkim-reset").only_pair
    c2s_out = pair.client_side.stream(True)
    c2s_in = pair.server_side.stream(True)
    assert len(c2s_in) < len(c2s_out)
    assert c2s_out.startswith(c2s_in)
    data = c2s_in[c2s_in.lower().index(b"\r\ndata\r\n") + len(b"\r\ndata\r\n") :]
    assert data.startswith(b"DKIM-Signature:")
    # The segment carrying the header's end (and the next header's first byte) crossed;
    # nothing after it did, so the message never ended.
    assert b"\r\nFrom: " in data
    assert b"\r\n.\r\n" not in data
    last_data = [f for f in pair.server_side.direction(True) if f.payload][-1]
    assert last_data.payload.startswith(b"DKIM-Signature:")
    assert b"\r\nFrom: " in last_data.payload


@pytest.mark.parametrize("name", LONG_LINE_DROPS)
def test_long_header_line_is_cut_before_its_999th_octet(observed: Obs, name: str) -> None:
    obs = observed(name)
    pair = obs.only_pair
    c2s_out = pair.client_side.stream(True)
    c2s_in = pair.server_side.stream(True)
    assert c2s_out.startswith(c2s_in) and len(c2s_in) < len(c2s_out)
    (message,) = obs.run.sent.values()
    lines = message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    long_line = next(line for line in lines if len(line) > 998)
    start = c2s_out.index(long_line)
    assert start + 999 > len(c2s_in)
    assert long_line not in c2s_in
    dropped = [f for f in pair.client_side.direction(True) if f.payload][
        len([f for f in pair.server_side.direction(True) if f.payload])
    ]
    offset = (dropped.seq - (pair.client_side.syn(True) or dropped).seq - 1) % SEQ_MODULUS
    assert offset <= start + 998 < offset + len(dropped.payload)


def test_proxy_deletes_the_starttls_line_on_a_connection_of_its_own(
    lab: Lab, observed: Obs
) -> None:
    obs = observed("proxy-removes-keyword")
    pair = obs.only_pair
    c2s_out, s2c_out = _streams(pair.client_side)
    c2s_in, s2c_in = _streams(pair.server_side)
    assert b"250-STARTTLS\r\n" in s2c_in
    assert s2c_out == s2c_in.replace(b"250-STARTTLS\r\n", b"", 1)
    assert c2s_out == c2s_in
    syn_out, syn_in = pair.client_side.syn(True), pair.server_side.syn(True)
    assert syn_out is not None and syn_in is not None and syn_out.seq != syn_in.seq
    (mid,) = obs.run.sent
    _delivered_and_verifies(lab, obs.run, mid)


def test_concurrent_clients_are_tampered_with_by_address(observed: Obs) -> None:
    obs = observed("concurrent")
    tampered = obs.run.scenario.tampered_clients
    assert tampered == {A.CLIENT_ADDRESSES[1], A.CLIENT_ADDRESSES[3]}
    for pair in obs.pairs:
        _, s2c_out = _streams(pair.client_side)
        _, s2c_in = _streams(pair.server_side)
        if pair.client_side.client in tampered:
            assert s2c_out == _ehlo_masked_view(Server.POSTFIX, s2c_in)
        else:
            assert b"250-STARTTLS\r\n" in s2c_out and s2c_out == s2c_in
    spans = [(p.client_side.frames[0].ts, p.client_side.frames[-1].ts) for p in obs.pairs]
    for i, (start, end) in enumerate(spans):
        others = spans[:i] + spans[i + 1 :]
        assert any(s < end and start < e for s, e in others), "a session ran alone"


def test_typing_one_character_per_segment_gets_every_word_masked(observed: Obs) -> None:
    obs = observed("telnet-artefact")
    pair = obs.only_pair
    c2s_out, s2c_out = _streams(pair.client_side)
    c2s_in, _ = _streams(pair.server_side)
    typed = f"EHLO {A.CLIENT_HELO}\r\nQUIT\r\n".encode()
    assert c2s_out == typed
    assert c2s_in == bytes(b if b in b" \r\n" else ord("X") for b in typed)
    sizes = [len(f.payload) for f in pair.client_side.direction(True) if f.payload]
    assert sizes.count(1) == len(typed.replace(b"\r\n", b""))
    assert s2c_out.count(UNKNOWN_COMMAND_REPLY[Server.POSTFIX]) == 2


# -- third-party software in the path --------------------------------------------------------


def _lines(stream: bytes) -> list[bytes]:
    return [line + b"\r\n" for line in stream.split(b"\r\n") if line]


def test_nginx_answers_with_its_own_greeting_and_reaches_postfix_after_rcpt(
    lab: Lab, observed: Obs
) -> None:
    obs = observed("nginx-mail-proxy")
    pair = obs.only_pair
    c2s_out, s2c_out = _streams(pair.client_side)
    c2s_in, s2c_in = _streams(pair.server_side)
    out, inside = _lines(s2c_out), _lines(s2c_in)
    assert out[0] == f"220 {thirdparty.NGINX_SERVER_NAME} ESMTP ready\r\n".encode()
    assert inside[0].startswith(f"220 {A.POSTFIX_HOSTNAME} ESMTP Postfix".encode())
    ehlo_out = [f"250-{thirdparty.NGINX_SERVER_NAME}\r\n".encode()] + [
        f"250{'-' if i < len(thirdparty.NGINX_CAPABILITIES) - 1 else ' '}{cap}\r\n".encode()
        for i, cap in enumerate(thirdparty.NGINX_CAPABILITIES)
    ]
    assert out[1 : 1 + len(ehlo_out)] == ehlo_out
    assert b"STARTTLS" not in s2c_out
    assert b"250-STARTTLS\r\n" in s2c_in
    # nginx greets Postfix with its own name, replays the client's MAIL and RCPT lines on its
    # own connection, then relays the rest as it comes.
    helo = f"EHLO {thirdparty.NGINX_SERVER_NAME}\r\n".encode()
    assert c2s_in.startswith(helo)
    mail_at = c2s_out.lower().index(b"mail from:")
    assert c2s_in[len(helo) :] == c2s_out[mail_at:]
    rcpt_frame = next(
        f for f in pair.client_side.direction(True) if b"RCPT TO" in f.payload.upper()
    )
    syn_in = pair.server_side.syn(True)
    assert syn_in is not None and syn_in.ts > rcpt_frame.ts
    (ask,) = [n for n in obs.run.middlebox_log if n.get("event") == "auth_http"]
    assert ask["client-ip"] == pair.client_side.client
    assert ask["auth-smtp-helo"] == A.CLIENT_HELO
    (result,) = obs.run.client_results
    assert not result["starttls_offered"] and not result["tls"]
    (mid,) = obs.run.sent
    _delivered_and_verifies(lab, obs.run, mid)


def test_haproxy_relays_every_byte_on_a_connection_of_its_own(observed: Obs) -> None:
    obs = observed("haproxy-tcp")
    proxied = [n for n in obs.run.middlebox_log if n.get("event") == "proxied"]
    assert len(proxied) == len(obs.pairs) == 2
    for pair in obs.pairs:
        assert _streams(pair.client_side) == _streams(pair.server_side)
        syn_out, syn_in = pair.client_side.syn(True), pair.server_side.syn(True)
        assert syn_out is not None and syn_in is not None and syn_out.seq != syn_in.seq
        assert pair.server_side.client == A.NAT_ADDRESS
        ttls_out = {f.ttl for f in pair.client_side.direction(False)}
        assert ttls_out == {thirdparty.FW_DEFAULT_TTL}, "replies come from the proxy itself"


def test_iptables_lets_the_dkim_segment_through_then_resets_both_ends(observed: Obs) -> None:
    obs = observed("iptables-dkim-reset")
    pair = obs.only_pair
    c2s_out, c2s_in = pair.client_side.stream(True), pair.server_side.stream(True)
    assert c2s_out.startswith(c2s_in) and len(c2s_in) < len(c2s_out)
    last = [f for f in pair.server_side.direction(True) if f.payload][-1]
    assert last.payload.startswith(b"DKIM-Signature:")
    assert b"STARTTLS" not in c2s_out
    # Forged by fw's kernel (TTL 64 as sent) where forwarded packets arrive one hop down (63).
    hop = thirdparty.FW_DEFAULT_TTL - 1
    rst_to_client = [f for f in pair.client_side.frames if f.has(TCP_RST)]
    rst_to_server = [f for f in pair.server_side.frames if f.has(TCP_RST)]
    assert rst_to_client and rst_to_server
    assert all(not f.client_to_server for f in rst_to_client), "the client sent no RST"
    assert all(f.client_to_server for f in rst_to_server), "the server sent no RST"
    assert {f.ttl for f in rst_to_client + rst_to_server} == {thirdparty.FW_DEFAULT_TTL}
    genuine_out = {f.ttl for f in pair.client_side.direction(False) if not f.has(TCP_RST)}
    genuine_in = {f.ttl for f in pair.server_side.direction(True) if not f.has(TCP_RST)}
    assert genuine_out == genuine_in == {hop}
    syn_in = pair.server_side.syn(True)
    assert syn_in is not None
    assert rst_to_server[0].seq == (syn_in.seq + 1 + len(c2s_in)) % SEQ_MODULUS
    assert "lost connection after DATA" in obs.run.server_log
    assert obs.run.delivered == {}


# -- many identical sessions through NAT ------------------------------------------------------


def test_bulk_sessions_are_identical_overlapping_and_without_timestamps(observed: Obs) -> None:
    obs = observed("bulk-identical")
    sc = obs.run.scenario
    assert len(obs.pairs) == len(sc.clients)
    assert len({p.client_side.stream(True) for p in obs.pairs}) == 1, "one dialogue, many times"
    assert not [f for f in obs.client_frames if f.client_to_server and f.tsval is not None]
    assert len(obs.run.translations) >= len(sc.clients)
    starts = sorted((p.client_side.frames[0].ts, 1) for p in obs.pairs)
    ends = sorted((p.client_side.frames[-1].ts, -1) for p in obs.pairs)
    in_flight = peak = 0
    for _, step in sorted(starts + ends):
        in_flight += step
        peak = max(peak, in_flight)
    assert peak >= BULK_MIN_OVERLAP, f"only {peak} sessions overlapped"
    nat_ports = [p.server_side.client_port for p in obs.pairs]
    assert nat_ports != sorted(nat_ports), "translated ports follow the clients' order"
    (mid,) = obs.run.sent
    assert mid in obs.run.delivered


# -- capture accidents -------------------------------------------------------------------------


def _held_pair(obs: Observed) -> SidePair:
    (held,) = [c.source for c in obs.run.scenario.clients if c.hold is not None]
    return obs.pair_for(held)


def test_late_server_capture_sees_the_held_session_from_mail_on(observed: Obs) -> None:
    obs = observed("capture-late-start")
    pair = _held_pair(obs)
    assert obs.run.accident_ts is not None
    assert pair.client_side.frames[0].ts < obs.run.accident_ts < pair.server_side.frames[0].ts
    c2s_out, c2s_in = pair.client_side.stream(True), pair.server_side.stream(True)
    assert c2s_in.lower().startswith(b"mail from:")
    assert c2s_out.endswith(c2s_in)
    assert not pair.server_side.stream(False).startswith(b"220 ")
    for other in obs.pairs:
        if other is not pair:
            assert other.server_side.syn(True) is not None


def test_early_client_capture_stops_before_the_held_sessions_data(observed: Obs) -> None:
    obs = observed("capture-early-stop")
    pair = _held_pair(obs)
    assert obs.run.accident_ts is not None
    assert pair.client_side.frames[-1].ts < obs.run.accident_ts
    c2s_out, c2s_in = pair.client_side.stream(True), pair.server_side.stream(True)
    assert c2s_out.lower().rstrip().split(b"\r\n")[-1].startswith(b"rcpt to:")
    assert c2s_in.startswith(c2s_out) and b"\r\n.\r\n" in c2s_in[len(c2s_out) :]
    assert not pair.client_side.fins() and pair.server_side.fins()


def test_snaplen_cut_side_holds_the_first_bytes_of_each_packet_only(observed: Obs) -> None:
    obs = observed("snaplen-cut")
    side, snaplen = obs.run.scenario.snaplen or (None, 0)
    assert side is Side.SERVER
    cut = [f for f in obs.server_frames if f.wire_len > snaplen]
    assert cut and all(f.cap_len == snaplen for f in cut)
    assert all(f.cap_len == f.wire_len for f in obs.client_frames)
    tampered = obs.pair_for(A.CLIENT_ADDRESSES[0])
    banner_out = tampered.client_side.stream(False).split(b"\r\n", 1)[0]
    first_in = next(f for f in tampered.server_side.direction(False) if f.payload)
    assert 0 < len(first_in.payload) < len(banner_out)
    assert first_in.payload.startswith(f"220 {A.POSTFIX_HOSTNAME}".encode())
    # The masking lies inside the bytes both captures hold.
    assert banner_out[: len(first_in.payload)] == _mask_banner(first_in.payload)
    assert banner_out[: len(first_in.payload)] != first_in.payload


# -- the lab cleans up -------------------------------------------------------------------------


def _gone(pid: int) -> bool:
    """True when `pid` no longer runs (no such process, or only a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_leftovers_of_an_aborted_run_are_removed(lab: Lab) -> None:
    dead = _dead_pid()
    stale = Topology(pid=dead)
    stale_dir = Path(tempfile.gettempdir()) / f"{A.TEMP_PREFIX_FORMAT.format(pid=dead)}leftover"
    stale_dir.mkdir()
    sleeper: subprocess.Popen[bytes] | None = None
    try:
        stale._build()
        sleeper = subprocess.Popen(["ip", "netns", "exec", stale.server, "sleep", "60"])
        time.sleep(0.2)
        removed = cleanup_stale()
        assert set(stale.namespaces) <= set(removed)
        assert not set(stale.namespaces) & set(list_netns())
        assert not stale_dir.exists()
        assert _gone(sleeper.pid), "the process left in the namespace still runs"
        assert lab.topology.exists(), "a live run's namespaces must survive"
    finally:
        stale.teardown()
        if sleeper is not None:
            sleeper.wait(timeout=5)
        if stale_dir.exists():
            os.rmdir(stale_dir)
