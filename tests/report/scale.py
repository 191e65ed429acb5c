"""A large report made by repeating a fixture's connections: for timing and memory checks."""

from __future__ import annotations

import copy
from typing import Any, cast

from analyzer.report.model import Report


def scaled(report: Report, copies: int) -> Report:
    """`report` with its sessions, pairs, findings and transcripts repeated `copies` times,
    each copy with its own ids (`client#3` → `client#3.17`) and times an hour apart."""
    base = cast(dict[str, Any], report)
    out = copy.deepcopy(base)
    out["sessions"], out["pairs"], out["findings"], out["transcripts"] = [], [], [], {}

    def rename(sid: Any, k: int) -> Any:
        return f"{sid}.{k}" if isinstance(sid, str) else sid

    for k in range(copies):
        shift = 3600.0 * k
        for s in base["sessions"]:
            s2 = dict(
                s,
                id=rename(s["id"], k),
                peer=rename(s.get("peer"), k),
                start=s["start"] + shift,
                end=s["end"] + shift,
            )
            out["sessions"].append(s2)
        for p in base["pairs"]:
            out["pairs"].append(
                dict(
                    p,
                    client_side=rename(p["client_side"], k),
                    server_side=rename(p["server_side"], k),
                )
            )
        for f in base["findings"]:
            f2 = copy.deepcopy(f)
            f2["id"] = f"{f['id']}.{k}"
            f2["sessions"] = [rename(x, k) for x in f["sessions"]]
            for ev in f2["evidence"]:
                if ev.get("ts") is not None:
                    ev["ts"] += shift
            out["findings"].append(f2)
        for sid, lines in base["transcripts"].items():
            out["transcripts"][rename(sid, k)] = [
                dict(line, ts=line["ts"] + shift) for line in lines
            ]
    return cast(Report, out)
