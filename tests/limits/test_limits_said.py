"""Every memory cap that leaves something out says so: report.json's `sessions[].dropped`.

Each cap is met twice, at its real default: one item past it reports exactly how much was not
kept (with the cap's name and value), and the report's notice names the session in report.md,
report.html and on the terminal; a session exactly at the cap has no `dropped` entry and no
notice. The captures are written with the flood generators of `benchmarks/floods.py`.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from analyzer.capture.stats import MAX_KEPT_ANOMALIES
from analyzer.cli import main
from analyzer.report.build import TRANSCRIPT_LINES
from analyzer.session.builder import (
    MAX_ANOMALIES_KEPT,
    MAX_HEADERS_KEPT,
    MAX_LINES_KEPT,
    MAX_RECIPIENTS_KEPT,
    MAX_TRANSACTIONS_KEPT,
)
from analyzer.smtp.limits import (
    ANOMALY_REPORT_LIMIT,
    DEFAULT_MAX_HEADER_BLOCK,
    DEFAULT_MAX_LINE,
    MAX_PENDING_COMMANDS,
)

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _floods() -> ModuleType:
    name = "smtpfw_bench_floods"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / "floods.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


floods = _floods()
Conn = floods.Conn

OPENING_LINES = 3
"""Greeting, EHLO and its reply (`floods._opening`)."""
CLOSING_LINES = 2
"""QUIT and its reply (`floods._closing`)."""


class Analysed:
    """One capture through `smtpfw analyze`: report.json, report.md, report.html, terminal."""

    def __init__(self, tmp: Path, write: Callable[[Any], None]) -> None:
        pcap = tmp / "capture.pcap"
        with open(pcap, "wb") as handle:
            w = floods.Writer(handle)
            write(w)
        out = tmp / "report"
        self.code = main(["analyze", str(pcap), "--out", str(out)])
        self.report = json.loads((out / "report.json").read_text())
        self.markdown = re.sub(r"\\(.)", r"\1", (out / "report.md").read_text())
        """report.md, its Markdown escapes taken away."""
        self.html = (out / "report.html").read_text()
        (session,) = self.report["sessions"]
        self.session: dict[str, Any] = session

    @property
    def dropped(self) -> dict[str, Any]:
        return dict(self.session.get("dropped") or {})

    def says_cut(self) -> bool:
        """The report's notice about limits, in both renderings."""
        sid = self.session["id"]
        said = "memory limits cut 1 session" in self.markdown and f"{sid}: " in self.markdown
        in_html = "memory limits cut 1 session" in html.unescape(self.html)
        assert said == in_html
        return said


def _session(write_middle: Callable[[Any], None]) -> Callable[[Any], None]:
    """A connection: greeting and EHLO (PIPELINING), `write_middle(conn)`, QUIT."""

    def write(w: Any) -> None:
        conn = Conn(w, 1, floods.START)
        floods._opening(conn)
        write_middle(conn)
        floods._closing(conn)

    return write


def assert_nothing_dropped(run: Analysed) -> None:
    assert "dropped" not in run.session
    assert "sessions_cut_by_limits" not in run.report["verdict"]
    assert not run.says_cut()


# -- dialogue lines and recipients -------------------------------------------------------------


def _recipients(count: int) -> Callable[[Any], None]:
    """One transaction of `count` pipelined, accepted RCPTs and a message."""

    def middle(conn: Any) -> None:
        conn.client(b"MAIL FROM:<a@example.net>\r\n")
        conn.server(b"250 2.1.0 Ok\r\n")
        for commands, replies in zip(
            floods._batches(b"RCPT TO:<b@example.org>\r\n", count),
            floods._batches(b"250 2.1.5 Ok\r\n", count),
            strict=True,
        ):
            conn.client(commands)
            conn.server(replies)
        conn.client(b"DATA\r\n")
        conn.server(b"354 go ahead\r\n")
        conn.client(b"Subject: many\r\n\r\nHello.\r\n.\r\n")
        conn.server(b"250 2.0.0 Ok: queued\r\n")

    return _session(middle)


def _recipient_lines(count: int) -> int:
    """Dialogue lines of `_recipients(count)`: MAIL, DATA, the message's end and their replies,
    and each RCPT with its reply."""
    return OPENING_LINES + 5 + 2 * count + CLOSING_LINES


def test_one_recipient_past_the_cap_is_counted_given_and_accepted(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _recipients(MAX_RECIPIENTS_KEPT + 1))
    (txn,) = run.session["transactions"]
    assert len(txn["rcpt_to"]) == len(txn["accepted_rcpt_to"]) == MAX_RECIPIENTS_KEPT
    dropped = run.dropped
    assert dropped["recipients"] == {
        "count": 1,
        "cap": "MAX_RECIPIENTS_KEPT",
        "limit": MAX_RECIPIENTS_KEPT,
    }
    assert dropped["accepted_recipients"] == {
        "count": 1,
        "cap": "MAX_RECIPIENTS_KEPT",
        "limit": MAX_RECIPIENTS_KEPT,
    }
    lines = _recipient_lines(MAX_RECIPIENTS_KEPT + 1)
    assert dropped["dialogue_lines"]["count"] == lines - MAX_LINES_KEPT
    assert run.report["verdict"]["sessions_cut_by_limits"] == 1
    assert run.says_cut()
    assert "1 recipient past the 10,000 kept per transaction (MAX_RECIPIENTS_KEPT)" in (
        run.markdown
    )


def test_sessions_json_carries_the_same_dropped_entry_as_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Analysed(tmp_path, _recipients(MAX_RECIPIENTS_KEPT + 1))
    capsys.readouterr()
    assert main(["sessions", "--json", str(tmp_path / "capture.pcap")]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["dropped"] == run.dropped


def test_recipients_exactly_at_the_cap_drop_none(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _recipients(MAX_RECIPIENTS_KEPT))
    (txn,) = run.session["transactions"]
    assert len(txn["rcpt_to"]) == MAX_RECIPIENTS_KEPT
    assert set(run.dropped) == {"dialogue_lines"}  # 20,000 RCPT lines and replies were


def test_recipients_of_a_refused_nested_mail_stay_within_the_cap(tmp_path: Path) -> None:
    # A second MAIL inside the open transaction is refused (503): the RCPTs pipelined after it
    # belong to the first envelope, which is already full.
    def middle(conn: Any) -> None:
        conn.client(b"MAIL FROM:<a@example.net>\r\n")
        conn.server(b"250 2.1.0 Ok\r\n")
        for commands, replies in zip(
            floods._batches(b"RCPT TO:<b@example.org>\r\n", MAX_RECIPIENTS_KEPT),
            floods._batches(b"250 2.1.5 Ok\r\n", MAX_RECIPIENTS_KEPT),
            strict=True,
        ):
            conn.client(commands)
            conn.server(replies)
        conn.client(b"MAIL FROM:<c@example.net>\r\n" + b"RCPT TO:<d@example.org>\r\n" * 5)
        conn.server(b"503 5.5.1 Error: nested MAIL command\r\n" + b"250 2.1.5 Ok\r\n" * 5)

    run = Analysed(tmp_path, _session(middle))
    (txn,) = run.session["transactions"]
    assert txn["mail_from"] == "a@example.net"
    assert len(txn["rcpt_to"]) == len(txn["accepted_rcpt_to"]) == MAX_RECIPIENTS_KEPT
    assert run.dropped["recipients"]["count"] == 5
    assert run.dropped["accepted_recipients"]["count"] == 5


def test_dialogue_lines_past_the_cap_are_counted_and_said(tmp_path: Path) -> None:
    count = (MAX_LINES_KEPT - _recipient_lines(0)) // 2 + 1
    run = Analysed(tmp_path, _recipients(count))
    over = _recipient_lines(count) - MAX_LINES_KEPT
    assert over == 2  # the last RCPT's reply, and QUIT's (the message's lines are not dialogue)
    assert run.dropped == {
        "dialogue_lines": {"count": over, "cap": "MAX_LINES_KEPT", "limit": MAX_LINES_KEPT}
    }
    assert run.says_cut()
    assert "2 dialogue lines past the 10,000 kept (MAX_LINES_KEPT)" in run.markdown
    assert "2 dialogue lines past the 10,000 kept" in run.html
    assert run.session["end_reason"] == "quit"  # what the session did is still known


def test_dialogue_lines_exactly_at_the_cap_drop_nothing(tmp_path: Path) -> None:
    count = (MAX_LINES_KEPT - _recipient_lines(0)) // 2
    assert _recipient_lines(count) == MAX_LINES_KEPT
    assert_nothing_dropped(Analysed(tmp_path, _recipients(count)))


# -- transactions and header fields --------------------------------------------------------------


def _transactions(count: int) -> Callable[[Any], None]:
    """`count` envelopes, each MAIL then RSET, pipelined."""

    def middle(conn: Any) -> None:
        for commands, replies in zip(
            floods._batches(b"MAIL FROM:<a@example.net>\r\nRSET\r\n", count, 200),
            floods._batches(b"250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n", count, 200),
            strict=True,
        ):
            conn.client(commands)
            conn.server(replies)

    return _session(middle)


def test_transactions_past_the_cap_are_counted(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _transactions(MAX_TRANSACTIONS_KEPT + 3))
    assert len(run.session["transactions"]) == MAX_TRANSACTIONS_KEPT
    assert run.dropped == {
        "transactions": {
            "count": 3,
            "cap": "MAX_TRANSACTIONS_KEPT",
            "limit": MAX_TRANSACTIONS_KEPT,
        }
    }
    assert run.says_cut()
    assert "3 transactions past the 1,000 kept (MAX_TRANSACTIONS_KEPT)" in run.markdown


def test_transactions_exactly_at_the_cap_drop_nothing(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _transactions(MAX_TRANSACTIONS_KEPT))
    assert len(run.session["transactions"]) == MAX_TRANSACTIONS_KEPT
    assert_nothing_dropped(run)


def _message_head(head: bytes) -> Callable[[Any], None]:
    """One message whose header section is `head` (its fields, each line with CRLF)."""

    def middle(conn: Any) -> None:
        conn.client(b"MAIL FROM:<a@example.net>\r\n")
        conn.server(b"250 2.1.0 Ok\r\n")
        conn.client(b"RCPT TO:<b@example.org>\r\n")
        conn.server(b"250 2.1.5 Ok\r\n")
        conn.client(b"DATA\r\n")
        conn.server(b"354 go ahead\r\n")
        conn.client(head + b"\r\nHello.\r\n.\r\n")
        conn.server(b"250 2.0.0 Ok: queued\r\n")

    return _session(middle)


def _headers(fields: int) -> Callable[[Any], None]:
    """One message with `fields` header fields."""
    return _message_head(b"".join(b"X-Field-%d: value\r\n" % i for i in range(fields)))


def test_header_fields_past_the_cap_are_counted(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _headers(MAX_HEADERS_KEPT + 5))
    assert run.dropped == {
        "header_fields": {"count": 5, "cap": "MAX_HEADERS_KEPT", "limit": MAX_HEADERS_KEPT}
    }
    assert run.says_cut()
    assert "5 header fields past the 200 kept per message (MAX_HEADERS_KEPT)" in run.markdown


def test_header_fields_exactly_at_the_cap_drop_nothing(tmp_path: Path) -> None:
    assert_nothing_dropped(Analysed(tmp_path, _headers(MAX_HEADERS_KEPT)))


def _long_header(length: int) -> bytes:
    """A header line of `length` octets before its CRLF."""
    return b"X-Long: " + b"v" * (length - 8) + b"\r\n"


def test_bytes_of_a_header_line_past_the_line_bound_are_counted(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _message_head(_long_header(DEFAULT_MAX_LINE + 9)))
    assert run.dropped == {
        "header_bytes": {"count": 9, "cap": "DEFAULT_MAX_LINE", "limit": DEFAULT_MAX_LINE}
    }
    assert run.says_cut()
    assert "9 bytes of over-long header lines skipped (65,536 kept per line)" in run.markdown


def test_a_header_line_exactly_at_the_line_bound_drops_nothing(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _message_head(_long_header(DEFAULT_MAX_LINE)))
    assert "header_line_too_long" in run.session["anomalies"]  # too long, but kept whole
    assert_nothing_dropped(run)


def _header_section(fields: int) -> bytes:
    """`fields` header fields of 1,000 octets each, CRLF included."""
    return b"".join(b"X-F%05d: " % i + b"v" * 989 + b"\r\n" for i in range(fields))


def test_a_header_section_past_its_bound_is_counted(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _message_head(_header_section(270)))
    assert run.dropped["header_sections"] == {
        "count": 1,
        "cap": "DEFAULT_MAX_HEADER_BLOCK",
        "limit": DEFAULT_MAX_HEADER_BLOCK,
    }
    assert "1 header section cut at 262,144 bytes, the rest read as body" in run.markdown


def test_a_header_section_within_its_bound_drops_no_section(tmp_path: Path) -> None:
    assert 260 * 1000 < DEFAULT_MAX_HEADER_BLOCK < 270 * 1000
    run = Analysed(tmp_path, _message_head(_header_section(260)))
    assert "header_sections" not in run.dropped  # its 260 fields pass MAX_HEADERS_KEPT, though
    assert run.dropped["header_fields"]["count"] == 260 - MAX_HEADERS_KEPT


# -- anomalies -----------------------------------------------------------------------------------


def _odd_commands(
    unknown: int, long_lines: int = 0, long_reply: bool = False
) -> Callable[[Any], None]:
    """Unknown verbs answered 500, over-long NOOP lines answered 250, and a NOOP answered with
    a reply line over 512 octets."""

    def middle(conn: Any) -> None:
        conn.client(b"FROB\r\n" * unknown + (b"NOOP " + b"a" * 600 + b"\r\n") * long_lines)
        conn.server(b"500 5.5.2 Error: command not recognized\r\n" * unknown)
        conn.server(b"250 2.0.0 Ok\r\n" * long_lines)
        if long_reply:
            conn.client(b"NOOP\r\n")
            conn.server(b"250 " + b"k" * 600 + b"\r\n")

    return _session(middle)


def test_anomalies_past_the_report_limit_are_counted_by_kind(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _odd_commands(ANOMALY_REPORT_LIMIT + 7))
    assert run.dropped == {
        "anomaly_reports": {
            "count": 7,
            "cap": "ANOMALY_REPORT_LIMIT",
            "limit": ANOMALY_REPORT_LIMIT,
            "by_kind": {"unknown_command": 7},
        }
    }
    assert run.says_cut()
    assert (
        "7 anomalies only counted past 100 of a kind per direction "
        "(ANOMALY_REPORT_LIMIT; unknown_command: 7)"
    ) in run.markdown


def test_anomalies_exactly_at_the_report_limit_drop_nothing(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _odd_commands(ANOMALY_REPORT_LIMIT))
    assert run.session["anomalies"] == ["unknown_command"]
    assert_nothing_dropped(run)


def test_anomalies_past_those_a_session_keeps_are_counted(tmp_path: Path) -> None:
    # Two kinds at the report limit fill the session's list; one more kind does not fit.
    assert MAX_ANOMALIES_KEPT == 2 * ANOMALY_REPORT_LIMIT
    run = Analysed(tmp_path, _odd_commands(ANOMALY_REPORT_LIMIT, ANOMALY_REPORT_LIMIT, True))
    assert run.dropped == {
        "anomalies": {"count": 1, "cap": "MAX_ANOMALIES_KEPT", "limit": MAX_ANOMALIES_KEPT}
    }
    assert "reply_line_too_long" not in run.session["anomalies"]
    assert run.says_cut()
    assert "1 anomaly past the 200 kept (MAX_ANOMALIES_KEPT)" in run.markdown


def test_anomalies_exactly_filling_the_session_drop_nothing(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _odd_commands(ANOMALY_REPORT_LIMIT, ANOMALY_REPORT_LIMIT))
    assert sorted(run.session["anomalies"]) == ["command_line_too_long", "unknown_command"]
    assert_nothing_dropped(run)


# -- the observer's bounds: line bytes, reply lines, pending commands ---------------------------


def _long_command(length: int) -> Callable[[Any], None]:
    """One NOOP line of `length` octets before its CRLF."""

    def middle(conn: Any) -> None:
        conn.client(b"NOOP " + b"a" * (length - 5) + b"\r\n")
        conn.server(b"500 5.5.2 line too long\r\n")

    return _session(middle)


def test_bytes_of_a_line_past_the_line_bound_are_counted(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _long_command(DEFAULT_MAX_LINE + 11))
    assert run.dropped == {
        "line_bytes": {"count": 11, "cap": "DEFAULT_MAX_LINE", "limit": DEFAULT_MAX_LINE}
    }
    assert run.says_cut()
    assert "11 bytes of over-long lines skipped (65,536 kept per line)" in run.markdown


def test_a_line_exactly_at_the_line_bound_drops_nothing(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _long_command(DEFAULT_MAX_LINE))
    assert "command_line_too_long" in run.session["anomalies"]  # too long, but kept whole
    assert_nothing_dropped(run)


REPLY_LINE = b"250-" + b"r" * 58 + b"\r\n"
"""64 octets: `DEFAULT_MAX_LINE // 64` of them fill a reply exactly."""


def _long_reply(lines: int) -> Callable[[Any], None]:
    def middle(conn: Any) -> None:
        conn.client(b"NOOP\r\n")
        conn.server(REPLY_LINE * (lines - 1) + b"250 " + b"r" * 58 + b"\r\n")

    return _session(middle)


def test_lines_of_a_reply_past_the_line_bound_are_counted(tmp_path: Path) -> None:
    kept = DEFAULT_MAX_LINE // len(REPLY_LINE)
    run = Analysed(tmp_path, _long_reply(kept + 4))
    assert run.dropped == {
        "reply_lines": {"count": 4, "cap": "DEFAULT_MAX_LINE", "limit": DEFAULT_MAX_LINE}
    }
    assert run.says_cut()


def test_a_reply_exactly_at_the_line_bound_drops_nothing(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _long_reply(DEFAULT_MAX_LINE // len(REPLY_LINE)))
    assert_nothing_dropped(run)


def _unanswered(noops: int) -> Callable[[Any], None]:
    """`noops` pipelined NOOPs and QUIT that the server (a tarpit) never answers."""

    def write(w: Any) -> None:
        conn = Conn(w, 1, floods.START)
        floods._opening(conn)
        conn.client(b"NOOP\r\n" * noops + b"QUIT\r\n")
        conn.close()

    return write


def test_commands_forgotten_unanswered_are_counted(tmp_path: Path) -> None:
    run = Analysed(tmp_path, _unanswered(MAX_PENDING_COMMANDS + 1))
    assert run.dropped == {
        "pending_commands": {
            "count": 2,  # the NOOPs and QUIT waiting, less the bound
            "cap": "MAX_PENDING_COMMANDS",
            "limit": MAX_PENDING_COMMANDS,
        }
    }
    assert run.says_cut()
    assert "2 unanswered commands forgotten past 1,000 waiting" in run.markdown


def test_commands_exactly_at_the_pending_bound_drop_nothing(tmp_path: Path) -> None:
    assert_nothing_dropped(Analysed(tmp_path, _unanswered(MAX_PENDING_COMMANDS - 1)))


# -- the report's own transcript cap -------------------------------------------------------------


def _masked_then_noops(noops: int) -> Callable[[Any], None]:
    """A STARTTLS masked to X's (a finding names the session, so its transcript is in the
    report), then `noops` NOOPs."""

    def middle(conn: Any) -> None:
        conn.client(b"XXXXXXXX\r\n")
        conn.server(b"500 5.5.2 Error: command not recognized\r\n")
        for commands, replies in zip(
            floods._batches(b"NOOP\r\n", noops, 200),
            floods._batches(b"250 2.0.0 Ok\r\n", noops, 200),
            strict=True,
        ):
            conn.client(commands)
            conn.server(replies)

    return _session(middle)


def _masked_lines(noops: int) -> int:
    return OPENING_LINES + 2 + 2 * noops + CLOSING_LINES


@pytest.mark.parametrize("over", [0, 3])
def test_a_transcript_cut_in_the_report_says_how_many_lines_it_left_out(
    tmp_path: Path, over: int
) -> None:
    noops = (TRANSCRIPT_LINES - _masked_lines(0)) // 2 + 1
    assert _masked_lines(noops) == TRANSCRIPT_LINES + 1  # odd: one more NOOP adds two lines
    run = Analysed(tmp_path, _masked_then_noops(noops - 1 + over))
    sid = run.session["id"]
    assert run.report["findings"] and sid in run.report["transcripts"]
    lines = _masked_lines(noops - 1 + over)
    if lines <= TRANSCRIPT_LINES:
        assert_nothing_dropped(run)
        return
    assert run.dropped == {
        "transcript_lines": {
            "count": lines - TRANSCRIPT_LINES,
            "cap": "TRANSCRIPT_LINES",
            "limit": TRANSCRIPT_LINES,
        }
    }
    assert run.says_cut()


# -- the terminal ------------------------------------------------------------------------------


def test_the_terminal_summary_says_sessions_were_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Analysed(tmp_path, _transactions(MAX_TRANSACTIONS_KEPT + 1))
    assert run.code == 0
    said = capsys.readouterr().out
    assert "note: smtpfw's memory limits cut 1 session" in said
    assert "1 transaction past the 1,000 kept (MAX_TRANSACTIONS_KEPT)" in said


# -- capture anomalies -------------------------------------------------------------------------


def test_capture_anomalies_past_those_kept_in_full_are_all_counted(tmp_path: Path) -> None:
    # TCP in IPv4 cut before its TCP header: each frame is malformed.
    ip = bytes.fromhex("45000014000000004006") + bytes(2) + bytes([10, 0, 0, 1]) + floods.SERVER_IP
    bad = floods.ETHER + ip
    pcap = tmp_path / "capture.pcap"
    frames = MAX_KEPT_ANOMALIES + 5
    with open(pcap, "wb") as handle:
        handle.write(floods.PCAP_HEADER)
        for i in range(frames):
            handle.write(struct.pack("<IIII", 1_700_000_000, i, len(bad), len(bad)) + bad)
    out = tmp_path / "report"
    main(["analyze", str(pcap), "--out", str(out), "--format", "json"])
    (capture,) = json.loads((out / "report.json").read_text())["captures"]
    assert capture["anomalies"] == {"malformed_packet": frames}
