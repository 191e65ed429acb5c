"""Where Wireshark 4.0's SMTP dissector is wrong, the tshark engine is wrong with it.

Each test crafts the smallest conversation that shows one known fault, asserts what the native
engine sees (the RFC reading) and asserts the tshark engine's different reading. These are
statements of a known disagreement, not skips: if a Wireshark release fixes the fault, the
test fails and the note can go.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from analyzer import read_sessions
from analyzer.engines.tshark import read_sessions_tshark
from analyzer.session.model import EndReason, SmtpSession

from ..craft import MESSAGE, MESSAGE_SIZE, TLS_CLIENT_HELLO, Conversation, smtp_dialogue
from .conftest import comparable, needs_tshark

pytestmark = [pytest.mark.tshark, needs_tshark]


def _both(path: Path) -> tuple[SmtpSession, SmtpSession]:
    (native,) = read_sessions(path)
    (tshark,) = read_sessions_tshark([path])
    return native, tshark


def test_message_end_in_one_segment_reads_the_same(tmp_path: Path) -> None:
    """The control for the next test: the end mark in one piece, both engines agree."""
    path = smtp_dialogue([MESSAGE + b".\r\n"]).write(tmp_path / "whole.pcap")
    native, tshark = _both(path)
    assert comparable(tshark) == comparable(native)
    (txn,) = tshark.transactions
    assert txn.complete and txn.size == MESSAGE_SIZE
    assert txn.message_id == "<test-1@example.org>"
    assert tshark.end_reason is EndReason.QUIT


def test_end_mark_whose_last_octet_is_a_segment_of_its_own_is_missed_by_wireshark(
    tmp_path: Path,
) -> None:
    """`<CRLF>.<CR>` in one segment and the final `<LF>` alone in the next: Wireshark's SMTP
    dissector never sees the end of the data, so it takes the QUIT that follows for more
    message text. The native engine finds the mark across the two segments."""
    path = smtp_dialogue([MESSAGE + b".\r", b"\n"]).write(tmp_path / "split-eom.pcap")
    native, tshark = _both(path)

    (native_txn,) = native.transactions
    assert native_txn.complete
    assert native_txn.size == MESSAGE_SIZE
    assert native_txn.reply_code == 250
    assert native.end_reason is EndReason.QUIT

    (tshark_txn,) = tshark.transactions
    assert not tshark_txn.complete  # the end mark was never recognised
    assert tshark_txn.reply_code == 250  # the server's 250 still ended the message
    assert "data_without_end" in tshark.anomaly_kinds
    assert not any(line.verb == "QUIT" for line in tshark.lines)  # QUIT read as mail data
    assert tshark.end_reason is EndReason.FIN
    # The headers were read all the same.
    assert tshark_txn.message_id == native_txn.message_id == "<test-1@example.org>"


def test_command_after_the_end_mark_in_the_same_segment_is_missed_by_wireshark(
    tmp_path: Path,
) -> None:
    """A client that pipelines QUIT right behind `<CRLF>.<CRLF>` (RFC 2920 allows it): the
    dissector ends the message but does not dissect the rest of the segment."""
    path = smtp_dialogue([MESSAGE + b".\r\nQUIT\r\n"], after_data=[]).write(
        tmp_path / "quit-after-mark.pcap"
    )
    native, tshark = _both(path)
    assert native.end_reason is EndReason.QUIT
    assert tshark.end_reason is EndReason.FIN
    assert [t.complete for t in tshark.transactions] == [True]
    assert [t.size for t in tshark.transactions] == [t.size for t in native.transactions]


def test_reply_line_cut_by_a_segment_boundary_is_cut_by_wireshark(tmp_path: Path) -> None:
    """`250-PIPEL` | `INING` ...: the dissector only joins a line split across segments when
    the segment holds nothing but that line's start; here it takes `PIPEL` as the keyword and
    skips the rest of the line."""
    path = smtp_dialogue(
        [MESSAGE + b".\r\n"],
        ehlo_reply=[b"250-mx.example.net\r\n250-PIPEL", b"INING\r\n250 8BITMIME\r\n"],
    ).write(tmp_path / "split-reply.pcap")
    native, tshark = _both(path)
    assert native.ehlo_keywords == ("PIPELINING", "8BITMIME")
    assert tshark.ehlo_keywords == ("PIPEL", "8BITMIME")


def test_command_typed_one_character_per_segment_is_joined_by_wireshark(
    tmp_path: Path,
) -> None:
    """The case the dissector's line reassembly does handle (an interactive telnet test):
    both engines read the HELO, at the same stream offset."""
    conv = Conversation().handshake()
    conv.send("server", b"220 mx.example.net ESMTP\r\n")
    conv.send("client", *(bytes([c]) for c in b"HELO typing.example.org\r\n"))
    conv.send("server", b"250 mx.example.net\r\n")
    path = conv.close().write(tmp_path / "typed.pcap")
    native, tshark = _both(path)
    assert comparable(tshark) == comparable(native)
    assert tshark.helo == "typing.example.org"
    (helo,) = [line for line in tshark.lines if line.verb == "HELO"]
    (native_helo,) = [line for line in native.lines if line.verb == "HELO"]
    assert helo.offset == native_helo.offset == 0


def test_starttls_verb_is_read_from_the_whole_command_line(tmp_path: Path) -> None:
    """Wireshark 4.0 cuts command verbs at four characters (`smtp.req.command` is `STAR`, the
    parameter `TLS`); the engine reads the verb from `smtp.command_line`, so STARTTLS and the
    TLS that follows are seen as the native engine sees them."""
    conv = Conversation().handshake()
    conv.send("server", b"220 mx.example.net ESMTP\r\n")
    conv.send("client", b"EHLO client.example.org\r\n")
    conv.send("server", b"250-mx.example.net\r\n250 STARTTLS\r\n")
    conv.send("client", b"STARTTLS\r\n")
    conv.send("server", b"220 2.0.0 Ready to start TLS\r\n")
    conv.send("client", TLS_CLIENT_HELLO)
    path = conv.close().write(tmp_path / "starttls.pcap")

    tshark_bin = shutil.which("tshark")
    assert tshark_bin is not None
    verbs = subprocess.run(
        [
            tshark_bin,
            "-n",
            "-r",
            str(path),
            "-Y",
            "smtp.req",
            "-T",
            "fields",
            "-e",
            "smtp.req.command",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert verbs == ["EHLO", "STAR"]

    native, tshark = _both(path)
    assert comparable(tshark) == comparable(native)
    tls = tshark.starttls
    assert (tls.advertised, tls.attempted, tls.reply_code, tls.established) == (
        True,
        True,
        220,
        True,
    )
    assert tshark.tls_bytes[0] == len(TLS_CLIENT_HELLO)
