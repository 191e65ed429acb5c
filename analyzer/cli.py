"""The `smtpfw` command: parse arguments, call the pipeline, print or write, pick the exit code.

No analysis logic lives here. Exit codes: 0 success (and, for `analyze`, no findings),
1 findings, 2 unusable input or arguments (one line on stderr naming the file and the problem),
or, for `analyze`, two captures that do not overlap (the verdict says so).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from analyzer.capture import CaptureStats
from analyzer.capture.source import is_stream
from analyzer.engines import ENGINES, check_captures
from analyzer.errors import SmtpfwError, UsageError
from analyzer.jsontext import dumps_indented
from analyzer.report import digest
from analyzer.report.digest import plural
from analyzer.report.model import Report
from analyzer.report.sessions import JsonArray, SessionTable, session_row
from analyzer.session.export import session_dict
from analyzer.session.model import SmtpSession
from analyzer.text import visible

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"smtpfw: error: {message}\n")
        raise SystemExit(EXIT_BAD_INPUT)


def _usable_files(
    paths: Sequence[str], err: TextIO, engine: str = "native"
) -> tuple[list[str], bool]:
    """The files that open as captures; each unusable one is reported on its own line."""
    good, problems = check_captures(paths, engine)
    for problem in problems:
        err.write(f"smtpfw: error: {problem}\n")
    return good, bool(problems)


def _cmd_sessions(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """List sessions as their connections end, in tcp.stream order (the order connections first
    appear, which is their start order unless the capture's clock steps back): memory does not
    grow with the capture. See `analyzer.parallel` for the one exception to the order."""
    files, bad = _usable_files(args.files, err, args.engine)
    if not files:
        return EXIT_BAD_INPUT
    writer: JsonArray | SessionTable
    if args.json:
        array = writer = JsonArray(out)

        def render(session: SmtpSession) -> Any:
            return dumps_indented(session_dict(session))

        def place(rendered: Any, index: int) -> None:
            array.add(rendered)
    else:
        table = writer = SessionTable(out)

        def render(session: SmtpSession) -> Any:
            return session_row(session)

        def place(rendered: Any, index: int) -> None:
            table.add(rendered)

    read: list[CaptureStats] = []
    connections = ENGINES[args.engine].map_sessions(files, "single", render, place, read.append)
    if read:
        stats = read[0]
        empty = stats.packets == 0 and all(
            os.path.getsize(f) == 0 for f in files if not is_stream(f)
        )
        name = ", ".join(files)
        nothing = _said_damage(name, stats.packets, stats.anomaly_counts, empty, err)
        bad = bad or nothing
        if not nothing and not writer.count:
            err.write(
                visible(
                    f"smtpfw: note: {name}: no SMTP sessions in this capture, nothing to "
                    f"judge ({plural(stats.packets, 'packet')}, "
                    f"{plural(connections, 'TCP connection')}, "
                    f"{plural(stats.non_tcp, 'non-TCP packet')})"
                )
                + "\n"
            )
    writer.close()
    return EXIT_BAD_INPUT if bad else EXIT_OK


def _report_name(args: argparse.Namespace) -> str:
    """reports/<name>/: the folder holding the capture pair, or the capture's own name."""
    files = [Path(f) for f in (args.client_side or []) + (args.server_side or []) + args.files]
    parents = {f.resolve().parent for f in files}
    if len(parents) == 1 and len(files) > 1:
        return parents.pop().name
    first = files[0]
    return first.name.split(".")[0] if len(files) == 1 else first.resolve().parent.name


def _finding_line(finding: Mapping[str, Any]) -> str:
    return visible(
        f"{finding['id']:>4} {finding['severity']:<8} {finding['confidence']:<9} "
        f"{finding['kind']:<26} {','.join(finding['sessions'])}: {finding['summary']}"
    )


def _analyze_and_write(
    single: list[str],
    client: list[str],
    server: list[str],
    out_dir: Path,
    formats: tuple[str, ...],
    time_offset: float | None,
    out: TextIO,
    keep_orientation: bool = False,
) -> Report:
    from analyzer.pipeline import analyze
    from analyzer.report import build_report, digest

    analysis = analyze(
        single or None,
        client_side=client or None,
        server_side=server or None,
        time_offset=time_offset,
        keep_orientation=keep_orientation,
    )
    report = build_report(analysis)
    written = _write_report(report, out_dir, formats)
    for notice in digest.notices(report):
        out.write(visible(f"note: {notice}") + "\n")
    for finding in report["findings"]:
        out.write(_finding_line(finding) + "\n")
    verdict = digest.verdict(report)
    said = f"verdict: {verdict.headline}"
    if digest.verdict_kind(report) in ("no_overlap", "no_smtp"):
        said += f". {verdict.happened}"
    out.write(visible(said) + "\n")
    clock = report["clock"]
    summary = f"{len(report['sessions'])} session(s)"
    if clock is not None:
        summary += (
            f", {len(report['pairs'])} pair(s), clock offset {clock['offset_s']:+.3f} s "
            f"({clock['method']})"
        )
    summary += f", {len(report['findings'])} finding(s); wrote {', '.join(map(str, written))}"
    out.write(visible(summary) + "\n")
    return report


def _cmd_analyze_folder(args: argparse.Namespace, folder: Path, out: TextIO, err: TextIO) -> int:
    from analyzer.folders import find_pairs
    from analyzer.report.index import write_index

    pairs = find_pairs(folder)
    if not pairs:
        raise UsageError(f"{folder}: no capture pairs (client-side*/server-side* files) found")
    formats = _formats(args.format)
    out_root = _writable(Path(args.out) if args.out else Path("reports") / folder.resolve().name)
    worst = EXIT_OK
    done: list[tuple[str, Report]] = []
    for pair in pairs:
        out.write(f"== {pair.name}\n")
        client, client_bad = _usable_files([str(p) for p in pair.client_side], err)
        server, server_bad = _usable_files([str(p) for p in pair.server_side], err)
        if not client or not server:
            worst = EXIT_BAD_INPUT
            continue
        report = _analyze_and_write(
            [],
            client,
            server,
            out_root / pair.name,
            formats,
            args.time_offset,
            out,
            args.keep_orientation,
        )
        done.append((pair.name, report))
        unusable = _say_damage(report, err) or client_bad or server_bad
        code = EXIT_BAD_INPUT if unusable else _exit_code(report)
        worst = max(worst, code)
    index = write_index(done, out_root, formats)
    out.write(f"index: {', '.join(map(str, index))}\n")
    return worst


def _cmd_analyze(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.files and (args.client_side or args.server_side):
        raise UsageError("give either FILE or --client-side/--server-side, not both")
    if not args.files and not (args.client_side or args.server_side):
        raise UsageError("nothing to analyse: give FILE, or --client-side A --server-side B")
    if len(args.files) == 1 and Path(args.files[0]).is_dir():
        return _cmd_analyze_folder(args, Path(args.files[0]), out, err)
    formats = _formats(args.format)
    groups = [args.files, args.client_side or [], args.server_side or []]
    usable: list[list[str]] = []
    bad = False
    for group in groups:
        good, group_bad = _usable_files(group, err)
        bad = bad or group_bad
        usable.append(good)
    if bad and not all(usable[i] for i in range(3) if groups[i]):
        return EXIT_BAD_INPUT
    single, client, server = usable
    out_dir = _writable(Path(args.out) if args.out else Path("reports") / _report_name(args))
    report = _analyze_and_write(
        single, client, server, out_dir, formats, args.time_offset, out, args.keep_orientation
    )
    if _say_damage(report, err) or bad:
        return EXIT_BAD_INPUT
    return _exit_code(report)


def _say_damage(report: Report, err: TextIO) -> bool:
    """Name each damaged or empty capture on stderr; True when one of them held nothing
    readable."""
    nothing = False
    for capture in report["captures"]:
        empty = all(f["format"] == "empty" for f in capture["files"])
        nothing = (
            _said_damage(capture["path"], capture["packets"], capture["anomalies"], empty, err)
            or nothing
        )
    return nothing


def _said_damage(
    path: str, packets: int, anomalies: Mapping[str, int], empty: bool, err: TextIO
) -> bool:
    """Say on stderr what is wrong with one capture, if anything; True when nothing in it
    could be used."""
    damage = digest.damage({"anomalies": anomalies})
    if not damage and packets == 0:
        said = f"smtpfw: error: {path}: " + (
            "empty file (0 bytes): nothing to analyse"
            if empty
            else "the capture holds no packets: nothing to analyse"
        )
    elif not damage:
        return False
    elif packets == 0:
        said = f"smtpfw: error: {path}: nothing readable: {', '.join(damage)}"
    else:
        said = f"smtpfw: warning: {path}: {', '.join(damage)}; the results cover the readable part"
    err.write(visible(said) + "\n")
    return packets == 0


def _exit_code(report: Report) -> int:
    """2 when the two captures do not overlap (nothing was compared), else 1 with findings."""
    from analyzer.report import digest

    if digest.verdict_kind(report) == "no_overlap":
        return EXIT_BAD_INPUT
    return EXIT_FINDINGS if report["findings"] else EXIT_OK


def _writable(out_dir: Path) -> Path:
    """The output folder, made if need be; a folder that cannot be written is a usage error,
    found before any capture is read."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out_dir}: cannot make the folder: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out_dir}: the folder is not writable")
    return out_dir


FORMATS = ("json", "md", "html")


def _formats(value: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
    unknown = [v for v in chosen if v not in FORMATS]
    if unknown or not chosen:
        raise UsageError(f"--format: choose from {','.join(FORMATS)} (got {value!r})")
    return chosen


def _write_report(report: Any, out_dir: Path, formats: tuple[str, ...]) -> list[Path]:
    from analyzer.report import render

    written: list[Path] = []
    for fmt in formats:
        path = out_dir / f"report.{fmt}"
        render.write(report, fmt, path)
        written.append(path)
    return written


def _cmd_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from analyzer.report import load

    report = load(Path(args.report))
    formats = _formats(args.format)
    out_dir = _writable(Path(args.out) if args.out else Path(args.report).parent)
    written = _write_report(report, out_dir, formats)
    out.write(f"wrote {', '.join(str(p) for p in written)}\n")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="smtpfw",
        description="Find what a firewall did to SMTP, from captures taken on both sides of it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sessions = sub.add_parser(
        "sessions",
        help="list the SMTP sessions of a capture",
        description="One row per SMTP session. Several files are one capture (a rotation set), "
        "merged in time order.",
    )
    sessions.add_argument(
        "files", nargs="+", metavar="FILE", help="pcap/pcapng file(s), may be gzipped"
    )
    sessions.add_argument(
        "--json", action="store_true", help="JSON, in report.json's session shape"
    )
    sessions.add_argument(
        "--engine",
        choices=tuple(ENGINES),
        default="native",
        help=" or ".join(f"{e.name} ({e.summary})" for e in ENGINES.values()),
    )
    sessions.set_defaults(handler=_cmd_sessions)

    analyze = sub.add_parser(
        "analyze",
        help="find what a middlebox did (two captures) or its symptoms (one capture)",
        description="Pair the sessions of a client-side (outside) and a server-side (inside) "
        "capture, compare them byte by byte and report what changed; or, with one capture, "
        "diagnose the symptoms. Exit 0: no findings, 1: findings, 2: unusable input or "
        "arguments, or two captures that do not overlap.",
    )
    analyze.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="a single capture (or rotation set); or one folder of capture pairs "
        "(sub-folders holding client-side* and server-side* files): one report each and an index",
    )
    analyze.add_argument(
        "--client-side",
        nargs="+",
        metavar="FILE",
        help="capture(s) taken between the client and the firewall (outside)",
    )
    analyze.add_argument(
        "--server-side",
        nargs="+",
        metavar="FILE",
        help="capture(s) taken between the firewall and the server (inside)",
    )
    analyze.add_argument("--out", metavar="DIR", help="output folder (default reports/<name>/)")
    analyze.add_argument(
        "--format",
        default="json,md,html",
        help="comma-separated: json, md, html (default all three)",
    )
    analyze.add_argument(
        "--time-offset",
        type=float,
        metavar="SECONDS",
        help="server-side clock minus client-side clock (overrides the estimate)",
    )
    analyze.add_argument(
        "--keep-orientation",
        action="store_true",
        help="analyse the sides as given, even when the captures show that --client-side "
        "and --server-side were swapped",
    )
    analyze.set_defaults(handler=_cmd_analyze)

    report = sub.add_parser("report", help="re-render a saved report.json")
    report.add_argument("report", metavar="REPORT_JSON")
    report.add_argument("--format", default="html,md", help="comma-separated: json, md, html")
    report.add_argument("--out", metavar="DIR", help="output folder (default: the report's folder)")
    report.set_defaults(handler=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out, err = sys.stdout, sys.stderr
    try:
        code: int = args.handler(args, out, err)
        return code
    except SmtpfwError as exc:
        err.write(f"smtpfw: error: {exc}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err.write("smtpfw: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug: one line, never a traceback, unless asked for
        if os.environ.get("SMTPFW_DEBUG"):
            raise
        err.write(
            f"smtpfw: internal error: {type(exc).__name__}: {exc} (SMTPFW_DEBUG=1 shows where)\n"
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
