"""The verdict: what happened, between which hosts, since when, how many connections and messages,
the impact, the likely cause and the one change that fixes it; and the notices that open every
output (damaged files, sessions cut by limits).

Part of `report.digest` (see its docstring).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..model import FindingEntry, Report
from .common import (
    CUT_OFF_KINDS,
    HAPPENED,
    ROOT_CAUSE_KINDS,
    as_int,
    as_str,
    ordered_findings,
    plural,
    severity_rank,
    title,
    utc,
)
from .lookups import Index, affected_connections, delivered, is_message, transactions


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
