"""Every sample pair looks like two real captures of one firewall: NAT, randomized ISNs, clamped
MSS, untouched TCP timestamps, per-side TTLs and MACs, per-host IP-IDs, a clock offset, and
different packet boundaries around identical streams."""

from __future__ import annotations

import functools
import itertools
import statistics
from collections import Counter

import pytest
from pairs_support import CAPTURES, Conn, Pkt, connections, load_generator, read_pcap

gen = load_generator()
NAMES = list(gen.SCENARIOS)
TOPO = gen.TOPOLOGY
OFFSET_US = TOPO.clock_offset_us


@functools.cache
def scenario(name: str):  # type: ignore[no-untyped-def]
    return gen.SCENARIOS[name]()


@functools.cache
def side(name: str, filename: str) -> tuple[list[Pkt], list[Conn]]:
    packets = read_pcap((CAPTURES / name / filename).read_bytes())
    return packets, connections(packets)


def outside(name: str) -> tuple[list[Pkt], list[Conn]]:
    return side(name, gen.CLIENT_SIDE)


def inside(name: str) -> tuple[list[Pkt], list[Conn]]:
    return side(name, gen.SERVER_SIDE)


def paired(name: str) -> list[tuple[Pkt, Pkt, bool]]:
    """Packets seen on both sides, matched by sender and IP-ID (which the firewall keeps):
    (outside copy, inside copy, sent by the client)."""
    pairs = []
    for o_conn, i_conn in zip(outside(name)[1], inside(name)[1], strict=True):
        index = {(i_conn.from_client(p), p.ip_id): p for p in i_conn.packets if p.ttl != 255}
        for p in o_conn.packets:
            if p.ttl == 255:
                continue
            q = index.get((o_conn.from_client(p), p.ip_id))
            if q is not None:
                pairs.append((p, q, o_conn.from_client(p)))
    return pairs


@pytest.mark.parametrize("name", NAMES)
def test_each_session_reassembles_to_its_intended_dialogue_on_both_sides(name: str) -> None:
    plans = scenario(name).sessions
    out_conns, in_conns = outside(name)[1], inside(name)[1]
    assert len(out_conns) == len(in_conns) == len(plans) >= 3
    for plan, o, i in zip(plans, out_conns, in_conns, strict=True):
        c = plan.connection
        assert o.client == (TOPO.client_ip, c.client_port)
        assert o.server == (TOPO.server_public_ip, c.server_port)
        assert i.client == (TOPO.nat_client_ip, c.nat_port)
        assert i.server == (TOPO.server_ip, c.server_port)
        assert (o.c2s, o.s2c) == (
            plan.client_side.client_to_server,
            plan.client_side.server_to_client,
        ), plan.label
        assert (i.c2s, i.s2c) == (
            plan.server_side.client_to_server,
            plan.server_side.server_to_client,
        ), plan.label


def test_client_ports_look_ephemeral_and_nat_ports_are_high() -> None:
    for name in NAMES:
        for plan in scenario(name).sessions:
            assert 40000 <= plan.connection.client_port <= 49999
            assert 61000 <= plan.connection.nat_port <= 64999


@pytest.mark.parametrize("name", NAMES)
def test_isns_differ_per_side_by_a_constant_per_direction(name: str) -> None:
    for o, i in zip(outside(name)[1], inside(name)[1], strict=True):
        delta_client = (i.client_isn - o.client_isn) % 2**32
        delta_server = (i.server_isn - o.server_isn) % 2**32
        assert delta_client and delta_server and delta_client != delta_server
    removed = len(b"250-STARTTLS\r\n")
    for p, q, from_client in paired(name):
        conn_o = next(c for c in outside(name)[1] if p in c.packets)
        conn_i = next(c for c in inside(name)[1] if q in c.packets)
        isn_o = conn_o.client_isn if from_client else conn_o.server_isn
        isn_i = conn_i.client_isn if from_client else conn_i.server_isn
        shift = ((q.seq - isn_i) - (p.seq - isn_o)) % 2**32
        if name == "proxy-token-removed" and not from_client and shift:
            assert shift == removed  # server bytes after the removed line moved up 14 places
        else:
            assert shift == 0, (p.frame, q.frame)


@pytest.mark.parametrize("name", NAMES)
def test_tcp_timestamps_cross_the_firewall_untouched(name: str) -> None:
    pairs = paired(name)
    assert len(pairs) > 20
    for p, q, _ in pairs:
        assert p.tsval is not None
        assert (p.tsval, p.tsecr) == (q.tsval, q.tsecr)


@pytest.mark.parametrize("name", NAMES)
def test_ttls_and_macs_tell_which_box_sent_each_frame(name: str) -> None:
    for p in outside(name)[0]:
        from_client = p.src == TOPO.client_ip
        if p.rst:
            assert (p.ttl, p.src_mac, p.df, p.has_options) == (
                255,
                TOPO.fw_outside_mac,
                False,
                False,
            )
        elif from_client:
            assert (p.ttl, p.src_mac, p.dst_mac) == (64, TOPO.client_mac, TOPO.fw_outside_mac)
        else:
            assert (p.ttl, p.src_mac, p.dst_mac) == (63, TOPO.fw_outside_mac, TOPO.client_mac)
    for p in inside(name)[0]:
        from_client = p.src == TOPO.nat_client_ip
        if p.rst:
            assert (p.ttl, p.src_mac, p.df, p.has_options) == (
                255,
                TOPO.fw_inside_mac,
                False,
                False,
            )
        elif from_client:
            assert (p.ttl, p.src_mac, p.dst_mac) == (63, TOPO.fw_inside_mac, TOPO.server_mac)
        else:
            assert (p.ttl, p.src_mac, p.dst_mac) == (64, TOPO.server_mac, TOPO.fw_inside_mac)


@pytest.mark.parametrize("name", NAMES)
def test_ip_ids_count_up_per_host(name: str) -> None:
    # Each capture host sees its own packets in sending order: one counter across sessions.
    ids = [p.ip_id for p in outside(name)[0] if p.src == TOPO.client_ip]
    assert all((b - a) % 2**16 == 1 for a, b in itertools.pairwise(ids))
    ids = [p.ip_id for p in inside(name)[0] if p.src == TOPO.server_ip]
    assert all((b - a) % 2**16 == 1 for a, b in itertools.pairwise(ids))
    # The firewall's forged RSTs use its own counter on both sides.
    forged = sorted(p.ip_id for p in outside(name)[0] + inside(name)[0] if p.rst)
    assert all((b - a) % 2**16 == 1 for a, b in itertools.pairwise(forged))


@pytest.mark.parametrize("name", NAMES)
def test_server_side_clock_runs_ahead_and_each_packet_takes_a_few_ms(name: str) -> None:
    forward, backward = [], []
    for p, q, from_client in paired(name):
        if from_client:
            forward.append(q.ts_us - p.ts_us)  # in transit outside → inside, plus the offset
        else:
            backward.append(p.ts_us - q.ts_us)
    assert all(OFFSET_US + 500 <= d <= OFFSET_US + 5_000 for d in forward)
    assert all(-OFFSET_US + 500 <= d <= -OFFSET_US + 5_000 for d in backward)
    estimate = (statistics.median(forward) - statistics.median(backward)) / 2 / 1e6
    assert estimate == pytest.approx(37.4, abs=0.05)


@pytest.mark.parametrize("name", NAMES)
def test_timestamps_have_microseconds_and_never_go_back(name: str) -> None:
    for packets in (outside(name)[0], inside(name)[0]):
        stamps = [p.ts_us for p in packets]
        assert stamps == sorted(stamps)
        assert any(t % 1000 for t in stamps)


@pytest.mark.parametrize("name", NAMES)
def test_firewall_clamps_the_mss_of_both_syns(name: str) -> None:
    for o, i in zip(outside(name)[1], inside(name)[1], strict=True):
        o_syn, o_synack = [p for p in o.packets if p.syn]
        i_syn, i_synack = [p for p in i.packets if p.syn]
        assert (o_syn.mss, i_syn.mss) == (1460, 1380)
        assert (i_synack.mss, o_synack.mss) == (1460, 1380)


@pytest.mark.parametrize("name", NAMES)
def test_segments_fit_the_clamped_mss_except_merged_receives(name: str) -> None:
    full = 1380 - 12  # the timestamp option takes 12 bytes of each segment
    assert max(len(p.payload) for p in outside(name)[0]) <= full
    for p in inside(name)[0]:
        limit = 2 * full if p.src == TOPO.nat_client_ip else full
        assert len(p.payload) <= limit


def test_the_server_side_cuts_some_streams_at_other_places() -> None:
    merged = Counter(name for name in NAMES for p in inside(name)[0] if len(p.payload) > 1368)
    assert sum(merged.values()) >= 5
    assert len(merged) >= 3


@pytest.mark.parametrize("name", NAMES)
def test_sessions_overlap_in_time(name: str) -> None:
    spans = [(c.packets[0].ts_us, c.packets[-1].ts_us) for c in outside(name)[1]]
    assert any(a_start < b_start < a_end for a_start, a_end in spans for b_start, _ in spans)


@pytest.mark.parametrize("name", NAMES)
def test_each_connection_starts_with_a_handshake_and_ends_in_fin_or_a_forged_reset(
    name: str,
) -> None:
    for plan, o, i in zip(scenario(name).sessions, outside(name)[1], inside(name)[1], strict=True):
        for conn in (o, i):
            first = [p.flags for p in conn.packets[:3]]
            assert first == [0x02, 0x12, 0x10]
            fins = [p for p in conn.packets if p.fin]
            rsts = [p for p in conn.packets if p.rst]
            if plan.connection.dialogue.reset:
                assert not fins and len(rsts) == 1
                assert rsts[0].ttl == 255
                assert not conn.from_client(rsts[0]) if conn is o else conn.from_client(rsts[0])
            else:
                assert not rsts
                assert {conn.from_client(p) for p in fins} == {True, False}
                assert conn.packets[-1].flags == 0x10  # the last ACK of the FIN exchange
