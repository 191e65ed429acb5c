#!/usr/bin/env python3
"""Time and check two-sided correlation at scale: thousands of concurrent sessions, two hosts.

For each variant (with and without TCP timestamps) it writes a capture pair with `pairs.py` (or
reuses the one cached under `benchmarks/out/`), then, in a child process of its own so that each
variant's peak memory is its own:

1. reads both captures alone: `run_capture([client], "client")` and the server one
   (sessions only, `keep_streams=False`), timed together;
2. runs the full `analyze(client_side=..., server_side=...)` (clock offset, pairing, byte
   alignment, detectors), timed;
3. checks the result against the generator's ground truth: every session paired with its true
   counterpart (`client#<tcp.stream>` with `server#<tcp.stream>`), every tampered session carrying
   exactly the finding kinds its tampering implies (`EXPECTED_FINDINGS`), and no finding at all on
   an untampered session.

It prints the times (wall clock, and CPU time of the process, which a busy machine does not
inflate), the ratio analyze / read-alone, the peak RSS (`ru_maxrss`) after each step,
the pairing accuracy and every failure (first few in full), and writes
`benchmarks/out/correlate_scale.json`. Exit status 1 when a check fails, 2 on bad arguments.

It does not change the analyzer, tune anything or profile.

    .venv/bin/python benchmarks/correlate_scale.py [--sessions 5000] [--tampered 0.01] [--seed 1]
        [--variants timestamps,no-timestamps,bulk-timestamps,bulk-no-timestamps]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analyzer.result import Analysis
    from analyzer.session.model import SmtpSession

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT_DIR = HERE / "out"
RESULTS = OUT_DIR / "correlate_scale.json"
VARIANTS = (
    "timestamps",
    "no-timestamps",
    "bulk-timestamps",
    "bulk-no-timestamps",
    "same-message-no-timestamps",
)
"""With or without TCP timestamps; `bulk-`: a newsletter run (`pairs.py --bulk`), where stream
lengths collide across sessions; `same-message-`: one list post relayed in every session
(`--bulk --same-message`: one Message-ID, one envelope, identical bytes), where only timing and
IP-IDs tell sessions apart."""
DEFAULT_VARIANTS = VARIANTS[:2]
SHOWN_FAILURES = 5
"""Failures printed in full per category; the JSON keeps up to `KEPT_FAILURES`."""
KEPT_FAILURES = 50

EXPECTED_FINDINGS: dict[str, frozenset[str]] = {
    "ehlo_starttls_masked": frozenset({"ehlo_keyword_masked", "tls_downgrade"}),
    "starttls_command_masked": frozenset({"command_masked", "starttls_rejected", "tls_downgrade"}),
    "dkim_reset": frozenset({"reset_after_dkim_header", "reset_injected"}),
    "banner_masked": frozenset({"banner_masked"}),
}
"""Finding kinds (DOMAIN.md §3) each tampering of `pairs.py` must produce on its session pair."""


def load_pairs() -> ModuleType:
    """benchmarks/pairs.py, imported by path (benchmarks/ is a folder of scripts)."""
    name = "smtpfw_bench_pairs"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "pairs.py")
    if spec is None or spec.loader is None:
        raise ImportError("benchmarks/pairs.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def expected_kinds(tampering: Iterable[str] | None) -> frozenset[str]:
    """The finding kinds a session with this tampering must have (none when untampered)."""
    return frozenset().union(*(EXPECTED_FINDINGS[t] for t in tampering or ()))


# --- Checking ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    """One session the analysis got wrong, with what it needs to be understood."""

    client_id: str
    server_id: str
    """The true counterpart."""
    problem: str
    """'mispaired', 'unmatched', 'missed' (an expected kind absent) or 'false_flag'."""
    tampering: tuple[str, ...]
    peer: str | None
    """The server-side session the analysis paired it with."""
    expected: tuple[str, ...]
    found: tuple[str, ...]
    note: str
    """Pairing features, start-time deltas and stream lengths of the sessions involved."""


@dataclass(frozen=True, slots=True)
class Check:
    sessions: int
    tampered: int
    paired_correctly: int
    failures: tuple[Failure, ...]

    @property
    def accuracy(self) -> float:
        return self.paired_correctly / self.sessions if self.sessions else 1.0

    def of(self, problem: str) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if f.problem == problem)

    @property
    def ok(self) -> bool:
        return not self.failures


def _lengths(session: SmtpSession) -> str:
    c2s, s2c = session.stats.client_to_server, session.stats.server_to_client
    return f"{c2s.bytes + c2s.gap_bytes}/{s2c.bytes + s2c.gap_bytes}"


class _Explainer:
    """Describes a failed session from indexes built once per analysis."""

    def __init__(self, analysis: Analysis) -> None:
        self.offset = analysis.clock.offset_s if analysis.clock else 0.0
        self.sessions = {s.id: s for s in analysis.sessions}
        self.by_client = {p.client_side.id: p for p in analysis.pairs}
        self.by_server = {p.server_side.id: p for p in analysis.pairs}

    def __call__(self, client_id: str, true_id: str, peer: str | None) -> str:
        client, true = self.sessions.get(client_id), self.sessions.get(true_id)
        if client is None or true is None:
            return f"not in the analysis: {client_id if client is None else true_id}"
        parts = [
            f"clock {self.offset:+.6f}s",
            f"{client_id} len {_lengths(client)} tsval {client.flow.client_tsval}",
            f"true {true_id} len {_lengths(true)} tsval {true.flow.client_tsval} "
            f"Δt {true.start_ts - client.start_ts - self.offset:+.6f}s",
        ]
        wrong = self.sessions.get(peer) if peer is not None else None
        if wrong is not None:
            pair = self.by_client.get(client_id)
            parts.append(
                f"got {peer} len {_lengths(wrong)} tsval {wrong.flow.client_tsval} "
                f"Δt {wrong.start_ts - client.start_ts - self.offset:+.6f}s"
                + (f" score {pair.score} on {','.join(pair.matched_on)}" if pair else "")
            )
            taken = self.by_server.get(true_id)
            if taken is not None:
                parts.append(
                    f"{true_id} went to {taken.client_side.id} (score {taken.score} "
                    f"on {','.join(taken.matched_on)})"
                )
        return "; ".join(parts)


def check(truth: dict[str, Any], analysis: Analysis) -> Check:
    """Compare an `analyze` result with the generator's ground truth."""
    explain = _Explainer(analysis)
    peer_of = {p.client_side.id: p.server_side.id for p in analysis.pairs}
    kinds_of: dict[str, set[str]] = defaultdict(set)
    for finding in analysis.findings:
        for sid in finding.sessions:
            kinds_of[sid].add(str(finding.kind))
    failures: list[Failure] = []
    correct = 0
    tampered = 0
    for s in truth["sessions"]:
        cid, sid = f"client#{s['client_stream']}", f"server#{s['server_stream']}"
        tampering = tuple(s["tampering"] or ())
        tampered += bool(tampering)
        want = expected_kinds(tampering)
        found = kinds_of.get(cid, set()) | kinds_of.get(sid, set())
        peer = peer_of.get(cid)
        problems = [] if peer == sid else ["mispaired" if peer is not None else "unmatched"]
        correct += peer == sid
        problems += ["missed"] * bool(want - found) + ["false_flag"] * bool(found - want)
        if not problems:
            continue
        note = explain(cid, sid, peer)
        failures.extend(
            Failure(
                cid,
                sid,
                problem,
                tampering,
                peer,
                tuple(sorted(want)),
                tuple(sorted(found)),
                note,
            )
            for problem in problems
        )
    return Check(len(truth["sessions"]), tampered, correct, tuple(failures))


# --- Captures ---------------------------------------------------------------------------------


def pair_dir(
    sessions: int, tampered: float, seed: int, timestamps: bool, bulk: bool, same: bool = False
) -> Path:
    tag = ("" if timestamps else "-nots") + ("-bulk" if bulk else "") + ("-same" if same else "")
    return OUT_DIR / f"pairs-{sessions}-t{tampered:g}-seed{seed}{tag}"


def ensure_pair(
    folder: Path,
    sessions: int,
    tampered: float,
    seed: int,
    timestamps: bool,
    bulk: bool,
    same: bool = False,
) -> bool:
    """Generate the pair into `folder` unless a matching one is cached; True if generated."""
    pairs = load_pairs()
    truth_path = folder / pairs.TRUTH
    if truth_path.exists():
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        opts = truth.get("options", {})
        if (
            truth.get("generator_version") == pairs.GENERATOR_VERSION
            and opts.get("sessions") == sessions
            and opts.get("tampered") == tampered
            and opts.get("seed") == seed
            and opts.get("timestamps") == timestamps
            and opts.get("bulk", False) == bulk
            and opts.get("same_message", False) == same
            and all((folder / f).exists() for f in truth["files"].values())
        ):
            return False
    argv = [
        sys.executable,
        str(HERE / "pairs.py"),
        str(folder),
        "--sessions",
        str(sessions),
        "--tampered",
        str(tampered),
        "--seed",
        str(seed),
    ]
    if not timestamps:
        argv.append("--no-timestamps")
    if bulk:
        argv.append("--bulk")
    if same:
        argv.append("--same-message")
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return True


# --- Measuring (in a child process per variant) -------------------------------------------------


def _rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(folder: Path) -> dict[str, Any]:
    """Read alone, then analyze, then check; the figures of one capture pair."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from analyzer.pipeline import analyze, run_capture

    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    client, server = (folder / truth["files"][k] for k in ("client_side", "server_side"))
    rss_start = _rss_mb()
    began, began_cpu = time.perf_counter(), time.process_time()
    runs = (run_capture([client], "client"), run_capture([server], "server"))
    read_s, read_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    read_sessions = [len(r.sessions) for r in runs]
    del runs
    gc.collect()
    rss_read = _rss_mb()
    began, began_cpu = time.perf_counter(), time.process_time()
    analysis = analyze(client_side=client, server_side=server)
    analyze_s, analyze_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    rss_analyze = _rss_mb()
    result = check(truth, analysis)
    offset = truth["options"]["clock_offset_s"]
    clock = analysis.clock
    return {
        "folder": str(folder),
        "timestamps": truth["options"]["timestamps"],
        "bulk": truth["options"].get("bulk", False),
        "same_message": truth["options"].get("same_message", False),
        "sessions": result.sessions,
        "tampered": result.tampered,
        "capture_bytes": truth["stats"]["client_bytes"] + truth["stats"]["server_bytes"],
        "capture_frames": truth["stats"]["client_frames"] + truth["stats"]["server_frames"],
        "max_concurrent": truth["stats"]["max_concurrent"],
        "read_sessions": read_sessions,
        "read_alone_s": round(read_s, 3),
        "analyze_s": round(analyze_s, 3),
        "ratio": round(analyze_s / read_s, 2) if read_s else None,
        "read_alone_cpu_s": round(read_cpu, 3),
        "analyze_cpu_s": round(analyze_cpu, 3),
        "ratio_cpu": round(analyze_cpu / read_cpu, 2) if read_cpu else None,
        "peak_rss_mb": {
            "start": round(rss_start, 1),
            "after_read_alone": round(rss_read, 1),
            "after_analyze": round(rss_analyze, 1),
        },
        "clock": {
            "true_offset_s": offset,
            "estimated_offset_s": clock.offset_s if clock else None,
            "method": clock.method if clock else None,
            "support": clock.support if clock else None,
        },
        "pairs": len(analysis.pairs),
        "findings": len(analysis.findings),
        "pairing_accuracy": round(result.accuracy, 6),
        "paired_correctly": result.paired_correctly,
        "failures": {
            problem: len(result.of(problem))
            for problem in ("mispaired", "unmatched", "missed", "false_flag")
        },
        "failure_examples": [asdict(f) for f in result.failures[:KEPT_FAILURES]],
        "ok": result.ok,
    }


def _print(row: dict[str, Any]) -> None:
    name = "with TCP timestamps" if row["timestamps"] else "without TCP timestamps"
    name += ", newsletter run (--bulk)" if row["bulk"] else ""
    name += ", one message relayed (--same-message)" if row.get("same_message") else ""
    clock = row["clock"]
    est = clock["estimated_offset_s"]
    rss = row["peak_rss_mb"]
    print(f"\n== {row['sessions']} sessions ({row['tampered']} tampered), {name}")
    print(
        f"   capture pair: {row['capture_frames']} frames, {row['capture_bytes'] / 1e6:.1f} MB, "
        f"up to {row['max_concurrent']} connections open at once"
    )
    print(
        f"   read alone {row['read_alone_s']:.2f} s | analyze {row['analyze_s']:.2f} s | "
        f"ratio {row['ratio']}   (CPU: {row['read_alone_cpu_s']:.2f} s | "
        f"{row['analyze_cpu_s']:.2f} s | ratio {row['ratio_cpu']})"
    )
    print(
        f"   peak RSS: {rss['after_read_alone']:.0f} MB after read-alone, "
        f"{rss['after_analyze']:.0f} MB after analyze"
    )
    print(
        f"   clock: {clock['method']} {est if est is None else round(est, 6)} s "
        f"(true {clock['true_offset_s']} s + transit), support {clock['support']}"
    )
    fails = row["failures"]
    print(
        f"   pairing accuracy {row['pairing_accuracy'] * 100:.2f}% "
        f"({row['paired_correctly']}/{row['sessions']}); mispaired {fails['mispaired']}, "
        f"unmatched {fails['unmatched']}, missed findings {fails['missed']}, "
        f"false flags {fails['false_flag']}"
    )
    shown: dict[str, int] = defaultdict(int)
    for f in row["failure_examples"]:
        if shown[f["problem"]] >= SHOWN_FAILURES:
            continue
        shown[f["problem"]] += 1
        print(
            f"   - {f['problem']}: {f['client_id']} (true {f['server_id']}, got {f['peer']}), "
            f"tampering {list(f['tampering']) or None}, expected {list(f['expected'])}, "
            f"found {list(f['found'])}\n       {f['note']}"
        )
    print(f"   {'OK' if row['ok'] else 'FAILED'}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--tampered", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, from: {', '.join(VARIANTS)} (default: %(default)s)",
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure is not None:
        # The child: one capture pair, figures as JSON on stdout.
        print(json.dumps(measure(args.measure)))
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        parser.error(f"unknown variant(s): {', '.join(unknown) or '(none)'}")
    if args.sessions < 1 or not 0.0 <= args.tampered <= 1.0:
        parser.error("--sessions must be positive and --tampered a fraction")
    rows: list[dict[str, Any]] = []
    for variant in variants:
        same = variant.startswith("same-message-")
        bulk = same or variant.startswith("bulk-")
        timestamps = variant.removeprefix("bulk-").removeprefix("same-message-") == "timestamps"
        folder = pair_dir(args.sessions, args.tampered, args.seed, timestamps, bulk, same)
        began = time.perf_counter()
        made = ensure_pair(folder, args.sessions, args.tampered, args.seed, timestamps, bulk, same)
        if made:
            print(f"generated {folder} in {time.perf_counter() - began:.1f} s")
        child = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--measure", str(folder)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=False,
        )
        if child.returncode != 0:
            print(child.stderr[-4000:], file=sys.stderr)
            print(f"the analysis of {folder} failed (exit {child.returncode})", file=sys.stderr)
            return 1
        row = json.loads(child.stdout)
        row["variant"] = variant
        rows.append(row)
        _print(row)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "sessions": args.sessions,
                "tampered": args.tampered,
                "seed": args.seed,
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "results": rows,
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"\nwrote {args.json}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
