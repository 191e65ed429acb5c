"""Read a report model the way an incident report tells it: verdict, issues, checks, timeline.

What it does: derives, from `report.json` alone, what both renderers (Markdown and HTML) show —
the verdict (what happened, between which hosts, since when, how many connections and
messages, the security impact, the most likely cause and the one change that fixes it), the
findings grouped by kind, how to verify each one in Wireshark, a timeline of the affected
connections, and the two captures' transcripts of one connection aligned step by step.
What it does not do: find anything new (findings come from `detect`), or escape or format for
any output (strings here are raw captured text; each renderer escapes what it prints). Optional
facts may be missing or null (an older or trimmed report.json): they are left out, not guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from analyzer.detect.kinds import KINDS

from .model import FindingEntry, Report, TranscriptLine

SEVERITIES = ("critical", "high", "medium", "low", "info")
"""Most severe first (DOMAIN.md §3)."""
CONFIDENCES = ("confirmed", "likely", "possible")
C2S = "client_to_server"
S2C = "server_to_client"

MAX_TIMELINE_EVENTS = 300
"""Events listed in a timeline; the rest are counted."""
MAX_LISTED = 25
"""Findings of one kind listed one by one (summary, evidence, checks); the rest are counted."""
MAX_STEPS = 600
"""Aligned steps kept per connection (transcripts are capped at 400 lines per side)."""

END_LINE = re.compile(r"\[(RST|FIN) ttl=(\d+)\]")
"""How `build` writes a connection end into a transcript (`[RST ttl=255]`)."""

TITLES: Final[Mapping[str, str]] = {str(kind): text.title for kind, text in KINDS.items()}
"""A heading per finding kind (DOMAIN.md §3), from the detectors' table of kinds."""

HAPPENED: Final[Mapping[str, str]] = {str(kind): text.happened for kind, text in KINDS.items()}
"""What a kind means, as part of a sentence."""

CUT_OFF_KINDS = frozenset({"reset_after_dkim_header", "header_line_too_long_drop"})
ROOT_CAUSE_KINDS = (
    "ehlo_keyword_masked",
    "ehlo_keyword_removed",
    "command_masked",
    "command_replaced",
    "starttls_rejected",
)
"""Kinds that explain a `tls_downgrade` (its details' `because_of`), most telling first."""


# -- small readers --------------------------------------------------------------------------------


def as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) < 1e11 else None  # NaN, absurd times


def as_str(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def utc(ts: object, *, date: bool = True, ms: bool = True) -> str:
    """An epoch time as UTC text ('2024-03-05 09:14:02.250'); '?' when it is not a time."""
    seconds = as_float(ts)
    if seconds is None:
        return "?"
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return "?"
    text = moment.strftime("%Y-%m-%d %H:%M:%S.%f" if date else "%H:%M:%S.%f")
    return text[:-3] if ms else text[:-7]


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def confidence_rank(confidence: str) -> int:
    return CONFIDENCES.index(confidence) if confidence in CONFIDENCES else len(CONFIDENCES)


def title(kind: str) -> str:
    return TITLES.get(kind, kind.replace("_", " ").capitalize() or "Finding")


def id_list(ids: Sequence[str], limit: int = 10) -> str:
    """'F1, F2, F3' — at most `limit` ids, then how many more."""
    shown = ", ".join(ids[:limit])
    return shown + (f" +{len(ids) - limit} more" if len(ids) > limit else "")


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else words or word + 's'}"


def ordered_findings(report: Report) -> list[FindingEntry]:
    """Most severe first, then most certain, then report order."""
    indexed = list(enumerate(report.get("findings") or []))
    indexed.sort(
        key=lambda item: (
            severity_rank(as_str(item[1].get("severity"))),
            confidence_rank(as_str(item[1].get("confidence"))),
            item[0],
        )
    )
    return [f for _, f in indexed]


@dataclass(frozen=True, slots=True)
class Issue:
    """The findings of one kind: one section of a report."""

    kind: str
    findings: tuple[FindingEntry, ...]

    @property
    def severity(self) -> str:
        return min((as_str(f.get("severity")) for f in self.findings), key=severity_rank)

    @property
    def confidence(self) -> str:
        return min((as_str(f.get("confidence")) for f in self.findings), key=confidence_rank)

    @property
    def title(self) -> str:
        return title(self.kind)

    @property
    def ids(self) -> list[str]:
        return [as_str(f.get("id")) for f in self.findings]

    @property
    def listed(self) -> tuple[FindingEntry, ...]:
        """The findings shown one by one (the most severe first)."""
        return self.findings[:MAX_LISTED]

    @property
    def unlisted(self) -> int:
        return max(0, len(self.findings) - MAX_LISTED)


def issues(report: Report) -> list[Issue]:
    """Findings grouped by kind, the group with the most severe finding first."""
    groups: dict[str, list[FindingEntry]] = {}
    for finding in ordered_findings(report):
        groups.setdefault(as_str(finding.get("kind")), []).append(finding)
    return [Issue(kind, tuple(found)) for kind, found in groups.items()]


# -- lookups --------------------------------------------------------------------------------------


class Index:
    """Sessions, pairs and captures of a report by id, and the clock between the captures."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.sessions: dict[str, dict[str, Any]] = {}
        for session in report.get("sessions") or []:
            if isinstance(session, dict):
                self.sessions.setdefault(as_str(session.get("id")), session)
        self.captures = {as_str(c.get("id")): c for c in report.get("captures") or []}
        self.pairs: dict[str, dict[str, Any]] = {}
        for pair in report.get("pairs") or []:
            entry: dict[str, Any] = dict(pair)
            self.pairs.setdefault(as_str(pair.get("client_side")), entry)
            self.pairs.setdefault(as_str(pair.get("server_side")), entry)
        self.offset = as_float(report.get("clock_offset_s")) or 0.0
        self.affected: list[tuple[str, str | None]] | None = None
        """Cached by `affected_connections`."""
        self.verdict: Verdict | None = None
        """Cached by `verdict`."""
        self.two_sided = any(
            c.get("role") == "server-side" for c in self.captures.values()
        ) and any(c.get("role") == "client-side" for c in self.captures.values())

    def session(self, session_id: str) -> dict[str, Any] | None:
        return self.sessions.get(session_id)

    def role(self, capture_id: str) -> str:
        capture = self.captures.get(capture_id)
        return as_str(capture.get("role")) if capture else ""

    def capture_of(self, session_id: str) -> str:
        session = self.sessions.get(session_id)
        if session is not None:
            return as_str(session.get("capture"))
        return session_id.split("#", 1)[0]

    def file_of(self, capture_id: str) -> str:
        capture = self.captures.get(capture_id)
        if capture is None:
            return ""
        files = capture.get("files") or []
        if len(files) == 1 and isinstance(files[0], dict):
            return as_str(files[0].get("path"))
        return as_str(capture.get("path"))

    def pair_of(self, session_id: str) -> dict[str, Any] | None:
        return self.pairs.get(session_id)

    def connection(self, session_id: str) -> tuple[str, str | None]:
        """(client-side or only session, server-side peer or None) of the connection."""
        pair = self.pairs.get(session_id)
        if pair is not None:
            return as_str(pair.get("client_side")), as_str(pair.get("server_side"))
        return session_id, None

    def on_client_clock(self, ts: object, capture_id: str) -> float | None:
        """A time from either capture on the client-side capture's clock."""
        seconds = as_float(ts)
        if seconds is None:
            return None
        return seconds - self.offset if self.role(capture_id) == "server-side" else seconds

    def stream(self, session_id: str) -> int | None:
        """Wireshark's `tcp.stream` number of a session (`client#3` → 3)."""
        session = self.sessions.get(session_id)
        if session is not None and as_int(session.get("tcp_stream")) is not None:
            return as_int(session.get("tcp_stream"))
        tail = session_id.rsplit("#", 1)[-1]
        return int(tail) if tail.isdigit() and len(tail) < 10 else None

    def transcript(self, session_id: str) -> list[TranscriptLine]:
        lines = (self.report.get("transcripts") or {}).get(session_id) or []
        return [line for line in lines if isinstance(line, dict)]


def affected_connections(report: Report, index: Index) -> list[tuple[str, str | None]]:
    """Connections named by findings (below `info`), in the order they started."""
    if index.affected is None:
        index.affected = _affected(report, index)
    return index.affected


def _affected(report: Report, index: Index) -> list[tuple[str, str | None]]:
    seen: dict[tuple[str, str | None], float] = {}
    findings = report.get("findings") or []
    only_info = all(as_str(f.get("severity")) == "info" for f in findings)
    for finding in findings:
        if as_str(finding.get("severity")) == "info" and not only_info:
            continue
        for session_id in finding.get("sessions") or []:
            key = index.connection(as_str(session_id))
            session = index.session(key[0]) or {}
            start = index.on_client_clock(session.get("start"), index.capture_of(key[0]))
            seen.setdefault(key, start if start is not None else float("inf"))
    return sorted(seen, key=lambda key: (seen[key], key[0]))


def transactions(session: dict[str, Any] | None) -> list[dict[str, Any]]:
    if session is None:
        return []
    return [t for t in session.get("transactions") or [] if isinstance(t, dict)]


def is_message(txn: dict[str, Any]) -> bool:
    """A transaction that got as far as sending message data."""
    return txn.get("size") is not None or bool(txn.get("complete"))


def delivered(txn: dict[str, Any]) -> bool:
    """The server accepted the message (a 2xx reply to its end)."""
    code = as_int(txn.get("reply_code"))
    return code is not None and 200 <= code < 300 and bool(txn.get("complete"))


def starttls_text(session: dict[str, Any]) -> str:
    tls = session.get("starttls")
    if not isinstance(tls, dict):
        return "-"
    parts = []
    if tls.get("advertised"):
        parts.append("offered")
    if tls.get("attempted"):
        code = as_int(tls.get("reply_code"))
        parts.append(f"tried ({code if code is not None else 'no reply'})")
    if tls.get("established"):
        parts.append("up")
    return ", ".join(parts) or "not offered"


def transactions_text(session: dict[str, Any], limit: int = 3) -> str:
    """'billing@x → accounts@y: 250; …' (raw text; the renderer escapes it)."""
    parts = []
    txns = transactions(session)
    for txn in txns[:limit]:
        rcpts = [as_str(r) for r in txn.get("rcpt_to") or []]
        to = ", ".join(rcpts[:3]) + (f" +{len(rcpts) - 3}" if len(rcpts) > 3 else "")
        code = as_int(txn.get("reply_code"))
        if code is not None:
            outcome = str(code)
        elif is_message(txn) and not txn.get("complete"):
            outcome = "cut off in DATA"
        elif is_message(txn):
            outcome = (
                "reset before the reply"
                if session.get("end_reason") == "rst"
                else "no reply to the message"
            )
        else:
            outcome = "no reply"
        parts.append(f"<{as_str(txn.get('mail_from'))}> → {to or '(none)'}: {outcome}")
    if len(txns) > limit:
        parts.append(f"+{len(txns) - limit} more")
    return "; ".join(parts) or "-"


# -- verdict --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """The first thing a reader sees. Strings are raw (captured addresses included)."""

    clean: bool
    two_sided: bool
    severity: str
    """Of the most severe finding ('' when clean)."""
    confidence: str
    """Of the most severe finding."""
    headline: str
    happened: str
    hosts: str
    first_ts: float | None
    last_ts: float | None
    connections: int
    total_connections: int
    messages: int
    impact: tuple[str, ...]
    cause: str
    fix_from: FindingEntry | None
    """The finding whose cause and fix the verdict gives (the root of the most severe one)."""
    remediation: str


def _host(endpoint: str) -> str:
    host, sep, port = endpoint.rpartition(":")
    return host if sep and port.isdigit() else endpoint


def _listing(items: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _hosts(index: Index, connections: Sequence[tuple[str, str | None]]) -> str:
    clients: list[str] = []
    servers: list[str] = []
    inside: list[str] = []
    for near, far in connections:
        session = index.session(near) or {}
        peer = index.session(far) if far else None
        for bucket, value in (
            (clients, _host(as_str(session.get("client")))),
            (servers, as_str(session.get("server"))),
        ):
            if value and value not in bucket:
                bucket.append(value)
        if peer is not None:
            seen_inside = as_str(peer.get("server"))
            if (
                seen_inside
                and seen_inside != as_str(session.get("server"))
                and seen_inside not in inside
            ):
                inside.append(seen_inside)
    if not clients and not servers:
        return "unknown hosts"
    text = (
        f"client {clients[0]}"
        if len(clients) == 1
        else f"{len(clients)} clients ({_listing(clients)})"
    )
    text += " → " + (
        f"server {servers[0]}"
        if len(servers) == 1
        else f"{len(servers)} servers ({_listing(servers)})"
    )
    if inside:
        text += f" (the server-side capture shows {_listing(inside)}: NAT)"
    return text


def _cleartext_messages(report: Report) -> tuple[bool, int]:
    found = False
    total = 0
    for finding in report.get("findings") or []:
        if finding.get("kind") == "tls_downgrade":
            found = True
            details = finding.get("details") or {}
            total += as_int(details.get("messages_in_cleartext")) or 0
    return found, total


def _cut_off(report: Report, index: Index) -> tuple[int, int, int]:
    """(messages cut off in DATA, connections reset in DATA, most attempts seen for one message)."""
    cut = 0
    connections: set[str] = set()
    attempts: dict[str, int] = {}
    for finding in report.get("findings") or []:
        if finding.get("kind") not in CUT_OFF_KINDS:
            continue
        for session_id in finding.get("sessions") or []:
            near, _ = index.connection(as_str(session_id))
            if near in connections:
                continue
            connections.add(near)
            for txn in transactions(index.session(near)):
                if is_message(txn) and not delivered(txn):
                    cut += 1
                    msgid = as_str(txn.get("message_id"))
                    if msgid:
                        attempts[msgid] = attempts.get(msgid, 0) + 1
    return cut, len(connections), max(attempts.values(), default=0)


def _root_cause(top: FindingEntry, report: Report) -> FindingEntry:
    """The finding a reader should act on: for a downgrade, the masking or removal that caused
    it (its cause and fix are the specific ones), otherwise the most severe finding itself."""
    if top.get("kind") != "tls_downgrade":
        return top
    because = (top.get("details") or {}).get("because_of") or []
    sessions = set(top.get("sessions") or [])
    for kind in ROOT_CAUSE_KINDS:
        if kind not in because and because:
            continue
        for finding in report.get("findings") or []:
            if finding.get("kind") == kind and sessions & set(finding.get("sessions") or []):
                return finding
    return top


def _without_findings(two_sided: bool, headline: str, happened: str, total: int) -> Verdict:
    """The verdict of a report with no finding: only its headline and sentence differ."""
    return Verdict(
        True, two_sided, "", "", headline, happened, "", None, None, 0, total, 0, (), "", None, ""
    )


def verdict(report: Report, index: Index | None = None) -> Verdict:
    index = index or Index(report)
    if index.verdict is None:
        index.verdict = _verdict(report, index)
    return index.verdict


NO_OVERLAP_HEADLINE = "These captures do not overlap"
NO_SMTP_HEADLINE = "No SMTP sessions in this capture: nothing to judge"
NO_SMTP_HEADLINE_TWO = "No SMTP sessions in these captures: nothing to judge"
PORTS_SHOWN = 8
UNPROVEN_PREFIX = "Overlap not proven — "


def verdict_kind(report: Report) -> str:
    """report.json's `verdict.kind` ('findings', 'clean', 'unproven_overlap', 'no_overlap');
    for a report written before it existed, 'findings' or 'clean'."""
    entry = report.get("verdict")
    kind = as_str(entry.get("kind")) if isinstance(entry, Mapping) else ""
    return kind or ("findings" if report.get("findings") else "clean")


def _reasons(report: Report) -> list[str]:
    entry = report.get("verdict")
    reasons = entry.get("reasons") if isinstance(entry, Mapping) else None
    return [as_str(r) for r in reasons or []]


def _what_was_read(capture: Mapping[str, Any], named: bool) -> str:
    """One sentence on what a capture without SMTP held: packets, connections, ports."""
    packets = as_int(capture.get("packets")) or 0
    traffic = capture.get("traffic")
    where = f"{as_str(capture.get('path'))}: " if named else ""
    if not packets:
        return f"{where}{'the' if named else 'The'} capture holds no packets."
    said = f"{where}{plural(packets, 'packet')} read"
    if isinstance(traffic, Mapping):
        connections = as_int(traffic.get("tcp_connections")) or 0
        ports = traffic.get("server_ports") or {}
        shown = [f"{port} ({count})" for port, count in list(ports.items())[:PORTS_SHOWN]]
        more = len(ports) - len(shown) + (1 if as_int(traffic.get("other_ports")) else 0)
        port_text = f", to port {', '.join(shown)}" if shown else ""
        if more > 0:
            port_text += " and others"
        silent = traffic.get("connections_without_payload")
        attempts = ""
        if isinstance(silent, Mapping) and as_int(silent.get("count")):
            unanswered = as_int(silent.get("unanswered")) or 0
            attempts = (
                f" (of them {plural(as_int(silent.get('count')) or 0, 'mail-port attempt')} "
                f"without a payload byte, {unanswered} never answered)"
            )
        unspoken = traffic.get("connections_without_smtp")
        if isinstance(unspoken, Mapping) and as_int(unspoken.get("count")):
            attempts += (
                f" ({plural(as_int(unspoken.get('count')) or 0, 'mail-port connection')} "
                f"with {plural(as_int(unspoken.get('client_bytes')) or 0, 'client byte')} "
                "but no SMTP line)"
            )
        said += (
            f": {plural(connections, 'TCP connection')}{port_text}{attempts}, "
            f"{plural(as_int(traffic.get('non_tcp')) or 0, 'non-TCP packet')} (UDP, ICMP, ...), "
            f"{plural(as_int(traffic.get('non_ip')) or 0, 'non-IP frame')}"
        )
    return said + "; none of it is SMTP."


FILE_DAMAGE: Final = {
    "truncated_record": "cut short in the middle of a record",
    "bad_block": "a damaged block",
    "malformed_packet": "malformed packets",
}
"""Capture anomalies (report.json `captures[].anomalies`) that say the file itself is damaged."""


def damage(capture: Mapping[str, Any]) -> list[str]:
    """What is wrong with a capture file itself, as phrases with their counts."""
    anomalies = capture.get("anomalies") or {}
    return [
        f"{text} ({as_int(anomalies.get(kind)) or 0})"
        for kind, text in FILE_DAMAGE.items()
        if anomalies.get(kind)
    ]


def notices(report: Report) -> list[str]:
    """What a reader must know before the verdict: damaged capture files, sides given the wrong
    way round, captures whose overlap is not proven. Plain sentences (file names raw)."""
    out: list[str] = []
    for capture in report.get("captures") or []:
        wrong = damage(capture)
        if wrong:
            out.append(
                f"{as_str(capture.get('path'))} is damaged: {', '.join(wrong)}. The results "
                "cover only its readable part."
            )
    orientation = report.get("orientation")
    if isinstance(orientation, Mapping):
        given = orientation.get("given") or {}
        client = ", ".join(as_str(p) for p in given.get("client_side") or [])
        server = ", ".join(as_str(p) for p in given.get("server_side") or [])
        clues = [
            as_str(e.get("detail"))
            for e in orientation.get("evidence") or []
            if e.get("says") == "swapped" and e.get("detail")
        ]
        why = f" ({'; '.join(clues[:3])})" if clues else ""
        if orientation.get("swapped"):
            out.append(
                f"The captures were given the wrong way round: {server} (given as the server "
                f"side) is the client-side capture and {client} (given as the client side) the "
                f"server-side one{why}. They were analysed the right way round; "
                "--keep-orientation analyses them as given."
            )
        elif orientation.get("judgment") == "swapped":
            out.append(
                f"The captures look given the wrong way round{why}; they were analysed as "
                "given (--keep-orientation)."
            )
        elif orientation.get("judgment") == "conflicting":
            out.append(
                "The captures do not agree on which one is the client side; they were analysed "
                "as given."
            )
    cut = cut_by_limits(report)
    if cut:
        out.append(cut)
    if verdict_kind(report) == "unproven_overlap":
        reasons = "; ".join(_reasons(report))
        out.append(
            "The two captures are not shown to hold the same connections"
            + (f": {reasons}" if reasons else "")
            + ". No finding is confirmed: what differs may be two different connections."
        )
    return out


DROPPED_PHRASES: Final = {
    "dialogue_lines": ("dialogue line", "past the {limit} kept"),
    "transactions": ("transaction", "past the {limit} kept"),
    "header_fields": ("header field", "past the {limit} kept per message"),
    "recipients": ("recipient", "past the {limit} kept per transaction"),
    "accepted_recipients": ("accepted recipient", "past the {limit} kept per transaction"),
    "anomalies": ("anomaly", "past the {limit} kept"),
    "anomaly_reports": ("anomaly", "only counted past {limit} of a kind per direction"),
    "line_bytes": ("byte", "of over-long lines skipped ({limit} kept per line)"),
    "reply_lines": ("reply line", "past {limit} bytes per reply"),
    "header_bytes": ("byte", "of over-long header lines skipped ({limit} kept per line)"),
    "header_sections": ("header section", "cut at {limit} bytes, the rest read as body"),
    "pending_commands": ("unanswered command", "forgotten past {limit} waiting"),
    "transcript_lines": ("transcript line", "past the {limit} shown"),
}
"""How the notice says each entry of report.json `sessions[].dropped` (the word counted, and
what happened to the rest)."""
MAX_CUT_SESSIONS_LISTED: Final = 5


def dropped_text(dropped: Mapping[str, Any]) -> str:
    """One session's `dropped` entry as a phrase: '5 dialogue lines past the 10,000 kept; …'."""
    parts = []
    for key, item in dropped.items():
        if not isinstance(item, Mapping):
            continue
        count = as_int(item.get("count")) or 0
        word, rest = DROPPED_PHRASES.get(key, (key.replace("_", " "), "past {limit}"))
        counted = word if count == 1 else "anomalies" if word == "anomaly" else word + "s"
        limit = as_int(item.get("limit"))
        said = f"{count:,} {counted} {rest.format(limit=f'{limit:,}' if limit else '?')}"
        why = as_str(item.get("cap"))
        kinds = item.get("by_kind")
        if isinstance(kinds, Mapping) and kinds:
            why += "; " + ", ".join(f"{k}: {as_int(n) or 0:,}" for k, n in kinds.items())
        parts.append(f"{said} ({why})")
    return "; ".join(parts)


def cut_by_limits(report: Report) -> str | None:
    """The notice that memory caps left parts of sessions out of the report, or None."""
    cut = [
        (as_str(s.get("id")), s["dropped"])
        for s in report.get("sessions") or []
        if isinstance(s.get("dropped"), Mapping) and s["dropped"]
    ]
    if not cut:
        return None
    shown = [f"{sid}: {dropped_text(dropped)}" for sid, dropped in cut[:MAX_CUT_SESSIONS_LISTED]]
    more = len(cut) - MAX_CUT_SESSIONS_LISTED
    return (
        f"smtpfw's memory limits cut {plural(len(cut), 'session')}: the report holds less than "
        f"was captured. {'. '.join(shown)}"
        + (f". And {plural(more, 'more session')}" if more > 0 else "")
        + ". See sessions[].dropped in report.json."
    )


def _verdict(report: Report, index: Index) -> Verdict:
    findings = ordered_findings(report)
    total = len({index.connection(s)[0] for s in index.sessions})
    if verdict_kind(report) == "no_smtp":
        headline = NO_SMTP_HEADLINE_TWO if index.two_sided else NO_SMTP_HEADLINE
        happened = " ".join(
            _what_was_read(capture, index.two_sided) for capture in report.get("captures") or []
        )
        return _without_findings(index.two_sided, headline, happened, total)
    if verdict_kind(report) == "no_overlap":
        reasons = "; ".join(_reasons(report)) or "they share no SMTP session"
        happened = (
            f"Nothing was compared: {reasons}. They are not captures of the two sides of "
            "one firewall at the same time. Check that the client-side and server-side "
            "files belong together; each file alone can be analysed for symptoms "
            "(smtpfw analyze FILE)."
        )
        return _without_findings(index.two_sided, NO_OVERLAP_HEADLINE, happened, total)
    if not findings:
        clocked = (
            index.on_client_clock(s.get("start"), as_str(s.get("capture")))
            for s in index.sessions.values()
        )
        starts = [t for t in clocked if t is not None]
        span = f" ({utc(min(starts))} → {utc(max(starts))} UTC)" if starts else ""
        if index.two_sided:
            pairs = len(report.get("pairs") or [])
            headline = "No difference between the two sides"
            happened = (
                f"All {plural(pairs, 'paired session')}{span} are byte-identical in "
                "both directions: the firewall did not change SMTP in these captures."
                if pairs
                else "The captures hold no SMTP session to compare."
            )
        else:
            headline = "No symptoms found"
            happened = (
                f"None of the {plural(total, 'SMTP session')}{span} in this capture "
                "shows a sign of SMTP inspection. One capture shows symptoms only; a "
                "capture on the other side of the firewall would prove it."
            )
        return _without_findings(index.two_sided, headline, happened, total)
    top = findings[0]
    root = _root_cause(top, report)
    connections = affected_connections(report, index)
    opened = [
        index.on_client_clock((index.session(near) or {}).get("start"), index.capture_of(near))
        for near, _ in connections
    ]
    times = [t for t in opened if t is not None]
    messages = sum(
        1 for near, _ in connections for txn in transactions(index.session(near)) if is_message(txn)
    )
    kinds: list[str] = []
    for finding in findings:
        kind = as_str(finding.get("kind"))
        if kind not in kinds:
            kinds.append(kind)
    phrases = [HAPPENED.get(kind, kind.replace("_", " ")) for kind in kinds]
    happened = phrases[0][:1].upper() + phrases[0][1:]
    if len(phrases) > 1:
        happened += "; " + "; ".join(phrases[1:4])
        if len(phrases) > 4:
            happened += f"; and {len(phrases) - 4} more kind(s) of damage"
    happened += "."
    impact: list[str] = []
    downgrade, cleartext = _cleartext_messages(report)
    if downgrade and cleartext:
        impact.append(
            f"{plural(cleartext, 'message')} crossed the network in cleartext although "
            "the server offers STARTTLS: anyone on the path could read or alter them."
        )
    elif downgrade:
        impact.append("TLS could not start: any mail on these connections crosses in cleartext.")
    cut, reset_connections, attempts = _cut_off(report, index)
    if cut or reset_connections:
        text = (
            f"{plural(cut, 'message')} {'was' if cut == 1 else 'were'} cut off in DATA and "
            "not delivered: the sending server keeps the mail queued and retries, and every "
            "retry dies the same way (mail stuck in the queue until the firewall is fixed)."
        )
        if attempts > 1:
            text += f" The same message was attempted {attempts} times in these captures."
        impact.append(text)
    elif any(f.get("kind") == "reset_injected" for f in findings):
        impact.append("Connections were torn down by resets forged in the path.")
    if any(f.get("kind") in ("payload_modified", "data_missing") for f in findings):
        impact.append("SMTP bytes were altered or lost in transit.")
    if not impact:
        worst = severity_rank(as_str(top.get("severity")))
        impact.append(
            "No mail was exposed or lost."
            if worst >= severity_rank("low")
            else "No mail is known to have been exposed or lost, but the dialogue was "
            "changed in transit."
        )
    headline = HAPPENED.get(as_str(top.get("kind")), title(as_str(top.get("kind"))))
    headline = headline[:1].upper() + headline[1:]
    if verdict_kind(report) == "unproven_overlap":
        headline = UNPROVEN_PREFIX + headline[:1].lower() + headline[1:]
    return Verdict(
        clean=False,
        two_sided=index.two_sided,
        severity=as_str(top.get("severity")),
        confidence=as_str(top.get("confidence")),
        headline=headline,
        happened=happened,
        hosts=_hosts(index, connections),
        first_ts=min(times) if times else None,
        last_ts=max(times) if times else None,
        connections=len(connections),
        total_connections=total,
        messages=messages,
        impact=tuple(impact),
        cause=as_str(root.get("cause")),
        fix_from=root,
        remediation=as_str(root.get("remediation")),
    )


# -- remediation text -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph of prose, or configuration lines to type as they are."""

    code: bool
    text: str


def other_fixes(report: Report, verdict: Verdict) -> list[tuple[int, Issue]]:
    """Groups of findings (numbered from 1, as reports list them) whose fix is not the verdict's
    one change: the reader must not think that change cures them too."""
    if verdict.clean:
        return []
    groups = issues(report)
    kinds = {issue.kind for issue in groups}
    return [
        (number, issue)
        for number, issue in enumerate(groups, 1)
        if issue.severity in ("critical", "high", "medium")
        and as_str(issue.findings[0].get("remediation")) != verdict.remediation
        and issue.kind != "tls_downgrade"
        # the resets are how the box drops a connection: the drop's fix ends them too
        and not (issue.kind == "reset_injected" and kinds & CUT_OFF_KINDS)
    ]


def blocks(text: str) -> list[Block]:
    """Remediation text split into prose and code (lines indented by 4 spaces or a tab)."""
    out: list[Block] = []
    for line in text.split("\n"):
        is_code = line.startswith(("    ", "\t"))
        content = line[4:] if line.startswith("    ") else line[1:] if is_code else line
        if not is_code and not line.strip():
            continue
        if out and out[-1].code == is_code:
            out[-1] = Block(is_code, out[-1].text + "\n" + content)
        else:
            out.append(Block(is_code, content))
    return out


def inline_code(text: str) -> list[tuple[str, bool]]:
    """Prose split into (text, is_code) at `backtick` pairs; an unpaired backtick is text."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # odd number of backticks: keep the last one as text
        parts[-2:] = [parts[-2] + "`" + parts[-1]]
    return [(part, i % 2 == 1) for i, part in enumerate(parts) if part]


# -- how to verify --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """Where to look in one capture file to see a finding's evidence."""

    capture: str
    role: str
    file: str
    session: str | None
    stream: int | None
    frames: tuple[int, ...]

    @property
    def frame_filter(self) -> str:
        return " || ".join(f"frame.number == {n}" for n in self.frames)

    @property
    def stream_filter(self) -> str:
        return f"tcp.stream eq {self.stream}" if self.stream is not None else ""


def checks(finding: FindingEntry, index: Index) -> list[Check]:
    """One check per capture file holding evidence of `finding` (or holding its sessions)."""
    frames: dict[tuple[str, str], list[int]] = {}
    for ev in finding.get("evidence") or []:
        capture = as_str(ev.get("capture"))
        file = as_str(ev.get("file")) or index.file_of(capture)
        numbers = frames.setdefault((capture, file), [])
        frame = as_int(ev.get("frame"))
        if frame is not None and frame not in numbers:
            numbers.append(frame)
    sessions = [as_str(s) for s in finding.get("sessions") or []]
    for session_id in sessions:
        capture = index.capture_of(session_id)
        if not any(c == capture for c, _ in frames):
            frames[(capture, index.file_of(capture))] = []
    out = []
    for (capture, file), numbers in frames.items():
        session = next((s for s in sessions if index.capture_of(s) == capture), None)
        out.append(
            Check(
                capture,
                index.role(capture) or capture,
                file,
                session,
                index.stream(session) if session else None,
                tuple(sorted(numbers)),
            )
        )
    out.sort(key=lambda c: (c.role != "client-side", c.capture))
    return out


# -- comparisons in evidence ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shown:
    """Evidence to show: the two captures' copies of the same bytes, or one packet.

    `client_side` holds the copy from the client-side capture (or from the only capture),
    `server_side` the copy from the server-side capture; one of them may be None.
    """

    direction: str
    client_side: dict[str, Any] | None
    server_side: dict[str, Any] | None

    @property
    def compared(self) -> bool:
        return self.client_side is not None and self.server_side is not None

    @property
    def sent(self) -> dict[str, Any] | None:
        return self.client_side if self.direction == C2S else self.server_side

    @property
    def received(self) -> dict[str, Any] | None:
        return self.server_side if self.direction == C2S else self.client_side

    @property
    def copies(self) -> list[dict[str, Any]]:
        """Sender's copy first."""
        return [c for c in (self.sent, self.received) if c is not None]


def shown_evidence(finding: FindingEntry, index: Index) -> list[Shown]:
    """Evidence in order; a packet and the other capture's copy of the same bytes (same
    direction, next such item) are shown together."""
    items = [dict(ev) for ev in finding.get("evidence") or []]
    taken: set[int] = set()
    out: list[Shown] = []
    for i, ev in enumerate(items):
        if i in taken:
            continue
        taken.add(i)
        direction = as_str(ev.get("direction"))
        role = index.role(as_str(ev.get("capture")))
        twin = None
        if index.two_sided and as_str(ev.get("excerpt")) != "RST":
            for j in range(i + 1, len(items)):
                other = items[j]
                if (
                    j not in taken
                    and as_str(other.get("direction")) == direction
                    and index.role(as_str(other.get("capture"))) not in ("", role)
                    and as_str(other.get("excerpt")) != "RST"
                ):
                    twin = other
                    taken.add(j)
                    break
        if role == "server-side":
            out.append(Shown(direction, twin, ev))
        else:
            out.append(Shown(direction, ev, twin))
    return out


def tokens_of(finding: FindingEntry) -> list[str]:
    """What a finding points at inside its excerpts (masked keywords and verbs), to highlight."""
    details = finding.get("details") or {}
    out: list[str] = []
    masked = details.get("masked")
    if isinstance(masked, list):
        out.extend(as_str(m.get("mask")) for m in masked if isinstance(m, dict))
    for key in ("mask", "replacement"):
        if isinstance(details.get(key), str):
            out.append(details[key])
    return [m for m in out if m and len(m) < 200]


def evidence_key(finding: FindingEntry) -> tuple[tuple[str, str, str], ...]:
    """What a finding's evidence says, without where: equal keys show the same thing."""
    return tuple(
        (as_str(e.get("capture")), as_str(e.get("direction")), as_str(e.get("excerpt")))
        for e in finding.get("evidence") or []
    )


# -- aligned transcripts --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One command, reply, message or connection end of a connection, as both captures saw it.

    `client_side` is the copy in the client-side capture (or in the only capture), `server_side`
    the copy in the server-side capture; one is None when that capture lacks it.
    """

    kind: str
    """'line' (command or reply), 'message' (DATA content), 'end' (FIN/RST), 'lost' (bytes
    that never crossed the firewall)."""
    direction: str
    client_side: dict[str, Any] | None
    server_side: dict[str, Any] | None
    time: float
    """On the client-side capture's clock."""
    forged: bool = False
    """An end (RST/FIN) its apparent sender never sent: the box in between made it."""
    note: str = ""

    @property
    def sent(self) -> dict[str, Any] | None:
        return self.client_side if self.direction == C2S else self.server_side

    @property
    def received(self) -> dict[str, Any] | None:
        return self.server_side if self.direction == C2S else self.client_side

    @property
    def differs(self) -> bool:
        if self.forged or self.kind == "lost":
            return True
        if self.client_side is None or self.server_side is None:
            return False
        if self.kind == "end":  # the same FIN/RST; its TTL drops by the hops between captures
            return False
        return as_str(self.client_side.get("text")) != as_str(self.server_side.get("text"))


def _end_kind(line: Mapping[str, Any]) -> str | None:
    """'RST' or 'FIN' for a connection end in a transcript, None for a command or reply."""
    kind = line.get("kind")
    if kind is not None:
        return str(kind).upper() if kind in ("rst", "fin") else None
    match = END_LINE.fullmatch(as_str(line.get("text")))  # reports written before `kind`
    return match.group(1) if match else None


def _shift(divergences: Iterable[dict[str, Any]], direction: str, offset: int) -> int:
    """A received-side stream offset as the sender's offset (shifted by removals/insertions)."""
    shift = 0
    for d in divergences:
        if as_str(d.get("direction")) != direction:
            continue
        received = as_int(d.get("received_offset"))
        if received is not None and received <= offset:
            shift += (as_int(d.get("sent_length")) or 0) - (as_int(d.get("received_length")) or 0)
    return offset + shift


def _message_copy(txns: list[dict[str, Any]], number: int) -> dict[str, Any] | None:
    """The `number`-th message of a side, as a transcript-like line."""
    if number >= len(txns):
        return None
    txn = txns[number]
    subject = as_str(txn.get("subject"))
    size = as_int(txn.get("size"))
    label = "[message" + (f" “{subject}”]" if subject else "]")
    label += f"\n{size} bytes" if size is not None else "\n"
    label += "" if txn.get("complete") else ", incomplete"
    return {"text": label, "frame": None, "ts": None, "direction": C2S}


def _message_steps(
    steps: list[Step], near: dict[str, Any] | None, far: dict[str, Any] | None
) -> list[Step]:
    """A 'message' step after each 354 reply, from the transactions of each side."""
    near_msgs = [t for t in transactions(near) if is_message(t)]
    far_msgs = [t for t in transactions(far) if is_message(t)]
    out: list[Step] = []
    count = 0
    for step in steps:
        out.append(step)
        line = step.client_side or step.server_side
        if step.kind != "line" or step.direction != S2C or line is None:
            continue
        if not as_str(line.get("text")).startswith("354"):
            continue
        client_copy = _message_copy(near_msgs, count)
        server_copy = _message_copy(far_msgs, count) if far is not None else None
        count += 1
        if client_copy or server_copy:
            out.append(Step("message", C2S, client_copy, server_copy, step.time + AFTER / 10))
    return out


AFTER = 1e-5
"""Seconds added to place a step just after another (after its 'message' step too)."""


def _keep_server_order(steps: list[tuple[float, int, Step]]) -> list[tuple[float, int, Step]]:
    """Steps seen only in the server-side capture, kept between the matched steps around them
    in that capture: the clock offset is an estimate, each capture's own order is a fact."""
    matched = sorted(
        (server_ts, time)
        for time, _, step in steps
        if step.client_side is not None
        and step.server_side is not None
        and (server_ts := as_float(step.server_side.get("ts"))) is not None
    )
    if not matched:
        return steps
    out = []
    for time, order, step in steps:
        server_ts = as_float((step.server_side or {}).get("ts"))
        if step.client_side is None and server_ts is not None:
            before = [t for ts, t in matched if ts <= server_ts]
            after = [t for ts, t in matched if ts > server_ts]
            if before and time <= max(before):
                time = max(before) + AFTER
            if after and time >= min(after):
                time = max(min(after) - AFTER, max(before, default=min(after) - 2 * AFTER))
            step = Step(
                step.kind,
                step.direction,
                step.client_side,
                step.server_side,
                time,
                step.forged,
                step.note,
            )
        out.append((time, order, step))
    return out


def align(
    report: Report, near_id: str, far_id: str | None, index: Index | None = None
) -> list[Step]:
    """The two transcripts of one connection aligned, in time order on the client-side clock.

    Lines are matched by direction and stream offset (a received offset shifted back by the
    divergences before it), connection ends by direction and kind unless the pair lists the end
    as a mismatch (forged). Bytes that never crossed become 'lost' steps.
    """
    index = index or Index(report)
    near = index.transcript(near_id)
    far = index.transcript(far_id) if far_id else []
    near_capture = index.capture_of(near_id)
    far_capture = index.capture_of(far_id) if far_id else ""
    pair = index.pair_of(near_id) if far_id else None
    divergences = [d for d in (pair or {}).get("divergences") or [] if isinstance(d, dict)]
    mismatches = [m for m in (pair or {}).get("end_mismatches") or [] if isinstance(m, dict)]

    def forged(line: TranscriptLine, seen_in: str) -> dict[str, Any] | None:
        for m in mismatches:
            if (
                as_str(m.get("seen_in")) == seen_in
                and as_int(m.get("frame")) == line.get("frame")
                and as_str(m.get("direction")) == line.get("direction")
            ):
                return m
        return None

    steps: list[tuple[float, int, Step]] = []
    order = 0

    def add(step: Step) -> None:
        nonlocal order
        steps.append((step.time, order, step))
        order += 1

    far_lines: dict[tuple[str, int], TranscriptLine] = {}
    far_ends: list[TranscriptLine] = []
    for line in far:
        if _end_kind(line):
            far_ends.append(line)
            continue
        direction = as_str(line.get("direction"))
        offset = as_int(line.get("offset")) or 0
        key_offset = _shift(divergences, direction, offset) if direction == C2S else offset
        far_lines.setdefault((direction, key_offset), line)
    used: set[int] = set()
    used_ends: set[int] = set()
    for line in near:
        direction = as_str(line.get("direction"))
        time = index.on_client_clock(line.get("ts"), near_capture) or 0.0
        end = _end_kind(line)
        if end:
            mismatch = forged(line, "client_side") if far_id else None
            twin = None
            if far_id and mismatch is None:
                twin = next(
                    (
                        e
                        for e in far_ends
                        if id(e) not in used_ends
                        and e.get("direction") == direction
                        and _end_kind(e) == end
                    ),
                    None,
                )
                if twin is not None:
                    used_ends.add(id(twin))
            add(
                Step(
                    "end",
                    direction,
                    dict(line),
                    dict(twin) if twin else None,
                    time,
                    forged=mismatch is not None,
                    note=_forged_note(mismatch, direction),
                )
            )
            continue
        offset = as_int(line.get("offset")) or 0
        key_offset = _shift(divergences, direction, offset) if direction == S2C else offset
        twin = far_lines.get((direction, key_offset)) if far_id else None
        if twin is not None:
            used.add(id(twin))
        add(Step("line", direction, dict(line), dict(twin) if twin else None, time))
    for line in far:
        end = _end_kind(line)
        if (end and id(line) in used_ends) or (not end and id(line) in used):
            continue
        direction = as_str(line.get("direction"))
        time = index.on_client_clock(line.get("ts"), far_capture) or 0.0
        mismatch = forged(line, "server_side") if end else None
        add(
            Step(
                "end" if end else "line",
                direction,
                None,
                dict(line),
                time,
                forged=mismatch is not None,
                note=_forged_note(mismatch, direction),
            )
        )
    for d in divergences:
        if as_str(d.get("kind")) not in ("truncation", "removal"):
            continue
        direction = as_str(d.get("direction"))
        sender = near_capture if direction == C2S else far_capture
        lost = as_int(d.get("sent_length")) or 0
        copy = {
            "text": f"[{lost} bytes never crossed the firewall]",
            "frame": d.get("sent_frame"),
            "ts": d.get("sent_ts"),
            "direction": direction,
        }
        time = index.on_client_clock(d.get("sent_ts"), sender) or 0.0
        if direction == C2S:
            add(Step("lost", direction, copy, None, time))
        else:
            add(Step("lost", direction, None, copy, time))
    steps = _keep_server_order(steps)
    steps.sort(key=lambda item: (item[0], item[1]))
    ordered = [step for _, _, step in steps][:MAX_STEPS]
    return _message_steps(
        ordered, index.session(near_id), index.session(far_id) if far_id else None
    )


def _forged_note(mismatch: dict[str, Any] | None, direction: str) -> str:
    if mismatch is None:
        return ""
    claims = "server" if direction == S2C else "client"
    ttl = as_int(mismatch.get("ttl"))
    usual = as_int(mismatch.get("usual_ttl"))
    note = f"the {claims} never sent it"
    if ttl is not None:
        note += f" (TTL {ttl}" + (
            f", the {claims}'s packets TTL {usual})" if usual is not None else ")"
        )
    return note


def _resets(index: Index, near: str, far: str | None) -> list[Event]:
    """The RSTs of a connection, each once, saying who forged it when a capture proves it."""
    pair = index.pair_of(near) if far else None
    mismatches = [m for m in (pair or {}).get("end_mismatches") or [] if isinstance(m, dict)]
    events: list[Event] = []
    seen_near: set[str] = set()
    for session_id, seen_in in ((near, "client_side"), (far, "server_side")):
        if session_id is None:
            continue
        capture = index.capture_of(session_id)
        for line in index.transcript(session_id):
            if _end_kind(line) != "RST":
                continue
            direction = as_str(line.get("direction"))
            mismatch = next(
                (
                    m
                    for m in mismatches
                    if as_str(m.get("seen_in")) == seen_in
                    and as_int(m.get("frame")) == line.get("frame")
                    and as_str(m.get("direction")) == direction
                ),
                None,
            )
            if mismatch is None and seen_in == "server_side" and direction in seen_near:
                continue  # the same genuine RST, already listed from the client side
            time = index.on_client_clock(line.get("ts"), capture)
            if time is None:
                continue
            towards = "client" if direction == S2C else "server"
            role = "client-side" if seen_in == "client_side" else "server-side"
            what = f"RST towards the {towards} ({role} capture)"
            if mismatch is not None:
                what += f", forged: {_forged_note(mismatch, direction)}"
            elif far is not None:
                seen_near.add(direction)
            events.append(Event(time, near, what))
    return events


# -- timeline -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, on the client-side capture's clock. `text` is raw."""

    ts: float
    session: str
    text: str
    severity: str | None = None
    finding: str | None = None


def timeline(report: Report, index: Index | None = None) -> tuple[list[Event], int]:
    """Starts, findings, resets and ends of the affected connections, in time order, and how
    many events were left out beyond `MAX_TIMELINE_EVENTS`."""
    index = index or Index(report)
    events: list[Event] = []
    connections = affected_connections(report, index)
    for near, far in connections:
        session = index.session(near) or {}
        capture = index.capture_of(near)
        start = index.on_client_clock(session.get("start"), capture)
        if start is not None:
            events.append(
                Event(
                    start,
                    near,
                    f"connection {as_str(session.get('client'))} → "
                    f"{as_str(session.get('server'))} opens",
                )
            )
        events.extend(_resets(index, near, far))
        end = index.on_client_clock(session.get("end"), capture)
        if end is not None:
            reason = as_str(session.get("end_reason"))
            events.append(Event(end, near, f"connection ends ({reason})"))
    for finding in report.get("findings") or []:
        times = [
            index.on_client_clock(ev.get("ts"), as_str(ev.get("capture")))
            for ev in finding.get("evidence") or []
        ]
        known = [t for t in times if t is not None]
        sessions = [as_str(s) for s in finding.get("sessions") or []]
        near = index.connection(sessions[0])[0] if sessions else ""
        if not known:
            session = index.session(near) or {}
            start = index.on_client_clock(session.get("start"), index.capture_of(near))
            known = [start] if start is not None else []
        if known:
            events.append(
                Event(
                    min(known),
                    near,
                    f"{as_str(finding.get('id'))}: {as_str(finding.get('summary'))}",
                    as_str(finding.get("severity")),
                    as_str(finding.get("id")),
                )
            )
    events.sort(key=lambda e: (e.ts, e.finding is not None))
    return events[:MAX_TIMELINE_EVENTS], max(0, len(events) - MAX_TIMELINE_EVENTS)
