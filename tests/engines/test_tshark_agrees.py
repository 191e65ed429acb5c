"""Both engines give the same sessions on the sample captures and on real captures of peers.

Compared per session: id (`<capture>#<tcp.stream>`), client, server, HELO/EHLO name, EHLO
keywords, STARTTLS (advertised, attempted, reply code, established), and per transaction
MAIL FROM, RCPT TO, Message-ID, size, whether the end mark was seen, the final reply code and
whether it was DKIM-signed, and how the session ended.

The real captures below are the ones where Wireshark 4.0's SMTP dissector reads the
conversation as the RFCs do. Captures left out, and why (each is Wireshark's reading, not a
bug of either engine; `test_tshark_disagrees` shows the general cases on crafted captures):

- client bytes sent before the server's greeting are taken as mail data
  (arkime smtp-subject-windows, smtp-subject-multi-nospace, smtp-moloch-bof);
- after a DATA that the server refused (503/554) the dissector stays in mail data
  (suricata-verify smtp-data-rejected, smtp-to-comma, ruletype-firewall-133,
  smtp-ehlo-reset-after-rejected-data);
- a BDAT command with its chunk in the same segment, or with a size it cannot read, is taken
  as mail data, and so is everything after it (suricata-verify bug-7126, smtp-bdat-*-next-mail,
  smtp-bdat-bad-tail-*, smtp-bdat-multichunk-inspection; zeek smtp-bdat-cmd-*,
  smtp-bdat-pipeline-8bitmime, smtp-bdat-gap);
- MAIL, RCPT, DATA and the message pipelined in one segment are all taken as mail data
  (suricata-verify smtp-pipelining, smtp-pipelined-rset-data-replies);
- commands in the same segment after the end-of-data mark are not dissected, so a QUIT there
  is not seen (arkime smtp-subject-utf8-q, suricata-verify bug-1045, smtp-errors);
- a segment captured after the ACK that acknowledges it is flagged a spurious retransmission
  and not dissected (suricata-verify issue-4220-01-ids: the 250 replies to HELO and MAIL);
- after `AUTH LOGIN` and a 334 challenge the client's next line is a SASL response
  (RFC 4954 §4); Wireshark reads a `QUIT` there as a command (suricata-verify
  smtp-long-command);
- SMTP tunnelled through an HTTP CONNECT: the native pipeline reads the tunnel; Wireshark hands
  it to its SMTP dissector with client and server swapped, and the engine does not read tunnels
  (zeek connect-with-smtp);
- captures of loose packets that are not one conversation (pcapplusplus Smtp.pcap,
  arkime smtp-html.pcap, smtp-nospaces.pcap).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import read_sessions

from .conftest import REALWORLD, TsharkViews, comparable, needs_tshark, sample_captures

pytestmark = [pytest.mark.tshark, needs_tshark]

REAL_CAPTURES = (
    "zeek/traces/smtp.pcap",
    "zeek/traces/tls/smtp-starttls.pcap",
    "zeek/traces/smtp-one-side-only.pcap",
    "zeek/traces/smtp/rfc3030-bdat-multipart-chunked.pcap",
    "zeek/traces/smtp/mime-header-size-limit.pcap.gz",
    "zeek/traces/communityid/ipv6.pcap",
    "ndpi/tests/cfgs/default/pcap/smtp-starttls.pcap",
    "mercury/unit_tests/pcaps/smtp.pcap",
    "arkime/tests/pcap/smtp-decrypted.pcap",
    "arkime/tests/pcap/wireshark-bdat.pcap",
    "suricata-verify/tests/bug-5867-fp-drop-01/input.pcap",
    "suricata-verify/tests/firewall/ruletype-firewall-135-smtp-multi-mail-accept/"
    "smtp-multi-mail.pcap",
    "suricata-verify/tests/smtp-pipelined-rset-after-complete/input.pcap",
    "suricata-verify/tests/detect-email-received/input.pcap",
)
"""What each shows: AUTH and retransmissions; STARTTLS up; one direction only; BDAT in
chunks; gzip; IPv6; IPv6 over VLAN, a lost segment and a RST; no handshake; port 2525 and
RSTs; BDAT on port 1224 and SMTP on port 225 (found by content); several transactions;
pipelining; a reply missing under pipelining (the 354 resynchronises on DATA)."""


def _assert_same(path: Path, tshark_views: TsharkViews) -> None:
    native = [comparable(s) for s in read_sessions(path)]
    tshark = [comparable(s) for s in tshark_views.sessions(path)]
    assert tshark == native


@pytest.fixture(scope="module")
def views(tshark_views: TsharkViews) -> TsharkViews:
    real = [REALWORLD / p for p in REAL_CAPTURES if (REALWORLD / p).is_file()]
    tshark_views.prefetch(sample_captures() + real)
    return tshark_views


@pytest.mark.parametrize("path", sample_captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_capture_reads_the_same_with_both_engines(path: Path, views: TsharkViews) -> None:
    _assert_same(path, views)


@pytest.mark.parametrize("name", REAL_CAPTURES)
def test_real_capture_reads_the_same_with_both_engines(name: str, views: TsharkViews) -> None:
    path = REALWORLD / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    _assert_same(path, views)


def test_the_samples_hold_smtp_sessions_to_compare(views: TsharkViews) -> None:
    """The comparison above is not vacuous: the samples carry sessions, messages and TLS."""
    sessions = [s for p in sample_captures() for s in views.sessions(p)]
    if not sessions:
        pytest.skip("no sample captures generated yet")
    assert any(t.complete for s in sessions for t in s.transactions)
    assert any(s.starttls.established for s in sessions)


def test_sessions_found_by_content_on_other_ports(views: TsharkViews) -> None:
    """SMTP on ports 225 and 1224 is found by its first bytes, as the native pipeline does."""
    ports = set()
    for name in (
        "suricata-verify/tests/bug-5867-fp-drop-01/input.pcap",
        "arkime/tests/pcap/wireshark-bdat.pcap",
    ):
        path = REALWORLD / name
        if not path.is_file():
            pytest.skip(f"{path} not available")
        ports |= {s.flow.server.port for s in views.sessions(path)}
    assert ports == {225, 1224}
