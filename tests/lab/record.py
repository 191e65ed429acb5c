"""Regenerate captures/lab/: run lab scenarios and keep their capture pairs in the repository.

What it does: starts the lab (root needed), runs the named scenarios (all by default), copies
each pair to `captures/lab/<scenario>/{client-side,server-side}.<pcap|pcapng>` with an
`expected.json` (the scenario's expectations plus what the clients and the middlebox did), writes
the DKIM public key the messages were signed with, and rewrites `captures/lab/README.md` from
the scenario matrix and the versions of the software that produced the files.
What it does not do: analyse anything.

Usage: `sudo .venv/bin/python tests/lab/record.py [SCENARIO ...]`
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from tests.lab.deps import missing_pieces  # noqa: E402
from tests.lab.runner import Lab, ScenarioRun, environment_summary  # noqa: E402
from tests.lab.scenarios import BY_NAME, SCENARIOS, Scenario  # noqa: E402

OUT = ROOT / "captures" / "lab"
SIZE_BUDGET = 50 * 1024


def expected_json(run: ScenarioRun) -> dict[str, Any]:
    sc = run.scenario
    return {
        "scenario": sc.name,
        "description": sc.description,
        "server": str(sc.server),
        "behaviours": sorted(str(b) for b in sc.behaviours),
        "expected_kinds": sorted(str(k) for k in sc.expected_kinds),
        "tolerated_kinds": sorted(str(k) for k in sc.tolerated_kinds),
        "forbidden_kinds": sorted(str(k) for k in sc.forbidden_kinds),
        "expect_clean": sc.expect_clean,
        "tampered_clients": sorted(sc.tampered_clients),
        "resets_by": sc.resets_by,
        "clients": [
            {k: r[k] for k in ("kind", "source", "local_port", "outcome", "tls", "message_id")}
            for r in run.client_results
        ],
        "middlebox": [n for n in run.middlebox_log if n.get("event") != "drop_after_reset"],
    }


def _row(sc: Scenario, files: list[str]) -> str:
    kinds = ", ".join(f"`{k}`" for k in sorted(sc.expected_kinds)) or "none (clean)"
    return f"| `{sc.name}` | {sc.description} | {kinds} | {' '.join(files)} |"


def readme(runs: list[ScenarioRun], versions: dict[str, str], dkim_record: str) -> str:
    rows = []
    for run in runs:
        files = [f"`{p.name}` ({p.stat().st_size // 1024} KB)" for p in _targets(run)]
        rows.append(_row(run.scenario, files))
    version_lines = "\n".join(f"- {k}: {v}" for k, v in sorted(versions.items()))
    return f"""# Lab captures

Two-sided captures of real SMTP software through an emulated Cisco PIX/ASA, made by the lab in
`tests/lab/` (see `tests/lab/README.md`) with `sudo .venv/bin/python tests/lab/record.py`.
This file is written by that script; edit the scenario matrix (`tests/lab/scenarios.py`) instead.

How they were made: three network namespaces (client 198.51.100.0/24 — fw — server
192.0.2.0/24). Postfix (own config, STARTTLS `may`) or aiosmtpd serve on port 25; Python
`smtplib` (opportunistic STARTTLS), swaks (`--tls-optional`) or a one-character-per-segment
typist send DKIM-signed mail from 198.51.100.10-13. In fw an NFQUEUE rewriter edits bytes in
place (lengths kept), shifts sequence numbers by a per-direction ISN offset, forges RSTs (TTL
255, its own IP-ID), and iptables SNATs clients to 192.0.2.254; or a re-terminating proxy
deletes EHLO keywords. tcpdump in fw writes `client-side` (the client-facing interface) and
`server-side` (the server-facing interface, or `-i any` with SLL2 where stated).

Each directory holds the pair and `expected.json`: the scenario's expected finding kinds,
tolerated and forbidden kinds, which client addresses were tampered with, who sent resets, what
each client saw, and the middlebox's log (what it masked, its ISN offsets, the RSTs it forged).
Time stamps, ports, ISNs and TLS bytes change each time the files are regenerated.

| scenario | what happens | expected findings | files |
|---|---|---|---|
{chr(10).join(rows)}

The DKIM key the messages were signed with (selector `lab2024`, domain `client.example`) is
published in `dkim-key.txt` (the TXT record value of `lab2024._domainkey.client.example`):
`{dkim_record[:40]}…`

Software:
{version_lines}
"""


def _targets(run: ScenarioRun) -> list[Path]:
    d = OUT / run.scenario.name
    return [d / run.client_side.name, d / run.server_side.name]


def record(names: list[str]) -> int:
    missing = missing_pieces()
    if missing:
        print("cannot record; missing: " + "; ".join(missing), file=sys.stderr)
        return 2
    chosen = [BY_NAME[n] for n in names] if names else list(SCENARIOS)
    runs: list[ScenarioRun] = []
    with Lab() as lab:
        for sc in chosen:
            run = lab.run(sc)
            runs.append(run)
            target = OUT / sc.name
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            for src, dst in zip((run.client_side, run.server_side), _targets(run), strict=True):
                shutil.copyfile(src, dst)
                if dst.stat().st_size > SIZE_BUDGET:
                    print(f"warning: {dst} is {dst.stat().st_size} bytes", file=sys.stderr)
            (target / "expected.json").write_text(
                json.dumps(expected_json(run), indent=1, sort_keys=True) + "\n"
            )
            print(f"{sc.name}: {run.seconds:.1f}s -> {target.relative_to(ROOT)}")
        assert lab.dkim is not None
        record_value = lab.dkim.txt_record.decode()
    (OUT / "dkim-key.txt").write_text(record_value + "\n")
    if not names:
        (OUT / "README.md").write_text(readme(runs, environment_summary(), record_value))
    return 0


if __name__ == "__main__":
    sys.exit(record(sys.argv[1:]))
