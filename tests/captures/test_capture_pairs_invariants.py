"""Invariants of the capture generator, for any input: whatever a dialogue says, both captures
reassemble to exactly the streams it promises; the firewall's byte edits keep lengths where
they should; frames decode the same in scapy as they were meant."""

from __future__ import annotations

import itertools
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pairs_support import connections, read_pcap, sibling
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

dialogues = sibling("_dialogues")
tcp = sibling("_tcp")
Peer = dialogues.Peer
SEGMENT = tcp.SEGMENT_PAYLOAD


@st.composite
def dialogue(draw: st.DrawFn) -> object:
    """A random script: writes by either side, some rewritten in place, some cut by a reset."""
    script = dialogues.Script(SEGMENT)
    count = draw(st.integers(1, 7))
    for n in range(count):
        sender = draw(st.sampled_from([Peer.SERVER, Peer.CLIENT]))
        data = draw(st.binary(min_size=1, max_size=4 * SEGMENT + 100))
        think = draw(st.integers(0, 60_000))
        breaks = draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=2))
        last = n == count - 1
        if last and draw(st.booleans()):
            cut = draw(st.integers(0, len(data) - 1))
            script.write(sender, data, think, breaks=breaks, drop_from=cut)
            return script.done(None)
        delivered = bytes((b + 1) % 256 for b in data) if draw(st.booleans()) else None
        script.write(sender, data, think, delivered=delivered, breaks=breaks)
    return script.done(draw(st.sampled_from([Peer.SERVER, Peer.CLIENT])))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(dialogue(), min_size=1, max_size=3),
    st.lists(st.integers(0, 400_000), min_size=3, max_size=3),
    st.integers(0, 2**32),
)
def test_any_dialogue_reassembles_to_its_promised_streams_on_both_sides(
    scripts: list[object], gaps: list[int], seed: int
) -> None:
    conns = []
    start = 1_700_000_000_000_000
    for i, script in enumerate(scripts):
        start += gaps[i]
        conns.append(tcp.Connection(script, start, 40000 + i, 61000 + i))
    pair = tcp.simulate(conns, random.Random(seed))
    # Simultaneous SYNs may reach the inside in another order: match connections by port.
    out = {c.client[1]: c for c in connections(read_pcap(pair.client_side))}
    ins = {c.client[1]: c for c in connections(read_pcap(pair.server_side))}
    assert len(out) == len(ins) == len(scripts)
    for n, script in enumerate(scripts):
        o, i = out[40000 + n], ins[61000 + n]
        assert (o.c2s, o.s2c) == (
            script.outside().client_to_server,
            script.outside().server_to_client,
        )
        assert (i.c2s, i.s2c) == (
            script.inside().client_to_server,
            script.inside().server_to_client,
        )
        assert any(p.rst for p in o.packets) is script.reset
        assert any(p.rst for p in i.packets) is script.reset


@given(st.integers(1, 20_000), st.integers(1, 2_000), st.lists(st.integers(-5, 20_005)))
def test_segments_cover_the_write_never_exceed_the_size_and_end_at_each_break(
    length: int, size: int, breaks: list[int]
) -> None:
    points = dialogues.split_points(length, size, breaks)
    assert points[0] == 0 and points[-1] == length
    assert all(0 < b - a <= size for a, b in itertools.pairwise(points))
    assert {b for b in breaks if 0 < b < length} <= set(points)


@given(st.binary(max_size=200))
def test_banner_masking_keeps_length_and_only_2_0_space_and_line_ends(line: bytes) -> None:
    masked = dialogues.mask_banner(line)
    assert len(masked) == len(line)
    for before, after in zip(line, masked, strict=True):
        assert after == (before if before in b"20 \r\n" else ord("*"))


KEYWORDS = [
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
    "AUTH PLAIN LOGIN",
    "HELP",
    "XCLIENT",
]


@given(st.lists(st.sampled_from(KEYWORDS), min_size=1, max_size=8, unique=True))
def test_keyword_masking_keeps_length_and_letters_the_unknown_ones_in_order(
    keywords: list[str],
) -> None:
    reply = dialogues.POSTFIX.ehlo_reply(keywords)
    masked = dialogues.mask_ehlo_keywords(reply)
    assert len(masked) == len(reply)
    letters = iter("ABCDEFGH")
    for kw, line in zip(keywords, masked.split(b"\r\n")[1:], strict=False):
        text = line[4:].decode()
        if kw.split()[0] in dialogues.PIX_KNOWN_EHLO_KEYWORDS:
            assert text == kw
        else:
            assert text == "X" * (len(kw) - 1) + next(letters)


@given(st.lists(st.sampled_from(KEYWORDS), min_size=2, max_size=8, unique=True))
def test_keyword_removal_shortens_the_reply_by_exactly_one_line(keywords: list[str]) -> None:
    victim = keywords[0]  # never the last line
    reply = dialogues.POSTFIX.ehlo_reply(keywords)
    shorter = dialogues.remove_ehlo_keyword(reply, victim.split()[0])
    assert len(reply) - len(shorter) == len(f"250-{victim}\r\n")
    assert shorter == reply.replace(f"250-{victim}\r\n".encode(), b"", 1)


@given(
    seq=st.integers(0, 2**32 - 1),
    ack=st.integers(0, 2**32 - 1),
    flags=st.sampled_from([0x02, 0x12, 0x10, 0x18, 0x11, 0x14]),
    window=st.integers(0, 0xFFFF),
    ttl=st.integers(1, 255),
    ip_id=st.integers(0, 0xFFFF),
    tsval=st.none() | st.integers(0, 2**32 - 1),
    payload=st.binary(max_size=1500),
)
def test_frames_decode_in_scapy_as_they_were_meant(
    seq: int,
    ack: int,
    flags: int,
    window: int,
    ttl: int,
    ip_id: int,
    tsval: int | None,
    payload: bytes,
) -> None:
    syn = bool(flags & 0x02)
    options = tcp.tcp_options(mss=1380 if syn else None, tsval=tsval if not syn else 7, syn=syn)
    frame = tcp.Frame(
        ts_us=0, order=0, pid=0, conn=0, c2s=True, offset=0,
        src_mac=bytes.fromhex("020000000001"), dst_mac=bytes.fromhex("020000000002"),
        src_ip="198.51.100.25", dst_ip="203.0.113.10", ttl=ttl, dont_fragment=True,
        sport=40001, dport=25, seq=seq, ack=ack, flags=flags, window=window,
        options=options, payload=payload, tsval=tsval,
    )  # fmt: skip
    data = tcp.encode_frame(frame, ip_id)
    pkt = Ether(data)
    ip, seg = pkt[IP], pkt[TCP]
    assert (ip.src, ip.dst, ip.ttl, ip.id, ip.flags.DF) == (
        "198.51.100.25",
        "203.0.113.10",
        ttl,
        ip_id,
        True,
    )
    assert (seg.sport, seg.dport, seg.seq, seg.ack, int(seg.flags), seg.window) == (
        40001,
        25,
        seq,
        ack,
        flags,
        window,
    )
    assert bytes(seg.payload) == payload
    opts = dict(seg.options)
    if syn:
        assert opts["MSS"] == 1380 and opts["WScale"] == 7 and "SAckOK" in opts
    if tsval is not None and not syn:
        assert opts["Timestamp"][0] == tsval
    recomputed = Ether(data)
    del recomputed[IP].chksum, recomputed[TCP].chksum
    again = Ether(bytes(recomputed))
    assert (again[IP].chksum, again[TCP].chksum) == (ip.chksum, seg.chksum)
