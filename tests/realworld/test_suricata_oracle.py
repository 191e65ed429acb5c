"""Suricata's test expectations for SMTP fields hold for smtpfw's sessions too.

Every suricata-verify test whose `test.yaml` states `smtp.helo`, `smtp.mail_from` or
`smtp.rcpt_to[i]` for an SMTP (or SMTP-carried fileinfo) event: some session of the same
capture (with the same client endpoint when the check names one) must have a transaction with
those values. Suricata writes paths with their angle brackets; smtpfw stores the address alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from analyzer import read_sessions
from analyzer.session.model import SmtpSession
from tests.realworld_path import REALWORLD

SURICATA = REALWORLD / "suricata-verify"
_RCPT = re.compile(r"smtp\.rcpt_to\[(\d+)\]")

# test dir → (why smtpfw differs, how to turn Suricata's expectation into smtpfw's value).
KNOWN_DIFFERENCES: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "smtp-long-command": (
        "The client's 4 KB HELO line exceeds Suricata's line limit; Suricata keeps the line's CR "
        "in the HELO name it logs. smtpfw strips the CRLF terminator from every command line "
        "(and reports the overlong line as an anomaly), so its HELO name has no trailing CR.",
        lambda expected: {**expected, "smtp.helo": str(expected["smtp.helo"]).rstrip("\r")},
    ),
}


def _pcap(test_dir: Path, spec: dict[str, Any]) -> Path | None:
    if "pcap" in spec and isinstance(spec["pcap"], str):
        return (test_dir / spec["pcap"]).resolve()
    pcaps = sorted(test_dir.glob("*.pcap")) + sorted(test_dir.glob("*.pcapng"))
    return pcaps[0] if pcaps else None


def _expectations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for check in spec.get("checks") or []:
        flt = check.get("filter") if isinstance(check, dict) else None
        if not flt or flt.get("count") == 0 or flt.get("requires", {}).get("lt-version"):
            continue
        match = flt.get("match") or {}
        fields = {
            k: v
            for k, v in match.items()
            if k.startswith("smtp.")
            and (k in ("smtp.helo", "smtp.mail_from") or _RCPT.fullmatch(k))
        }
        if fields:
            out.append({**fields, **{k: match[k] for k in ("src_ip", "src_port") if k in match}})
    return out


def _cases() -> list[tuple[str, Path, dict[str, Any]]]:
    cases = []
    for test_yaml in sorted(SURICATA.glob("tests/**/test.yaml")):
        spec = yaml.safe_load(test_yaml.read_text()) or {}
        if spec.get("requires", {}).get("lt-version"):
            continue
        pcap = _pcap(test_yaml.parent, spec)
        if pcap is None or not pcap.exists():
            continue
        name = test_yaml.parent.relative_to(SURICATA / "tests").as_posix()
        for i, expected in enumerate(_expectations(spec)):
            cases.append((f"{name}[{i}]", pcap, expected))
    return cases


CASES = _cases() if SURICATA.is_dir() else []


def _bare(path: str) -> str:
    return path[1:-1] if path.startswith("<") and path.endswith(">") else path


def _satisfies(session: SmtpSession, expected: dict[str, Any]) -> bool:
    if "src_ip" in expected and session.flow.client.ip != expected["src_ip"]:
        return False
    if "src_port" in expected and session.flow.client.port != int(expected["src_port"]):
        return False
    if "smtp.helo" in expected and session.helo != str(expected["smtp.helo"]):
        return False
    wants_txn = any(k != "smtp.helo" and k.startswith("smtp.") for k in expected)
    if not wants_txn:
        return True
    for txn in session.transactions:
        ok = "smtp.mail_from" not in expected or txn.mail_from == _bare(
            str(expected["smtp.mail_from"])
        )
        for key, value in expected.items():
            m = _RCPT.fullmatch(key)
            if m:
                i = int(m.group(1))
                ok = ok and i < len(txn.rcpt_to) and txn.rcpt_to[i] == _bare(str(value))
        if ok:
            return True
    return False


@pytest.mark.skipif(not CASES, reason="suricata-verify expectations not available")
@pytest.mark.parametrize(("name", "pcap", "expected"), CASES, ids=[c[0] for c in CASES])
def test_smtp_fields_agree_with_suricata(name: str, pcap: Path, expected: dict[str, Any]) -> None:
    sessions = read_sessions(pcap)
    known = KNOWN_DIFFERENCES.get(name.rsplit("[", 1)[0])
    if known is not None:
        assert not any(_satisfies(s, expected) for s in sessions), "agrees now: drop the exception"
        expected = known[1](expected)
    agrees = any(_satisfies(s, expected) for s in sessions)
    seen = [
        (s.client, s.helo, [(t.mail_from, t.rcpt_to) for t in s.transactions]) for s in sessions
    ]
    assert agrees, f"{pcap.name}: Suricata expects {expected!r:.300}; smtpfw saw {seen!r:.300}"
