"""The tshark engine: SMTP sessions of a capture as Wireshark's dissectors see them.

`read_sessions_tshark(files, capture_id)` returns the same `SmtpSession` values as
`analyzer.read_sessions`, built by the same `SessionBuilder`, from what tshark shows: its file
readers (any format Wireshark opens, gzip included), its `tcp.stream` numbering, TCP sequence
analysis and reassembly, and its SMTP and TLS dissectors.

tshark runs twice over the capture, at the same time, as subprocesses read in step by frame
number:

- *fields*: one row per TCP segment (`tshark_fields`): roles, counters, FIN/RST and who sent
  them;
- *pdml*: the SMTP and TLS packets only, as PDML (`tshark_pdml`), the one output that
  keeps each field's bytes and position; plus the first bytes of every flow off the mail ports,
  to find SMTP there with the native pipeline's own rule.

When SMTP was found off the mail ports, those connections are dissected once more, their ports
decoded as SMTP (`-d tcp.port==N,smtp`), against a copy of the rows kept on disk. Memory
follows the open SMTP connections, not the capture. pyshark is not used: it parses the same
PDML into Python objects at about 4 ms a packet (2 ms as EK, which also loses field positions),
an order of magnitude slower than reading the PDML stream with `iterparse`, and opens one file
only.

Several files are one capture (a rotation set), joined as the native reader joins them: ordered
by their first packet's time and concatenated (`mergecap -a`) into a temporary pcapng, each
file's interfaces kept apart (`-I none`) so that every frame is traced back to its file and
per-file frame number (`FrameRef.file_no`, 0-based in time order). Connections that span two
files stay whole and `tcp.stream` numbers run across the set.
tshark reads with a private, empty configuration folder, so a user's Wireshark preferences
cannot change what it shows; the preferences this engine relies on are set explicitly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Final

from analyzer._common import FrameRef
from analyzer.errors import CaptureError, SmtpfwError
from analyzer.session.model import SmtpSession
from analyzer.smtp import looks_like_smtp_client, looks_like_smtp_server
from analyzer.smtp.detect import MAIL_PORTS, SNIFF_BYTES, sniff_decision

from .tshark_fields import DISPLAY_FILTER, TcpRow, fields_arguments, parse_row
from .tshark_flow import TsharkFlow
from .tshark_pdml import PROTOCOLS, SmtpFrame, read_pdml

TSHARK_MISSING: Final = "tshark not found: install Wireshark's tshark (Debian package tshark)"
TOOLS_MISSING: Final = (
    "{tool} not found: reading several files as one capture needs Wireshark's command-line "
    "tools (Debian package wireshark-common)"
)

MAX_OPEN_FLOWS: Final = 200_000
"""Open SMTP connections followed at once (the native flow table's default bound)."""
MAX_SNIFFED: Final = 200_000
"""Flows off the mail ports remembered while deciding whether they carry SMTP."""

WIRESHARK_SMTP_PORTS: Final = frozenset({25, 587})
"""Ports Wireshark 4.0 decodes as SMTP by default (`tshark -G decodes`)."""

PREFERENCES: Final[tuple[tuple[str, str], ...]] = (
    ("tcp.desegment_tcp_streams", "TRUE"),
    ("tcp.analyze_sequence_numbers", "TRUE"),
    ("tcp.relative_sequence_numbers", "TRUE"),
    ("tcp.reassemble_out_of_order", "TRUE"),
    ("smtp.desegment_lines", "TRUE"),
    ("smtp.desegment_data", "TRUE"),
)
"""Wireshark preferences the engine depends on, set on every run: the defaults, except that
out-of-order segments are put back in order before the SMTP dissector sees them (by default
it sees them in capture order and loses the start of a message whose first segment came late)."""

_NOISE: Final = re.compile(r"Running as user|^\s*$")
"""stderr lines of tshark that are not complaints."""
_CUT_SHORT: Final = re.compile(r"appears to have been cut short")
"""A file that ends inside a record: what was read before counts (as in the native reader)."""
_DAMAGED: Final = re.compile(r"appears to be damaged or corrupt")
"""A bad record: fatal when the file yields no packet before it, else the rest is lost."""
_QUOTED: Final = re.compile(r'"([^"]+)"')


@dataclass(slots=True)
class _Source:
    """The file tshark reads and how its frames map back to the user's files."""

    path: Path
    interface_files: list[int] = field(default_factory=list)
    """For a merged rotation set: the file number of each pcapng interface, by interface id."""
    merged: bool = False
    counts: dict[int, int] = field(default_factory=dict)
    """Frames seen so far per file."""

    def frame(self, capture_id: str, frame_no: int, interface: int) -> FrameRef:
        if not self.merged:
            return FrameRef(capture_id, frame_no)
        files = self.interface_files
        file_no = files[interface] if 0 <= interface < len(files) else 0
        number = self.counts.get(file_no, 0) + 1
        self.counts[file_no] = number
        return FrameRef(capture_id, number, file_no)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if name == "tshark":
            raise SmtpfwError(TSHARK_MISSING)
        raise SmtpfwError(TOOLS_MISSING.format(tool=name))
    return found


def _complaint(stderr: str) -> str | None:
    """tshark's (or mergecap's) one-line complaint, without the program-name prefix."""
    for line in stderr.splitlines():
        if _NOISE.search(line):
            continue
        line = line.strip()
        for prefix in ("tshark: ", "mergecap: ", "capinfos: "):
            if line.startswith(prefix):
                line = line[len(prefix) :]
        return line
    return None


def _blamed(message: str, paths: Sequence[Path]) -> Path:
    """The file a complaint names (the first given file when it names none)."""
    m = _QUOTED.search(message)
    if m:
        for path in paths:
            if m[1] in (str(path), path.name) or Path(m[1]).name == path.name:
                return path
    return paths[0]


def _environment(config_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env["WIRESHARK_CONFIG_DIR"] = config_dir
    env["LC_ALL"] = "C"
    return env


def _port_set(ports: frozenset[int] | set[int]) -> str:
    """Ports as the members of a display-filter set (`tcp.port in {25, 587}`)."""
    return ", ".join(str(p) for p in sorted(ports))


def _common_arguments(tshark: str, source: Path, decode_ports: Sequence[int]) -> list[str]:
    args = [tshark, "-n", "-r", str(source)]
    for name, value in PREFERENCES:
        args += ["-o", f"{name}:{value}"]
    for port in decode_ports:
        args += ["-d", f"tcp.port=={port},smtp"]
    return args


def _run_checked(
    args: list[str], env: dict[str, str], paths: Sequence[Path], *, packets: bool = False
) -> str:
    """Run a short tool to completion; its complaint about a file becomes a CaptureError
    (`packets`: the files are known to hold packets before any damage)."""
    done = subprocess.run(
        args,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    _check_exit(Path(args[0]).name, done.returncode, done.stderr, paths, packets=packets)
    return done.stdout


def _check_exit(
    program: str, status: int, stderr: str, paths: Sequence[Path], *, packets: bool
) -> None:
    """A failed run is the file's fault: CaptureError with the tool's complaint. A file cut
    short, or damaged after some packets (`packets`), is not an error: what was read before
    counts, as in the native reader."""
    if status == 0:
        return
    complaint = _complaint(stderr)
    if complaint is not None and (
        _CUT_SHORT.search(complaint) or (packets and _DAMAGED.search(complaint))
    ):
        return
    message = complaint or f"{program} exited with status {status}"
    raise CaptureError(_blamed(message, paths), message)


# -- rotation sets ---------------------------------------------------------------------------

_INTERFACES = re.compile(r"^Number of interfaces in file:\s*(\d+)", re.MULTILINE)
_FIRST_PACKET = re.compile(r"^First packet time:\s*([0-9.]+)", re.MULTILINE)


def _merge(paths: Sequence[Path], folder: str, env: dict[str, str]) -> _Source:
    """Join a rotation set as the native reader does: files ordered by their first packet's
    time (files without packets last, ties by name), then concatenated (`mergecap -a`), each
    file's interfaces kept apart (`-I none`) so every frame can be traced back to its file."""
    capinfos = _tool("capinfos")
    mergecap = _tool("mergecap")
    facts: list[tuple[bool, float, str, Path, int]] = []
    for path in paths:
        done = subprocess.run(
            [capinfos, "-M", "-I", "-a", "-S", str(path)],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
        first = _FIRST_PACKET.search(done.stdout)
        interfaces = _INTERFACES.search(done.stdout)
        _check_exit("capinfos", done.returncode, done.stderr, [path], packets=first is not None)
        facts.append(
            (
                first is None,
                float(first[1]) if first else 0.0,
                str(path),
                path,
                int(interfaces[1]) if interfaces else 1,
            )
        )
    facts.sort(key=lambda f: f[:3])
    interface_files: list[int] = []
    for file_no, fact in enumerate(facts):
        interface_files += [file_no] * fact[4]
    merged = Path(folder) / "merged.pcapng"
    ordered = [str(f[3]) for f in facts]
    _run_checked(
        [mergecap, "-a", "-I", "none", "-F", "pcapng", "-w", str(merged), *ordered],
        env,
        paths,
        packets=True,  # each file opened above; damage later in one only loses its rest
    )
    return _Source(merged, interface_files, merged=True)


# -- finding SMTP off the mail ports ---------------------------------------------------------


class _Sniffer:
    """Which flows off the mail ports carry SMTP, by the native pipeline's own rule: up to
    `SNIFF_BYTES` of each segment are collected per direction until they look like an SMTP
    greeting or client opening (SMTP), or hold a line end or `SNIFF_BYTES` octets without doing
    so (not SMTP); the first direction to decide wins. At most `MAX_SNIFFED` undecided and
    `MAX_SNIFFED` refused flows are remembered (the oldest are forgotten first)."""

    def __init__(self) -> None:
        self._refused: OrderedDict[int, None] = OrderedDict()
        self._seen: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self.streams: set[int] = set()
        self.server_ports: set[int] = set()

    def feed(self, stream: int, sport: int, dport: int, payload: bytes) -> None:
        if stream in self.streams or stream in self._refused or not payload:
            return
        key = (stream, sport)
        got = self._seen.pop(key, b"") + payload[:SNIFF_BYTES]
        server = looks_like_smtp_server(got)
        client = not server and looks_like_smtp_client(got)
        decided = sniff_decision(got, server or client)
        if decided:
            self.server_ports.add(sport if server else dport)
            self.streams.add(stream)
        elif decided is not None:
            self._refused[stream] = None
            if len(self._refused) > MAX_SNIFFED:
                self._refused.popitem(last=False)
        else:
            self._seen[key] = got
            if len(self._seen) > MAX_SNIFFED:
                self._seen.popitem(last=False)
            return
        self._seen.pop((stream, dport), None)  # the other direction's bytes


# -- the passes, read in step ------------------------------------------------------------------


@dataclass(slots=True)
class _Running:
    """A tshark pass whose output is being read; its stderr goes to a temporary file."""

    proc: subprocess.Popen[bytes]
    stderr: IO[bytes]

    def check(self, paths: Sequence[Path], *, packets: bool) -> None:
        """After its output was read to the end: did it fail?"""
        status = self.proc.wait()
        self.stderr.seek(0)
        stderr = self.stderr.read().decode("utf-8", "replace")
        _check_exit("tshark", status, stderr, paths, packets=packets)


def _start(args: list[str], env: dict[str, str], stack: ExitStack) -> _Running:
    errors: IO[bytes] = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
    proc = subprocess.Popen(
        args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
    )
    stack.callback(_stop, proc)
    return _Running(proc, errors)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


class _Rows:
    """The fields pass's lines as (row, or None for a frame that is not a TCP segment; frame
    number; interface id), counting them and, when asked, keeping a copy for a second reading."""

    def __init__(self, stream: IO[bytes], copy: IO[bytes] | None = None) -> None:
        self._stream = stream
        self._copy = copy
        self.count = 0

    def __iter__(self) -> Iterator[tuple[TcpRow | None, int, int]]:
        copy = self._copy
        for raw in self._stream:
            if copy is not None:
                copy.write(raw)
            line = raw.decode("utf-8", "replace")
            row = parse_row(line)
            if row is not None:
                self.count += 1
                yield row, row.frame_no, row.interface
                continue
            cols = line.split("\t", 3)
            if len(cols) >= 3 and cols[0].isdigit():
                self.count += 1
                yield None, int(cols[0]), int(cols[2]) if cols[2].isdigit() else 0


def _on_mail_port(row: TcpRow) -> bool:
    return row.sport in MAIL_PORTS or row.dport in MAIL_PORTS


def _sessions(
    rows: Iterable[tuple[TcpRow | None, int, int]],
    frames: Iterator[SmtpFrame],
    source: _Source,
    capture_id: str,
    wanted: Callable[[TcpRow], bool],
    sniffer: _Sniffer | None = None,
) -> Iterator[SmtpSession]:
    """Join the two passes by frame number; build the `wanted` connections, and show the
    others' first bytes to the `sniffer`. Beyond `MAX_OPEN_FLOWS` open connections the least
    recently active one is finished early (`FLOW_EVICTED`), as in the native flow table."""
    flows: OrderedDict[int, TsharkFlow] = OrderedDict()
    finished: set[int] = set()
    pending = next(frames, None)
    for row, frame_no, interface in rows:
        ref = source.frame(capture_id, frame_no, interface)
        while pending is not None and pending.frame_no < frame_no:
            pending = next(frames, None)
        smtp_frame = None
        if pending is not None and pending.frame_no == frame_no:
            smtp_frame, pending = pending, next(frames, None)
        if row is None or row.stream in finished:
            continue
        flow = flows.get(row.stream)
        if flow is None:
            if not wanted(row):
                if sniffer is not None and smtp_frame is not None:
                    sniffer.feed(row.stream, row.sport, row.dport, smtp_frame.payload)
                continue
            if len(flows) >= MAX_OPEN_FLOWS:
                index, oldest = flows.popitem(last=False)
                finished.add(index)
                yield oldest.finish(evicted=f"more than {MAX_OPEN_FLOWS} open connections")
            flow = flows[row.stream] = TsharkFlow(capture_id, row, ref)
        else:
            flows.move_to_end(row.stream)
        flow.add_row(row, ref)
        if smtp_frame is not None:
            flow.add_smtp(smtp_frame, row, ref)
        if flow.closed:
            del flows[row.stream]
            finished.add(row.stream)
            yield flow.finish()
    for index in sorted(flows):
        yield flows[index].finish()


def iter_sessions_tshark(
    files: Sequence[str | os.PathLike[str]], capture_id: str = "single"
) -> Iterator[SmtpSession]:
    """Each SMTP session of the capture as soon as tshark's view of its connection is complete."""
    if not files:
        return
    tshark = _tool("tshark")
    paths = [Path(f) for f in files]
    with ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="smtpfw-tshark-"))
        config = Path(folder) / "config"
        config.mkdir()
        env = _environment(str(config))
        source = _merge(paths, folder, env) if len(paths) > 1 else _Source(paths[0])
        only_tcp = [] if source.merged else ["-Y", DISPLAY_FILTER]  # merged: count every frame
        decode = sorted(MAIL_PORTS - WIRESHARK_SMTP_PORTS)
        common = _common_arguments(tshark, source.path, decode)
        fields = _start([*common, *only_tcp, *fields_arguments()], env, stack)
        mail = _port_set(MAIL_PORTS)
        pdml_filter = (
            f"(smtp || (tls.handshake.type == 1 && tcp.port in {{{mail}}}) || (tcp.len > 0 "
            f"&& tcp.seq <= {SNIFF_BYTES} && !(tcp.port in {{{mail}}}))) && !icmp && !icmpv6"
        )
        pdml = _start([*common, "-Y", pdml_filter, "-T", "pdml", "-J", PROTOCOLS], env, stack)
        assert fields.proc.stdout is not None and pdml.proc.stdout is not None
        copy: IO[bytes] = stack.enter_context(tempfile.TemporaryFile())
        rows = _Rows(fields.proc.stdout, copy)
        sniffer = _Sniffer()
        yield from _sessions(
            rows, read_pdml(pdml.proc.stdout), source, capture_id, _on_mail_port, sniffer
        )
        fields.check(paths, packets=rows.count > 0)
        pdml.check(paths, packets=rows.count > 0)
        if not sniffer.streams:
            return
        # SMTP found off the mail ports: dissect those connections again, decoded as SMTP.
        found = sniffer.streams
        decode = sorted((sniffer.server_ports | MAIL_PORTS) - WIRESHARK_SMTP_PORTS)
        common = _common_arguments(tshark, source.path, decode)
        streams = ", ".join(str(n) for n in sorted(found))
        again = _start(
            [
                *common,
                "-Y",
                f"tcp.stream in {{{streams}}} && (smtp || tls.handshake.type == 1)",
                "-T",
                "pdml",
                "-J",
                PROTOCOLS,
            ],
            env,
            stack,
        )
        assert again.proc.stdout is not None
        copy.seek(0)
        yield from _sessions(
            _Rows(copy),
            read_pdml(again.proc.stdout),
            replace(source, counts={}),
            capture_id,
            lambda row: row.stream in found,
        )
        again.check(paths, packets=True)


def read_sessions_tshark(
    files: Sequence[str | os.PathLike[str]], capture_id: str = "single"
) -> list[SmtpSession]:
    """Every SMTP session of a capture (one file, or a rotation set given as a list), as
    Wireshark's dissectors see it, ordered by start like `analyzer.read_sessions`.

    Raises `SmtpfwError` when tshark is not installed and `CaptureError` (with tshark's own
    complaint) when a file cannot be read.
    """
    sessions = list(iter_sessions_tshark(files, capture_id))
    sessions.sort(key=lambda s: (s.start_ts, s.flow.index))
    return sessions


def check_capture_tshark(path: str | os.PathLike[str]) -> None:
    """Raise `CaptureError` with tshark's complaint when tshark cannot read `path`."""
    tshark = _tool("tshark")
    with tempfile.TemporaryDirectory(prefix="smtpfw-tshark-") as folder:
        env = _environment(folder)
        _run_checked(
            [tshark, "-n", "-r", str(path), "-c", "1", "-T", "fields", "-e", "frame.number"],
            env,
            [Path(path)],
        )
