"""Turn an `Analysis` into the report model (report.json's dictionaries).

Decides nothing: it copies what detection and correlation found, in a stable order, with
deterministic ids and rounded times so the same captures always give the same file.
Transcripts are kept for the sessions that findings name (and their peers), capped.
"""

from __future__ import annotations

from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from analyzer._common import Direction, FrameRef
from analyzer.correlate import PairAlignment
from analyzer.correlate.overlap import OverlapKind
from analyzer.detect import Confidence, Evidence, Finding
from analyzer.dispatch import SilentConnections
from analyzer.result import Analysis, CaptureInfo
from analyzer.session.export import session_dict
from analyzer.session.model import SmtpSession

from . import digest
from .model import (
    SCHEMA,
    CaptureEntry,
    EvidenceEntry,
    FindingEntry,
    OrientationEntry,
    PairEntry,
    Report,
    SilentEntry,
    TrafficEntry,
    TranscriptLine,
    VerdictEntry,
)

SILENT_ANOMALY = "connections_without_payload"
"""The capture anomaly that counts mail-port connections without payload (`traffic` says more)."""
UNSPOKEN_ANOMALY = "connections_without_smtp"
"""The capture anomaly that counts mail-port connections whose payload held no SMTP line."""
TRANSCRIPT_LINES = 400
"""Lines of dialogue kept per session in the report (`dropped.transcript_lines` counts the rest)."""
TIME_DIGITS = 6


def _t(ts: float | None) -> float | None:
    return None if ts is None else round(ts, TIME_DIGITS)


def _version() -> str:
    try:
        return version("smtpfw")
    except PackageNotFoundError:
        return "unknown"


def _files(info: CaptureInfo) -> dict[tuple[str, int], str]:
    return {(info.id, i): str(f.path) for i, f in enumerate(info.files)}


def _capture(info: CaptureInfo) -> CaptureEntry:
    # Every anomaly counted, also those past the `MAX_KEPT_ANOMALIES` kept in full.
    anomalies = Counter(info.stats.anomaly_counts)
    if info.pipeline.silent.count:
        anomalies[SILENT_ANOMALY] = info.pipeline.silent.count
    if info.pipeline.unspoken.count:
        anomalies[UNSPOKEN_ANOMALY] = info.pipeline.unspoken.count
    return {
        "id": info.id,
        "path": ", ".join(info.paths),
        "role": info.role,
        "packets": info.stats.packets,
        "first_ts": _t(info.first_ts),
        "last_ts": _t(info.last_ts),
        "files": [
            {
                "path": str(f.path),
                "format": f.format,
                "packets": f.packets,
                "first_ts": _t(f.first_ts),
                "last_ts": _t(f.last_ts),
                "link_types": list(f.link_types),
            }
            for f in info.files
        ],
        "smtp_sessions": info.pipeline.smtp_sessions,
        "anomalies": dict(sorted(anomalies.items())),
        "traffic": _traffic(info),
    }


def _traffic(info: CaptureInfo) -> TrafficEntry:
    stats, pipeline = info.stats, info.pipeline
    ports = sorted(pipeline.server_ports.items(), key=lambda item: (-item[1], item[0]))
    entry: TrafficEntry = {
        "tcp_segments": stats.tcp_segments,
        "non_tcp": stats.non_tcp,
        "non_ip": stats.non_ip,
        "tcp_connections": pipeline.tcp_flows,
        "server_ports": {str(port): count for port, count in ports},
        "other_ports": pipeline.other_ports,
    }
    if pipeline.silent.count:
        entry["connections_without_payload"] = _silent(pipeline.silent)
    unspoken = pipeline.unspoken
    if unspoken.count:
        entry["connections_without_smtp"] = {
            **_silent(unspoken),
            "client_bytes": unspoken.client_bytes,
        }
    return entry


def _silent(silent: SilentConnections) -> SilentEntry:
    return {
        "count": silent.count,
        "unanswered": silent.unanswered,
        "reset": silent.reset,
        "clients": len(silent.clients),
        "more_clients": silent.more_clients,
        "first_ts": _t(silent.first_ts),
        "last_ts": _t(silent.last_ts),
    }


def _evidence(e: Evidence, files: dict[tuple[str, int], str]) -> EvidenceEntry:
    frame: FrameRef | None = e.frame
    return {
        "capture": e.capture,
        "frame": frame.frame_no if frame else None,
        "ts": _t(e.ts),
        "direction": str(e.direction) if e.direction else None,
        "excerpt": e.excerpt,
        "file": files.get((frame.capture_id, frame.file_no)) if frame else None,
        "note": e.note,
    }


def _finding(f: Finding, files: dict[tuple[str, int], str]) -> FindingEntry:
    entry: FindingEntry = {
        "id": f.id,
        "kind": str(f.kind),
        "severity": str(f.severity),
        "confidence": str(f.confidence),
        "sessions": list(f.sessions),
        "summary": f.summary,
        "cause": f.cause,
        "remediation": f.remediation,
        "evidence": [_evidence(e, files) for e in f.evidence],
        "details": f.details,
    }
    if f.confidence_note is not None:
        entry["confidence_note"] = f.confidence_note
    return entry


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _pair(al: PairAlignment) -> PairEntry:
    pair = al.pair
    return {
        "client_side": pair.client_side.id,
        "server_side": pair.server_side.id,
        "score": pair.score,
        "matched_on": list(pair.matched_on),
        "time_delta_s": round(pair.time_delta_s, TIME_DIGITS),
        "margin": pair.margin,
        "ambiguous": pair.ambiguous,
        "corroborated": pair.corroborated,
        "identical": al.identical,
        "divergences": [
            {
                "direction": str(d.direction),
                "kind": str(d.kind),
                "sent_offset": d.sent_offset,
                "received_offset": d.received_offset,
                "sent": _decode(d.sent),
                "received": _decode(d.received),
                "sent_length": d.sent_length,
                "received_length": d.received_length,
                "sent_frame": d.sent_frame.frame_no if d.sent_frame else None,
                "received_frame": d.received_frame.frame_no if d.received_frame else None,
                "sent_ts": _t(d.sent_ts),
                "received_ts": _t(d.received_ts),
                # a changed AUTH credential, compared by digest: no bytes in the excerpts
                **({"credential": True} if d.credential else {}),
            }
            for d in al.divergences
        ],
        "end_mismatches": [
            {
                "direction": str(m.direction),
                "kind": str(m.kind),
                "seen_in": m.seen_in.key,
                "frame": m.end.frame.frame_no,
                "ts": _t(m.end.ts),
                "ttl": m.end.origin.ttl,
                "ip_id": m.end.origin.ip_id,
                "usual_ttl": m.end.usual_origin.ttl if m.end.usual_origin else None,
                "origin_differs": m.origin_differs,
            }
            for m in al.end_mismatches
        ],
        "uncovered": [
            {
                "direction": str(u.direction),
                "capture": u.capture.key,
                "reason": str(u.reason),
                "offset": u.offset,
                "length": u.length,
            }
            for u in al.uncovered
        ],
    }


def transcript(session: SmtpSession) -> list[TranscriptLine]:
    """A session's commands, replies and connection ends in time order, as in report.json."""
    lines: list[TranscriptLine] = [
        {
            "kind": "command" if line.direction is Direction.CLIENT_TO_SERVER else "reply",
            "direction": str(line.direction),
            "ts": round(line.ts, TIME_DIGITS),
            "frame": line.frame.frame_no if line.frame else None,
            "offset": line.offset,
            "text": line.text,
        }
        for line in session.lines[:TRANSCRIPT_LINES]
    ]
    for end in session.ends:
        lines.append(
            {
                "kind": str(end.kind),
                "direction": str(end.direction),
                "ts": round(end.ts, TIME_DIGITS),
                "frame": end.frame.frame_no,
                "offset": end.offset,
                "text": f"[{str(end.kind).upper()} ttl={end.origin.ttl}]",
            }
        )
    lines.sort(key=lambda line: (line["ts"], line["frame"] or 0))
    return lines


def _session(session: SmtpSession, analysis: Analysis, named: set[str]) -> dict[str, Any]:
    entry = _rounded(session_dict(session, analysis.peer_of(session.id)))
    if session.id in named and len(session.lines) > TRANSCRIPT_LINES:
        # The report carries this session's transcript, cut at TRANSCRIPT_LINES.
        entry.setdefault("dropped", {})["transcript_lines"] = {
            "count": len(session.lines) - TRANSCRIPT_LINES,
            "cap": "TRANSCRIPT_LINES",
            "limit": TRANSCRIPT_LINES,
        }
    return entry


def build_report(analysis: Analysis) -> Report:
    files: dict[tuple[str, int], str] = {}
    for info in analysis.captures:
        files.update(_files(info))
    named = {s for f in analysis.findings for s in f.sessions}
    named |= {p for s in list(named) if (p := analysis.peer_of(s)) is not None}
    clock = analysis.clock
    severities = Counter(str(f.severity) for f in analysis.findings)
    kinds = Counter(str(f.kind) for f in analysis.findings)
    clock_entry: dict[str, Any] | None = None
    if clock is not None:
        clock_entry = {
            "offset_s": round(clock.offset_s, TIME_DIGITS),
            "method": clock.method,
            "support": clock.support,
            "drift_ppm": None if clock.drift_ppm is None else round(clock.drift_ppm, 3),
        }
    report: Report = {
        "schema": SCHEMA,
        "generator": {"name": "smtpfw", "version": _version()},
        "captures": [_capture(info) for info in analysis.captures],
        "clock_offset_s": None if clock is None else round(clock.offset_s, TIME_DIGITS),
        "clock": clock_entry,
        "sessions": [_session(s, analysis, named) for s in analysis.sessions],
        "pairs": [_pair(al) for al in analysis.alignments],
        "findings": [_finding(f, files) for f in analysis.findings],
        "transcripts": {s.id: transcript(s) for s in analysis.sessions if s.id in named},
        "summary": {
            "sessions": len(analysis.sessions),
            "pairs": len(analysis.pairs),
            "findings": len(analysis.findings),
            "by_severity": dict(sorted(severities.items())),
            "by_kind": dict(sorted(kinds.items())),
        },
        "verdict": _verdict(analysis),
        "orientation": _orientation(analysis),
    }
    cut = sum(1 for entry in report["sessions"] if "dropped" in entry)
    if cut:
        report["verdict"]["sessions_cut_by_limits"] = cut
    # the headline is the one the renderers show, derived from the report itself
    report["verdict"]["headline"] = digest.verdict(report).headline
    return report


def _verdict(analysis: Analysis) -> VerdictEntry:
    """What the analysis concludes, in one word (the headline is added from the digest)."""
    overlap = analysis.overlap
    if not analysis.sessions:
        kind, reasons = "no_smtp", []
    elif overlap is not None and overlap.kind is not OverlapKind.OVERLAP:
        kind, reasons = str(overlap.kind), list(overlap.reasons)
    else:
        kind, reasons = ("findings" if analysis.findings else "clean"), []
    return {
        "kind": kind,
        "two_sided": analysis.two_sided,
        "headline": "",
        "reasons": reasons,
        "confirmed": sum(1 for f in analysis.findings if f.confidence is Confidence.CONFIRMED),
    }


def _orientation(analysis: Analysis) -> OrientationEntry | None:
    if not analysis.two_sided or len(analysis.captures) != 2:
        return None
    client, server = (list(info.paths) for info in analysis.captures)
    used = {"client_side": client, "server_side": server}
    given = {"client_side": server, "server_side": client} if analysis.sides_swapped else used
    judged = analysis.orientation
    return {
        "given": given,
        "used": used,
        "swapped": analysis.sides_swapped,
        "kept": analysis.keep_orientation,
        "judgment": "not_judged" if judged is None else str(judged.judgment),
        "confidence": "low" if judged is None else judged.confidence,
        "evidence": []
        if judged is None
        else [
            {
                "signal": clue.signal,
                "says": str(clue.says),
                "for_given": clue.for_given,
                "for_swapped": clue.for_swapped,
                "detail": clue.detail,
            }
            for clue in judged.clues
        ],
    }


def _rounded(entry: dict[str, Any]) -> dict[str, Any]:
    entry["start"] = _t(entry["start"])
    entry["end"] = _t(entry["end"])
    return entry
