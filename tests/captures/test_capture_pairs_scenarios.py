"""In each sample pair, the bytes that differ between the two sides are exactly the ones the
scenario is about, and only the sessions it names are touched.

The streams come from the committed files, reassembled by the test reader; the expectations are
written out here by hand, independently of the generator's rewriting helpers."""

from __future__ import annotations

import functools

from pairs_support import CAPTURES, Conn, connections, load_generator, read_pcap

gen = load_generator()

POSTFIX_BANNER = b"220 mx.example.net ESMTP Postfix\r\n"
PIX_MASKED_BANNER = b"220 ************** ***** *******\r\n"


@functools.cache
def pair(name: str) -> list[tuple[Conn, Conn, bool]]:
    """(client-side connection, server-side connection, tampered) per session."""
    out = connections(read_pcap((CAPTURES / name / gen.CLIENT_SIDE).read_bytes()))
    ins = connections(read_pcap((CAPTURES / name / gen.SERVER_SIDE).read_bytes()))
    plans = gen.SCENARIOS[name]().sessions
    return [(o, i, p.tampered) for o, i, p in zip(out, ins, plans, strict=True)]


def identical(o: Conn, i: Conn) -> bool:
    return o.c2s == i.c2s and o.s2c == i.s2c


def ehlo_reply(stream: bytes) -> bytes:
    start = stream.index(b"250-")
    end = stream.index(b"\r\n", stream.index(b"\r\n250 ", start) + 2) + 2
    return stream[start:end]


def test_every_tampered_scenario_also_has_untouched_sessions() -> None:
    for name in gen.SCENARIOS:
        sessions = pair(name)
        untouched = [identical(o, i) and not o_rst(o) for o, i, _ in sessions]
        tampered = [t for _, _, t in sessions]
        assert untouched == [not t for t in tampered], name
        if name != "clean-starttls":
            assert any(tampered) and not all(tampered), name


def o_rst(conn: Conn) -> bool:
    return any(p.rst for p in conn.packets)


def test_clean_starttls_sessions_are_identical_and_run_tls() -> None:
    for o, i, _ in pair("clean-starttls"):
        assert identical(o, i)
        assert b"250-STARTTLS\r\n" in o.s2c and b"220 2.0.0 Ready to start TLS\r\n" in o.s2c
        hello = o.c2s[o.c2s.index(b"STARTTLS\r\n") + 10 :]
        assert hello[:1] == b"\x16" and hello[5:6] == b"\x01"  # handshake record: ClientHello
        assert b"MAIL FROM" not in o.c2s  # the envelope travels encrypted


def test_pix_masks_unknown_ehlo_keywords_in_place_and_the_mail_goes_in_cleartext() -> None:
    for o, i, tampered in pair("pix-starttls-masked"):
        assert o.c2s == i.c2s
        if not tampered:
            assert o.s2c == i.s2c and b"HELO" in o.c2s
            continue
        assert len(o.s2c) == len(i.s2c)
        expected = (
            i.s2c.replace(b"250-STARTTLS\r\n", b"250-XXXXXXXA\r\n")
            .replace(b"250-SMTPUTF8\r\n", b"250-XXXXXXXB\r\n")
            .replace(b"250 CHUNKING\r\n", b"250 XXXXXXXC\r\n")
        )
        assert o.s2c == expected
        assert b"STARTTLS" not in o.c2s and b"MAIL FROM:<" in o.c2s


def test_esa_sees_xxxxxxxx_and_answers_500_the_client_sees_xxxxxxxa() -> None:
    sessions = pair("esa-starttls-xxxxxxxx")
    for o, i, tampered in sessions:
        assert i.s2c.startswith(b"220 esa.example.com ESMTP\r\n")
        if not tampered:
            assert identical(o, i)
            continue
        assert o.s2c == i.s2c.replace(b"250 STARTTLS\r\n", b"250 XXXXXXXA\r\n", 1)
        assert i.c2s == o.c2s.replace(b"STARTTLS\r\n", b"XXXXXXXX\r\n", 1)
        assert b"500 #5.5.1 command not recognized\r\n" in o.s2c
    fallback, _, required = sessions
    assert b"MAIL FROM:<" in fallback[0].c2s and b"354 go ahead" in fallback[0].s2c
    assert required[0].c2s.endswith(b"STARTTLS\r\nQUIT\r\n")


def test_banner_masked_except_2_0_and_space_while_port_587_is_untouched() -> None:
    for o, i, tampered in pair("banner-masked"):
        assert o.c2s == i.c2s
        assert i.s2c.startswith(POSTFIX_BANNER)
        if tampered:
            assert i.server[1] == 25
            assert o.s2c == PIX_MASKED_BANNER + i.s2c[len(POSTFIX_BANNER) :]
        else:
            assert i.server[1] == 587 and o.s2c == i.s2c


def _after_data(stream: bytes) -> bytes:
    return stream[stream.rindex(b"DATA\r\n") + 6 :]


def test_pix_resets_right_after_a_signature_header() -> None:
    cut = []
    for o, i, tampered in pair("pix-dkim-reset"):
        assert o.s2c == i.s2c
        if not tampered:
            assert o.c2s == i.c2s and not o_rst(o) and not o_rst(i)
            continue
        assert o.c2s.startswith(i.c2s) and len(o.c2s) > len(i.c2s)
        crossed = _after_data(i.c2s)
        name = crossed.split(b":", 1)[0]
        cut.append(name)
        # Exactly one complete header field crossed: the signature, with its folded lines.
        assert crossed.endswith(b"\r\n") and _after_data(o.c2s)[len(crossed) :][:1] not in b" \t"
        assert all(line[:1] in (b" ", b"\t") for line in crossed.split(b"\r\n")[1:-1])
        assert b"b=" in crossed
        for conn, from_server in ((o, True), (i, False)):
            (rst,) = [p for p in conn.packets if p.rst]
            assert conn.from_client(rst) is not from_server and rst.ttl == 255
            assert rst is conn.packets[-1]
    assert sorted(cut) == [b"DKIM-Signature", b"DomainKey-Signature"]


def test_header_line_over_998_bytes_never_reaches_the_server() -> None:
    def longest_line(stream: bytes) -> int:
        return max(len(line) for line in _after_data(stream).split(b"\r\n")[:-1])

    dropped = 0
    for o, i, tampered in pair("long-header-drop"):
        assert o.s2c == i.s2c
        if not tampered:
            assert o.c2s == i.c2s and longest_line(o.c2s) <= 998
            continue
        dropped += 1
        assert o.c2s.startswith(i.c2s) and len(o.c2s) > len(i.c2s)
        assert longest_line(o.c2s) > 998
        # What crossed ends before the line's 999th byte; no complete long line got through.
        assert all(len(line) <= 998 for line in _after_data(i.c2s).split(b"\r\n"))
        assert [p.ttl for p in o.packets + i.packets if p.rst] == [255, 255]
    assert dropped == 2


def test_telnet_keystrokes_are_masked_one_segment_at_a_time() -> None:
    sessions = pair("interactive-telnet")
    (o, i, _) = next(s for s in sessions if s[2])
    keys = [p.payload for p in o.packets if p.payload and o.from_client(p)]
    assert all(len(k) == 1 or k == b"\r\n" for k in keys) and len(keys) > 20
    assert o.c2s.startswith(b"EHLO mail.example.org\r\n")
    assert i.c2s == bytes(b if b in b"\r\n" else ord("X") for b in o.c2s)
    assert o.s2c == i.s2c and o.s2c.count(b"500 5.5.2 Error: command not recognized") == 3
    for o, i, tampered in sessions:
        if not tampered:
            assert identical(o, i) and b"STARTTLS\r\n" in o.c2s


def test_proxy_deletes_the_starttls_line_so_the_client_stream_is_shorter() -> None:
    for o, i, tampered in pair("proxy-token-removed"):
        assert o.c2s == i.c2s
        if not tampered:
            assert o.s2c == i.s2c
            continue
        assert b"250-STARTTLS\r\n" in ehlo_reply(i.s2c)
        assert o.s2c == i.s2c.replace(b"250-STARTTLS\r\n", b"", 1)
        assert len(i.s2c) - len(o.s2c) == 14


def test_old_pix_turns_ehlo_into_noop_and_masks_the_banner() -> None:
    (o, i, _), (o2, i2, _), (o3, i3, _) = pair("old-pix-noop")
    assert i.c2s == o.c2s.replace(b"EHLO mail.example.org\r\n", b"NOOP mail.example.org\r\n", 1)
    assert i.s2c.startswith(POSTFIX_BANNER + b"250 2.0.0 Ok\r\n")
    assert o.s2c == PIX_MASKED_BANNER + i.s2c[len(POSTFIX_BANNER) :]
    assert b"SIZE=" not in o.c2s  # no extensions seen: plain MAIL FROM
    assert o2.c2s == i2.c2s and o2.s2c == PIX_MASKED_BANNER + i2.s2c[len(POSTFIX_BANNER) :]
    assert identical(o3, i3) and i3.server[1] == 587
