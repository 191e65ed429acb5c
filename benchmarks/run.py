#!/usr/bin/env python3
"""Time `smtpfw sessions` against tshark's SMTP dissector on large generated captures.

For each size asked for, it writes a capture with `generate.py` (or reuses the one cached under
`benchmarks/out/`), then runs, one after the other, as child processes:

1. `smtpfw sessions FILE --json` (the console script next to this Python, else
   `python -m analyzer`);
2. `tshark -r FILE -Y smtp -T fields -e smtp.req.command -e smtp.response.code`.

Each child's wall time and peak resident set size (`ru_maxrss` of that child alone, from
`os.wait4`) are measured. It prints a table, says whether smtpfw's peak memory grows with the file
size and whether the targets are met, and writes `benchmarks/out/results.json`. As a sanity
check it also compares the sessions and MAIL transactions each tool reports with what the
generator wrote (a fast but wrong result is no result).

It does not judge anything else about the output and does not profile; exit status is 1 when
smtpfw fails on a capture (or, with --strict, misses a target), 2 on bad arguments.

    .venv/bin/python benchmarks/run.py [--sizes 250M,1G] [--quick] [--seed 1] [--repeat 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT_DIR = HERE / "out"
DEFAULT_SIZES = ("250M", "1G")
QUICK_SIZES = ("100M",)

TARGET_SPEEDUP = 5.0
"""smtpfw must be at least this many times faster than the tshark pass on the 1 GB capture."""
AIM_SPEEDUP = 10.0
TARGET_PEAK_RSS_MB = 150.0
"""smtpfw's peak resident memory must stay under this, whatever the file size."""
FLAT_MEMORY_TOLERANCE = (1.25, 16.0)
"""Peak RSS counts as not growing when the largest capture's is within ×1.25 + 16 MB of the
smallest one's."""
TARGET_MIN_BYTES = 1 << 30
"""The speed target applies to captures of at least this size."""
STDERR_TAIL = 2000
TSHARK_ARGS = ("-Y", "smtp", "-T", "fields", "-e", "smtp.req.command", "-e", "smtp.response.code")
"""What tshark is asked to do: dissect every frame, print the SMTP command and reply codes."""


def _load_generator() -> ModuleType:
    """generate.py, imported by path (benchmarks/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("smtpfw_bench_generate", HERE / "generate.py")
    if spec is None or spec.loader is None:
        raise ImportError("benchmarks/generate.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True, slots=True)
class Measurement:
    """One child process run to completion."""

    argv: tuple[str, ...]
    exit_code: int
    wall_s: float
    cpu_s: float
    """User plus system CPU time of the child: unlike wall time, it barely moves when other
    processes compete for the CPUs."""
    peak_rss_mb: float
    """ru_maxrss of this child (KiB on Linux) in MiB."""
    stderr_tail: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def measure(argv: Sequence[str], stdout_path: Path) -> Measurement:
    """Run `argv` with stdout to `stdout_path`; wall time and the child's own peak RSS."""
    with open(stdout_path, "wb") as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
                env=_child_env(),
            )
        except OSError as exc:
            return Measurement(tuple(argv), 127, 0.0, 0.0, 0.0, f"cannot start: {exc}")
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
        err.seek(0)
        tail = err.read()[-STDERR_TAIL:].decode("utf-8", "replace")
    cpu = usage.ru_utime + usage.ru_stime
    return Measurement(tuple(argv), proc.returncode, wall, cpu, usage.ru_maxrss / 1024, tail)


def _child_env() -> dict[str, str]:
    """The environment with the repository first on PYTHONPATH, for `python -m analyzer`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def smtpfw_argv() -> list[str]:
    """The installed console script next to this interpreter, else `python -m analyzer`."""
    script = Path(sys.executable).with_name("smtpfw")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "analyzer"]


def smtpfw_build() -> str:
    """Which build of smtpfw this interpreter runs: "compiled" (`make compiled`) or "pure"."""
    probe = "import analyzer.smtp.observer as m; print(m.__file__)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    return "compiled" if out.stdout.strip().endswith(".so") else "pure"


def tshark_version(tshark: str) -> str:
    try:
        out = subprocess.run([tshark, "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def capture_for(
    gen: ModuleType, label: str, seed: int, mbps: float, regenerate: bool
) -> tuple[Path, dict[str, Any]]:
    """The cached capture for (size, seed, rate), written first if missing or stale."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    size = gen.parse_size(label)
    path = OUT_DIR / f"smtp-{label}-seed{seed}-{mbps:g}mbps.pcap"
    stats_path = path.with_suffix(".stats.json")
    if not regenerate and path.exists() and stats_path.exists():
        try:
            stats: dict[str, Any] = json.loads(stats_path.read_text())
        except ValueError:
            stats = {}
        if (
            stats.get("generator_version") == gen.GENERATOR_VERSION
            and stats.get("target_bytes") == size
            and stats.get("seed") == seed
            and stats.get("mbps") == mbps
            and stats.get("bytes") == path.stat().st_size
        ):
            print(f"reusing {path.relative_to(HERE.parent)} ({stats['bytes'] / 1e6:.0f} MB)")
            return path, stats
    print(f"writing {path.relative_to(HERE.parent)} ({label}, seed {seed}) …", flush=True)
    started = time.perf_counter()
    result = gen.generate(path, size, seed, mbps=mbps)
    stats = asdict(result)
    stats["generate_s"] = round(time.perf_counter() - started, 2)
    stats_path.write_text(json.dumps(stats, indent=2) + "\n")
    print(
        f"  {stats['bytes'] / 1e6:.0f} MB, {stats['packets']} packets, "
        f"{stats['smtp_sessions']} SMTP sessions (peak {stats['peak_concurrency']} open), "
        f"{stats['transactions']} transactions, "
        f"in {stats['generate_s']:.1f} s"
    )
    return path, stats


def count_ours(json_path: Path) -> tuple[int, int] | None:
    """(sessions, transactions with a MAIL FROM) in smtpfw's JSON output, None if unreadable."""
    try:
        with open(json_path, "rb") as fh:
            sessions = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(sessions, list):
        return None
    transactions = sum(
        1
        for s in sessions
        if isinstance(s, dict)
        for t in s.get("transactions") or ()
        if isinstance(t, dict) and t.get("mail_from") is not None
    )
    return len(sessions), transactions


def count_tshark_mail(fields_path: Path) -> int:
    """MAIL commands in tshark's field output: the first column, comma-separated per frame."""
    count = 0
    with open(fields_path, "rb") as fh:
        for line in fh:
            commands = line.split(b"\t", 1)[0].upper().split(b",")
            count += sum(1 for c in commands if c.strip() == b"MAIL")
    return count


def best(runs: list[Measurement]) -> Measurement:
    """The fastest successful run (all runs are equal in memory to within noise), else the first."""
    ok = [r for r in runs if r.ok]
    return min(ok, key=lambda r: r.wall_s) if ok else runs[0]


def _fmt(value: float | None, spec: str) -> str:
    """`value` formatted with `spec` (such as '>8.1f'), or 'n/a' in the same width."""
    if value is None:
        return format("n/a", ">" + spec.lstrip("<>^=").split(".")[0])
    return format(value, spec)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def bench_one(
    gen: ModuleType,
    label: str,
    args: argparse.Namespace,
    tshark: str | None,
) -> dict[str, Any]:
    """Generate or reuse one capture, run both tools on it, return its row of results."""
    path, stats = capture_for(gen, label, args.seed, args.mbps, args.regenerate)
    repeat = args.repeat
    size_mb = path.stat().st_size / 1e6
    ours_json = path.with_suffix(".smtpfw.json")
    print(f"{label}: smtpfw sessions --json …", flush=True)
    ours_argv = [*smtpfw_argv(), "sessions", str(path), "--json"]
    ours_runs = [measure(ours_argv, ours_json) for _ in range(repeat)]
    ours = best(ours_runs)
    found = count_ours(ours_json) if ours.ok else None
    ours_json.unlink(missing_ok=True)
    if not ours.ok:
        print(f"  smtpfw failed (exit {ours.exit_code}): {ours.stderr_tail.strip()[-500:]}")
    row: dict[str, Any] = {
        "label": label,
        "file": str(path),
        "bytes": path.stat().st_size,
        "generated": stats,
        "smtpfw": {
            **asdict(ours),
            "ok": ours.ok,
            "mb_per_s": round(size_mb / ours.wall_s, 2) if ours.ok and ours.wall_s else None,
            "found": {"sessions": found[0], "transactions": found[1]} if found else None,
            "runs_s": [round(r.wall_s, 3) for r in ours_runs],
        },
    }
    if tshark is None:
        return row
    fields = path.with_suffix(".tshark.txt")
    print(f"{label}: tshark {' '.join(TSHARK_ARGS)} …", flush=True)
    t_runs = [measure([tshark, "-r", str(path), *TSHARK_ARGS], fields) for _ in range(repeat)]
    theirs = best(t_runs)
    mail = count_tshark_mail(fields) if theirs.ok else None
    fields.unlink(missing_ok=True)
    if not theirs.ok:
        print(f"  tshark failed (exit {theirs.exit_code}): {theirs.stderr_tail.strip()[-300:]}")
    row["tshark"] = {
        **asdict(theirs),
        "ok": theirs.ok,
        "mail_commands": mail,
        "runs_s": [round(r.wall_s, 3) for r in t_runs],
    }
    if ours.ok and theirs.ok:
        row["speedup"] = _ratio(theirs.wall_s, ours.wall_s)
        row["speedup_cpu"] = _ratio(theirs.cpu_s, ours.cpu_s)
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'capture':>7} {'MB':>5} {'open':>4} | {'smtpfw s':>8} {'cpu s':>6} {'MB/s':>5} "
        f"{'RSS MB':>6} {'sessions':>11} {'MAIL':>11} | {'tshark s':>8} {'cpu s':>6} "
        f"{'RSS MB':>6} {'MAIL':>11} | {'speed-up':>8} {'(cpu)':>6}"
    )
    print()
    print(header)
    print("-" * len(header))
    for row in rows:
        ours, theirs, gen = row["smtpfw"], row.get("tshark") or {}, row["generated"]
        found = ours["found"] or {}
        sessions = f"{found.get('sessions', '?')}/{gen['smtp_sessions']}"
        mails = f"{found.get('transactions', '?')}/{gen['transactions']}"
        if not ours["ok"]:
            sessions = mails = "FAILED"
        t_mail = f"{theirs['mail_commands']}/{gen['transactions']}" if theirs.get("ok") else "n/a"
        speedup, speedup_cpu = row.get("speedup"), row.get("speedup_cpu")
        print(
            f"{row['label']:>7} {row['bytes'] / 1e6:>5.0f} {gen['peak_concurrency']:>4} | "
            f"{ours['wall_s']:>8.1f} {ours['cpu_s']:>6.1f} {_fmt(ours['mb_per_s'], '>5.1f')} "
            f"{ours['peak_rss_mb']:>6.0f} {sessions:>11} {mails:>11} | "
            f"{_fmt(theirs.get('wall_s'), '>8.1f')} {_fmt(theirs.get('cpu_s'), '>6.1f')} "
            f"{_fmt(theirs.get('peak_rss_mb'), '>6.0f')} {t_mail:>11} | "
            f"{(f'{speedup:.2f}×' if speedup else 'n/a'):>8} "
            f"{(f'{speedup_cpu:.2f}×' if speedup_cpu else 'n/a'):>6}"
        )
    print()


def memory_verdict(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Does smtpfw's peak RSS grow with the file size? None with fewer than two good runs."""
    good = sorted((r for r in rows if r["smtpfw"]["ok"]), key=lambda r: r["bytes"])
    if len(good) < 2:
        return None
    small, large = good[0], good[-1]
    a, b = small["smtpfw"]["peak_rss_mb"], large["smtpfw"]["peak_rss_mb"]
    factor, slack = FLAT_MEMORY_TOLERANCE
    return {
        "smallest": {"label": small["label"], "peak_rss_mb": a},
        "largest": {"label": large["label"], "peak_rss_mb": b},
        "size_ratio": round(large["bytes"] / small["bytes"], 2),
        "rss_ratio": round(b / a, 3) if a else None,
        "grows": b > a * factor + slack,
    }


def check_targets(
    rows: list[dict[str, Any]], memory: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Each target with the measured value and whether it is met (speed is judged on wall time;
    the CPU-time ratio is recorded beside it)."""
    targets: list[dict[str, Any]] = []
    big = [r for r in rows if r["bytes"] >= TARGET_MIN_BYTES * 0.95 and r.get("speedup")]
    for row in big:
        targets.append(
            {
                "target": f"≥{TARGET_SPEEDUP:.0f}× faster than tshark on {row['label']} "
                f"(aim {AIM_SPEEDUP:.0f}×)",
                "value": row["speedup"],
                "value_cpu": row.get("speedup_cpu"),
                "met": row["speedup"] >= TARGET_SPEEDUP,
            }
        )
    peak = max((r["smtpfw"]["peak_rss_mb"] for r in rows if r["smtpfw"]["ok"]), default=None)
    if peak is not None:
        targets.append(
            {
                "target": f"peak RSS < {TARGET_PEAK_RSS_MB:.0f} MB",
                "value": round(peak, 1),
                "met": peak < TARGET_PEAK_RSS_MB,
            }
        )
    if memory is not None:
        targets.append(
            {
                "target": "peak RSS does not grow with file size",
                "value": memory["rss_ratio"],
                "met": not memory["grows"],
            }
        )
    return targets


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="smtpfw against tshark on generated captures.")
    parser.add_argument(
        "--sizes", default=",".join(DEFAULT_SIZES), help="comma-separated sizes (default 250M,1G)"
    )
    parser.add_argument("--quick", action="store_true", help="one 100M capture only")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--mbps", type=float, default=None, help="traffic rate of the captures (generator default)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest counts")
    parser.add_argument("--regenerate", action="store_true", help="ignore cached captures")
    parser.add_argument("--no-tshark", action="store_true", help="time smtpfw only")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--results", type=Path, default=OUT_DIR / "results.json")
    args = parser.parse_args(argv)

    gen = _load_generator()
    sizes = QUICK_SIZES if args.quick else tuple(s.strip() for s in args.sizes.split(","))
    labels = [s for s in sizes if s]
    try:
        for label in labels:
            gen.parse_size(label)
    except ValueError as exc:
        parser.error(str(exc))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.mbps is None:
        args.mbps = gen.DEFAULT_MBPS
    elif args.mbps <= 0:
        parser.error("--mbps must be positive")

    tshark = None if args.no_tshark else shutil.which("tshark")
    print(f"smtpfw: {' '.join(smtpfw_argv())}")
    print(f"tshark: {tshark_version(tshark) if tshark else 'not used'}")
    cpus = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    print(
        f"machine: {cpus} CPUs, {platform.machine()}, Python {platform.python_version()}; "
        f"smtpfw build: {smtpfw_build()}"
    )

    rows = [bench_one(gen, label, args, tshark) for label in labels]
    load_after = os.getloadavg()[0]
    print_table(rows)
    if max(load_before, load_after) > cpus:
        print(
            f"note: the machine was busy (load average {load_before:.1f} before, {load_after:.1f} "
            f"after, {cpus} CPUs); wall times are inflated, compare the cpu columns"
        )
    memory = memory_verdict(rows)
    if memory is not None:
        verdict = "grows" if memory["grows"] else "does not grow"
        print(
            f"smtpfw peak RSS {verdict} with file size: {memory['smallest']['peak_rss_mb']:.0f} MB "
            f"({memory['smallest']['label']}) → {memory['largest']['peak_rss_mb']:.0f} MB "
            f"({memory['largest']['label']}), {memory['size_ratio']}× the data"
        )
    targets = check_targets(rows, memory)
    for t in targets:
        cpu = f" (cpu time: {t['value_cpu']})" if t.get("value_cpu") else ""
        print(f"  [{'met' if t['met'] else 'MISSED'}] {t['target']}: {t['value']}{cpu}")
    results = {
        "schema": "smtpfw.bench/1",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": cpus,
            "arch": platform.machine(),
            "python": platform.python_version(),
            "tshark": tshark_version(tshark) if tshark else None,
            "load_average": [round(load_before, 2), round(load_after, 2)],
        },
        "smtpfw_command": smtpfw_argv(),
        "smtpfw_build": smtpfw_build(),
        "tshark_args": list(TSHARK_ARGS),
        "runs": rows,
        "memory": memory,
        "targets": targets,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"results: {args.results}")
    if not all(row["smtpfw"]["ok"] for row in rows):
        return 1
    if args.strict and not all(t["met"] for t in targets):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
