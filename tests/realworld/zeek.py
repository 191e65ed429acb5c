"""Read Zeek's btest baselines: which trace each smtp.log came from, and its rows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_SECTION = re.compile(r"^## (\S+)$", re.MULTILINE)
_TRACE = re.compile(r"\$TRACES/(\S+?\.pcap(?:ng)?(?:\.gz)?)")


@dataclass(frozen=True)
class ZeekRow:
    client: str
    server: str
    trans_depth: int
    helo: str | None
    mailfrom: str | None
    rcptto: frozenset[str]
    tls: bool


def traces_by_test(tests_md: Path) -> dict[str, str]:
    """btest name → trace path (relative to traces/), from TESTS.md's `# @TEST-EXEC` lines."""
    text = tests_md.read_text()
    found: dict[str, str] = {}
    sections = list(_SECTION.finditer(text))
    for i, section in enumerate(sections):
        end = sections[i + 1].start() if i + 1 < len(sections) else len(text)
        body = text[section.end() : end]
        match = _TRACE.search(body)
        if match:
            found[section.group(1)] = match.group(1)
    return found


def _endpoint(ip: str, port: str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def read_smtp_log(path: Path) -> list[ZeekRow]:
    fields: list[str] = []
    rows: list[ZeekRow] = []
    for line in path.read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
            continue
        if line.startswith("#") or not line.strip():
            continue
        row = dict(zip(fields, line.split("\t"), strict=False))

        def value(name: str, row: dict[str, str] = row) -> str | None:
            v = row.get(name, "-")
            return None if v in ("-", "(empty)") else v

        rcpt = value("rcptto")
        rows.append(
            ZeekRow(
                client=_endpoint(row["id.orig_h"], row["id.orig_p"]),
                server=_endpoint(row["id.resp_h"], row["id.resp_p"]),
                trans_depth=int(row["trans_depth"]),
                helo=value("helo"),
                mailfrom=value("mailfrom"),
                rcptto=frozenset(rcpt.split(",")) if rcpt else frozenset(),
                tls=row.get("tls") == "T",
            )
        )
    return rows
