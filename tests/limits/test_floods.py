"""Floods and monsters, small: the report stays proportional to the SMTP sessions.

The captures come from the flood generators of `benchmarks/floods.py` (struct-written pcaps):
a SYN flood gives no session and one summary, one-byte connections stay sessions, a session
of thousands of pipelined RCPTs or NOOPs is read whole (within the builder's caps).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from analyzer.cli import main
from analyzer.pipeline import run_capture

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SYNS = 2_000
REPORT_LIMIT = 20_000
"""Bytes of report.json a capture without a single SMTP session may take."""


def _floods() -> ModuleType:
    spec = importlib.util.spec_from_file_location("smtpfw_bench_floods", BENCHMARKS / "floods.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


floods = _floods()


def _pcap(tmp: Path, write: Callable[[Any], None]) -> Path:
    path = tmp / "flood.pcap"
    with open(path, "wb") as handle:
        write(floods.Writer(handle))
    return path


def test_a_syn_flood_is_one_summary_and_no_session(tmp_path: Path) -> None:
    capture = _pcap(tmp_path, lambda w: floods.syn_flood(w, SYNS))
    out = tmp_path / "report"
    main(["analyze", str(capture), "--out", str(out), "--format", "json"])
    report_file = out / "report.json"
    assert report_file.stat().st_size < REPORT_LIMIT
    report = json.loads(report_file.read_text())
    assert report["sessions"] == [] and report["findings"] == []
    (entry,) = report["captures"]
    assert entry["anomalies"] == {"connections_without_payload": SYNS}
    summary = entry["traffic"]["connections_without_payload"]
    assert summary["count"] == summary["unanswered"] == summary["clients"] == SYNS
    assert summary["reset"] == 0
    assert summary["first_ts"] == floods.START
    assert summary["last_ts"] == pytest.approx(floods.START + (SYNS - 1) * 1e-5, abs=1e-5)


def test_connections_of_one_byte_each_are_summarised_not_sessions(tmp_path: Path) -> None:
    run = run_capture([_pcap(tmp_path, lambda w: floods.tiny_sessions(w, 50))])
    assert run.sessions == []
    assert run.pipeline_stats.unspoken.count == 50
    assert run.pipeline_stats.unspoken.client_bytes == 50
    assert run.pipeline_stats.silent.count == 0


def test_connections_of_one_line_each_stay_sessions(tmp_path: Path) -> None:
    run = run_capture([_pcap(tmp_path, lambda w: floods.one_line_sessions(w, 50))])
    assert len(run.sessions) == 50
    assert all(s.end_reason == "quit" for s in run.sessions)
    assert run.pipeline_stats.unspoken.count == 0


def test_a_session_of_twenty_thousand_pipelined_rcpts_is_read(tmp_path: Path) -> None:
    run = run_capture([_pcap(tmp_path, lambda w: floods.pipelined_rcpt(w, 20_000))])
    (session,) = run.sessions
    (txn,) = session.transactions
    assert len(txn.rcpt_to) == 10_000  # the builder keeps the first 10,000 recipients
    assert txn.reply_code == 250
    assert session.end_reason == "quit"


def test_accepted_recipients_are_capped_like_recipients(tmp_path: Path) -> None:
    run = run_capture([_pcap(tmp_path, lambda w: floods.pipelined_rcpt(w, 20_000))])
    (txn,) = run.sessions[0].transactions
    assert len(txn.accepted_rcpt_to) <= len(txn.rcpt_to)


def test_sessions_of_thousands_of_noops_are_read_and_clean(tmp_path: Path) -> None:
    run = run_capture([_pcap(tmp_path, lambda w: floods.noop_sessions(w, 3, 3_000))])
    assert len(run.sessions) == 3
    for session in run.sessions:
        assert sum(1 for line in session.lines if line.verb == "NOOP") == 3_000
        assert session.end_reason == "quit"
    out = tmp_path / "report"
    code = main(["analyze", str(tmp_path / "flood.pcap"), "--out", str(out), "--format", "json"])
    assert code == 0
    assert json.loads((out / "report.json").read_text())["findings"] == []
