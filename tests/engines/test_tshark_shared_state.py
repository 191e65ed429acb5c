"""Where the tshark engine once read replies differently from the observer, and now shares its
command queue (`analyzer.smtp.pending`): the same crafted conversation gives the same session
through both engines.

The engine's own copy of the queue took every reply for the oldest waiting command, with no
regard to what a capture lost or a server left out. (A reply lost in a server-side capture gap
is not among the cases: after the hole Wireshark 4.0 shows no more of the server's SMTP.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import read_sessions
from analyzer.engines.tshark import read_sessions_tshark
from analyzer.session.model import EndReason

from ..craft import MESSAGE, MESSAGE_SIZE, Conversation
from .conftest import comparable, needs_tshark

pytestmark = [pytest.mark.tshark, needs_tshark]


def _pipelined(server_after_data: list[bytes]) -> Conversation:
    """Greeting and EHLO, then MAIL, RCPT and DATA pipelined (RFC 2920), each in its own
    segment, before the server says `server_after_data`; then the message, its 250, QUIT."""
    conv = Conversation().handshake()
    conv.send("server", b"220 mx.example.net ESMTP\r\n")
    conv.send("client", b"EHLO client.example.org\r\n")
    conv.send("server", b"250-mx.example.net\r\n250 PIPELINING\r\n")
    conv.send(
        "client",
        b"MAIL FROM:<alice@example.org>\r\n",
        b"RCPT TO:<bob@example.net>\r\n",
        b"DATA\r\n",
    )
    conv.send("server", *server_after_data)
    conv.send("client", MESSAGE + b".\r\n")
    conv.send("server", b"250 2.0.0 Ok: queued\r\n")
    conv.send("client", b"QUIT\r\n")
    conv.send("server", b"221 2.0.0 Bye\r\n")
    return conv.close()


def test_pipelined_replies_in_step_read_the_same(tmp_path: Path) -> None:
    """The control: every pipelined command gets its reply."""
    path = _pipelined([b"250 2.1.0 Ok\r\n", b"250 2.1.5 Ok\r\n", b"354 Go ahead\r\n"]).write(
        tmp_path / "pipelined.pcap"
    )
    (native,) = read_sessions(path)
    (tshark,) = read_sessions_tshark([path])
    assert comparable(tshark) == comparable(native)
    assert [t.complete for t in tshark.transactions] == [True]
    assert "replies_out_of_step" not in tshark.anomaly_kinds


def test_a_missing_reply_under_pipelining_resynchronises_both_engines_alike(
    tmp_path: Path,
) -> None:
    """The reply to RCPT never comes (a middlebox that swallowed it, or a server that merged
    it): after MAIL's 250 the next reply is 354, which only DATA can get (RFC 5321 §4.3.2).
    Both engines resynchronise on DATA, say so (`replies_out_of_step`) and read the message.
    (The engine's old copy of the queue gave the 354 to RCPT, never opened the message and
    lost it: no size, no Message-ID, not complete.)"""
    path = _pipelined([b"250 2.1.0 Ok\r\n", b"354 Go ahead\r\n"]).write(
        tmp_path / "reply-missing.pcap"
    )
    (native,) = read_sessions(path)
    (tshark,) = read_sessions_tshark([path])

    (txn,) = native.transactions
    assert txn.complete and txn.size == MESSAGE_SIZE and txn.reply_code == 250
    assert txn.message_id == "<test-1@example.org>"
    assert native.end_reason is EndReason.QUIT
    assert "replies_out_of_step" in native.anomaly_kinds
    assert comparable(tshark) == comparable(native)
    assert "replies_out_of_step" in tshark.anomaly_kinds
