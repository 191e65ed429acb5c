"""Wire the layers together: read captures, dispatch their flows to SMTP, pair and judge.

`iter_sessions` and `run_capture` read one capture (a file or a rotation set) through the flow
table into `dispatch.SessionSink`, which hands on each session as its connection closes, so
memory is bounded by the number of open connections, not by the size of the capture;
`read_sessions` is the short form. `analyze` reads one capture, or the two sides of a firewall
(pairing their sessions, aligning each pair's streams, running the detectors) and returns an
`Analysis` (`result`).

It parses nothing itself and holds no wire facts: those live in the layers it wires. Reading
one capture with several processes is `parallel`'s; the tshark engine is `engines`'.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Final

from analyzer._common import CaptureSide
from analyzer.capture import Capture, CaptureFile, CaptureStats, PathLike, open_capture
from analyzer.capture.source import identity, is_stream, rereadable
from analyzer.correlate import (
    ClockEstimate,
    PairAlignment,
    Pairing,
    SessionPair,
    align_pair,
    estimate_offset,
    pair_sessions,
)
from analyzer.correlate.coverage import CaptureSpans
from analyzer.correlate.orientation import Orientation, judge_orientation
from analyzer.correlate.overlap import (
    Overlap,
    OverlapKind,
    corroborated_pairs,
    judge_overlap,
    same_traffic,
)
from analyzer.detect import Confidence, Finding, detect_pair, detect_single, number, unmatched
from analyzer.dispatch import PipelineStats, SessionSink, fewer_collections, role_hint
from analyzer.errors import UsageError
from analyzer.flows import FlowTable
from analyzer.result import Analysis, CaptureInfo
from analyzer.session.model import SmtpSession
from analyzer.smtp.secrets import CredentialKey


@dataclass(slots=True)
class CaptureRun:
    """One capture read end to end: its sessions (ordered by start) and counts."""

    capture_id: str
    files: tuple[CaptureFile, ...]
    capture_stats: CaptureStats
    pipeline_stats: PipelineStats
    sessions: list[SmtpSession]


def iter_sessions(
    capture: Capture,
    *,
    keep_streams: bool = False,
    stats: PipelineStats | None = None,
    credential_key: CredentialKey | None = None,
) -> Iterator[SmtpSession]:
    """Yield each SMTP session of `capture` as soon as its connection is finished.

    With `keep_streams`, each session's AUTH credentials are digested with `credential_key`
    (a new key when None): give the captures that are to be compared the same key."""
    sink = SessionSink(capture.capture_id, keep_streams, credential_key)
    if stats is not None:
        sink.stats = stats
    table = FlowTable(sink, role_hint=role_hint)
    sink.table = table
    finished = sink.finished
    add = table.add
    try:
        for segment in capture.segments(take=table):
            add(segment)
            while finished:
                yield sink.handed_on(finished.popleft())
        table.finish()
    finally:
        sink.table = None  # the table holds the sink: no cycle to leave behind
    while finished:
        yield sink.handed_on(finished.popleft())


def run_capture(
    paths: Sequence[PathLike],
    capture_id: str = "single",
    *,
    keep_streams: bool = False,
    credential_key: CredentialKey | None = None,
) -> CaptureRun:
    """Read a capture (one file or a rotation set) and return every session, ordered by start."""
    capture = open_capture(list(paths), capture_id)
    stats = PipelineStats()
    with fewer_collections():
        sessions = list(
            iter_sessions(
                capture, keep_streams=keep_streams, stats=stats, credential_key=credential_key
            )
        )
    sessions.sort(key=lambda s: (s.start_ts, s.flow.index))
    return CaptureRun(capture_id, capture.files, capture.stats, stats, sessions)


def read_sessions(
    path: PathLike | Sequence[PathLike], capture_id: str = "single"
) -> list[SmtpSession]:
    """Every SMTP session in a capture file (or a rotation set given as a list), by start."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    return run_capture(paths, capture_id).sessions


# -- two captures (or one) → findings ----------------------------------------------------------


def _as_paths(value: PathLike | Sequence[PathLike] | None) -> list[PathLike]:
    if value is None:
        return []
    if isinstance(value, str | os.PathLike):
        return [value]
    return list(value)


def _read(
    paths: list[PathLike],
    side: CaptureSide,
    keep_streams: bool,
    credential_key: CredentialKey | None = None,
) -> tuple[CaptureInfo, list[SmtpSession]]:
    run = run_capture(
        paths, side.capture_id, keep_streams=keep_streams, credential_key=credential_key
    )
    info = CaptureInfo(
        id=run.capture_id,
        role=side,
        paths=tuple(os.fspath(p) for p in paths),
        files=run.files,
        stats=run.capture_stats,
        pipeline=run.pipeline_stats,
    )
    return info, run.sessions


def analyze(
    single: PathLike | Sequence[PathLike] | None = None,
    *,
    client_side: PathLike | Sequence[PathLike] | None = None,
    server_side: PathLike | Sequence[PathLike] | None = None,
    time_offset: float | None = None,
    keep_orientation: bool = False,
) -> Analysis:
    """Analyse one capture, or the two sides of a firewall, and return sessions and findings.

    `client_side` is captured between the client and the firewall (outside), `server_side`
    between the firewall and the server (inside); each may be a rotation set (a list of files).
    `time_offset` (server-side clock minus client-side clock, seconds) overrides the estimate.
    When the captures show that they were given the wrong way round (`correlate.orientation`),
    they are analysed the right way round and `Analysis.sides_swapped` says so;
    `keep_orientation` analyses them as given whatever they show.

    Raises `UsageError` for one file (or the same packets) given for both sides, and for
    several files given as one capture that are not one rotation set.
    """
    if single is not None and (client_side is not None or server_side is not None):
        raise UsageError("give one capture, or --client-side and --server-side, not both")
    if single is None and client_side is None and server_side is None:
        raise UsageError("no capture given")
    if client_side is None or server_side is None:
        paths = _as_paths(single if single is not None else client_side or server_side)
        alone = (
            CaptureSide.SINGLE
            if single is not None
            else CaptureSide.CLIENT_SIDE
            if client_side is not None
            else CaptureSide.SERVER_SIDE
        )
        info, sessions = _read(paths, alone, keep_streams=False)
        if single is not None:
            _check_rotation_set(info, sessions)
        start_of = {s.id: s.start_ts for s in sessions}
        findings = detect_single(sessions)
        return Analysis([info], sessions, [], [], number(findings, start_of), None)

    given_client, given_server = _as_paths(client_side), _as_paths(server_side)
    _check_distinct(given_client, given_server)
    # One key for both sides' credential digests, however often they are read; it lives
    # only while they are read (never on a session, in a pickle or in a report).
    key = CredentialKey()
    side = _read_sides(given_client, given_server, time_offset, key)
    orientation = judge_orientation(side.corroborated) if side.overlap.proven else None
    swapped = orientation is not None and orientation.swapped and not keep_orientation
    if swapped and not all(rereadable(os.fspath(p)) for p in given_client + given_server):
        raise UsageError(
            "the captures were given the wrong way round, and a stream too long to be kept "
            "cannot be read again: give them the other way round (or --keep-orientation)"
        )
    if swapped:
        side = _read_sides(
            given_server, given_client, None if time_offset is None else -time_offset, key
        )
    return _two_sided(side, time_offset is not None, orientation, swapped, keep_orientation)


@dataclass(slots=True)
class _Sides:
    """Both captures read, their sessions paired, and whether they overlap."""

    client_info: CaptureInfo
    server_info: CaptureInfo
    client: list[SmtpSession]
    server: list[SmtpSession]
    clock: ClockEstimate
    pairing: Pairing
    corroborated: tuple[SessionPair, ...]
    overlap: Overlap


def _read_sides(
    client_paths: list[PathLike],
    server_paths: list[PathLike],
    time_offset: float | None,
    key: CredentialKey,
) -> _Sides:
    client_info, client = _read(client_paths, CaptureSide.CLIENT_SIDE, True, key)
    server_info, server = _read(server_paths, CaptureSide.SERVER_SIDE, True, key)
    if same_traffic(client, server):
        raise UsageError(
            f"{_names(client_paths)} and {_names(server_paths)} hold the same packets: give "
            "the capture of the other side of the firewall for one of them"
        )
    if time_offset is not None:
        clock = ClockEstimate(time_offset, "given", 0)
    else:
        clock = estimate_offset(client, server)
    pairing = pair_sessions(client, server, clock)
    corroborated = corroborated_pairs(pairing.pairs)
    overlap = judge_overlap(
        client,
        server,
        pairing.pairs,
        clock,
        _span(client_info, 0.0),
        _span(server_info, 0.0),
        corroborated,
    )
    return _Sides(client_info, server_info, client, server, clock, pairing, corroborated, overlap)


def _two_sided(
    side: _Sides,
    clock_given: bool,
    orientation: Orientation | None,
    swapped: bool,
    keep_orientation: bool,
) -> Analysis:
    client_info, server_info, clock, pairing = (
        side.client_info,
        side.server_info,
        side.clock,
        side.pairing,
    )
    all_sessions = side.client + side.server
    start_of = {s.id: s.start_ts for s in all_sessions}
    found: list[Finding] = []
    alignments: list[PairAlignment] = []
    if side.overlap.kind is not OverlapKind.NO_OVERLAP:
        # Captures that share no connection prove nothing together: no finding is made from
        # them (each one alone is a one-capture analysis, which says what it is).
        spans = CaptureSpans(_span(client_info, 0.0), _span(server_info, 0.0), clock.offset_s)
        alignments = [align_pair(pair, spans) for pair in pairing.pairs]
        for alignment in alignments:
            found.extend(detect_pair(alignment))
        found.extend(
            unmatched(
                pairing.client_only, CaptureSide.SERVER_SIDE, _span(server_info, -clock.offset_s)
            )
        )
        found.extend(
            unmatched(
                pairing.server_only, CaptureSide.CLIENT_SIDE, _span(client_info, clock.offset_s)
            )
        )
        found.extend(detect_single(list(pairing.client_only) + list(pairing.server_only)))
    if side.overlap.kind is OverlapKind.UNPROVEN_OVERLAP:
        found = [_unconfirmed(f) for f in found]
    # the look-alike pairs of captures that do not overlap are no one's peers
    pairs = [] if side.overlap.kind is OverlapKind.NO_OVERLAP else list(pairing.pairs)
    return Analysis(
        [client_info, server_info],
        all_sessions,
        pairs,
        alignments,
        number(found, start_of),
        clock,
        clock_given=clock_given,
        overlap=side.overlap,
        orientation=orientation,
        sides_swapped=swapped,
        keep_orientation=keep_orientation,
    )


def _unconfirmed(finding: Finding) -> Finding:
    """A finding of captures whose overlap is not proven: at most `likely`."""
    if finding.confidence is not Confidence.CONFIRMED:
        return finding
    details = dict(finding.details)
    details["confidence_capped"] = "unproven_overlap"
    return replace(
        finding,
        confidence=Confidence.LIKELY,
        details=details,
        confidence_note=finding.confidence_note
        or "the two captures are not shown to hold the same connections: no session pair is "
        "corroborated",
    )


def _names(paths: Sequence[PathLike]) -> str:
    return ", ".join(os.fspath(p) for p in paths)


FINGERPRINT_BYTES: Final = 1 << 20
"""Bytes hashed (with the size) to tell whether two files are copies of one capture."""


def _fingerprint(path: PathLike) -> tuple[int, bytes] | None:
    if is_stream(os.fspath(path)):
        return None  # read once, by the capture reader
    try:
        with open(path, "rb") as handle:
            head = handle.read(FINGERPRINT_BYTES)
            size = os.fstat(handle.fileno()).st_size
    except OSError:
        return None  # reading it will say what is wrong with it
    return size, hashlib.sha256(head).digest()


def _check_distinct(client_paths: list[PathLike], server_paths: list[PathLike]) -> None:
    """The two sides are different captures: not one file, nor copies of one file."""
    for c in client_paths:
        for s in server_paths:
            same = os.path.abspath(c) == os.path.abspath(s)
            known = identity(os.fspath(c))
            same = same or (known is not None and known == identity(os.fspath(s)))
            if not same:
                fc, fs = _fingerprint(c), _fingerprint(s)
                same = fc is not None and fc == fs
            if same:
                raise UsageError(
                    f"{os.fspath(c)} and {os.fspath(s)} are the same capture, given for both "
                    "the client side and the server side: give the capture of the other side "
                    "of the firewall for one of them"
                )


ROTATION_TOLERANCE_S: Final = 1.0
"""How far a file of a rotation set may start before the previous one ended: one capture
process writes its files one after the other, so only timestamps reordered by the kernel
overlap (milliseconds)."""


def _check_rotation_set(info: CaptureInfo, sessions: Sequence[SmtpSession]) -> None:
    """Several files given as one capture must be one rotation set: each starts after the
    previous one ends, all have the same link types and snapshot length, no connection opens
    in two of them, and files that both carry SMTP share an address (one capture point)."""
    files = [f for f in info.files if f.packets]
    if len(files) < 2:
        return
    problem = ""
    opened: dict[tuple[int, str], int] = {}
    addresses: dict[int, set[str]] = defaultdict(set)
    for session in sessions:
        frame = session.flow.syn_frame
        file_no = frame.file_no if frame is not None else _file_of(session)
        addresses[file_no].update((session.flow.client.ip, session.flow.server.ip))
        if session.flow.handshake_seen and session.flow.client_tsval is not None:
            key = (session.flow.client_tsval, session.helo or "")
            if opened.setdefault(key, file_no) != file_no:
                problem = "the same connections appear in two of them"
    numbered = list(enumerate(info.files))
    for (prev_no, prev), (file_no, cur) in itertools.pairwise(numbered):
        if not prev.packets or not cur.packets:
            continue
        if prev.link_types != cur.link_types or prev.snaplen != cur.snaplen:
            problem = problem or "they were not captured on the same kind of interface"
        elif (
            prev.last_ts is not None
            and cur.first_ts is not None
            and cur.first_ts < prev.last_ts - ROTATION_TOLERANCE_S
        ):
            problem = problem or "they were captured at the same time"
        elif (
            addresses[prev_no]
            and addresses[file_no]
            and not addresses[prev_no] & addresses[file_no]
        ):
            problem = problem or "they share no address (two capture points)"
    if problem:
        raise UsageError(
            f"{_names(info.paths)} are not one rotation set ({problem}); to compare the two "
            "sides of a firewall, give them as --client-side FILE --server-side FILE"
        )


def _file_of(session: SmtpSession) -> int:
    frame = next((line.frame for line in session.lines if line.frame is not None), None)
    return frame.file_no if frame is not None else 0


def _span(info: CaptureInfo, shift: float) -> tuple[float, float] | None:
    """A capture's time span moved onto the other capture's clock."""
    if info.first_ts is None or info.last_ts is None:
        return None
    return info.first_ts + shift, info.last_ts + shift
