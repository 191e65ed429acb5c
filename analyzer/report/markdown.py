"""Render a report model as a Markdown incident report (`report.md`).

What it does: writes, from `report.json` alone, the verdict first (what happened, between which
hosts, since when, how much, the security impact, the likely cause and the one change that
fixes it), then one section per kind of finding (summary, the two captures' copies of the
damaged bytes with the changed characters marked, cause, fix with its configuration lines, and
how to check it in Wireshark), the affected sessions, a timeline and an appendix (captures,
clock offset, pairing).
What it does not do: compute findings (see `digest` for the reading of the model) or trust a
single captured character: every captured string goes through `text.visible` and is escaped
for where it lands (table cell, code span, fenced block), so no `|`, backtick, HTML tag or
terminal escape in a capture can change the document's structure.

Why one long module: one document, its sections in the order of the HTML page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from analyzer.text import clip, markdown_cell, visible

from . import digest
from .diff import (
    DiffRow,
    RowKind,
    Spans,
    caret_line,
    fold,
    line_diff,
    map_spans,
    mark_tokens,
    plain,
)
from .digest import Index, as_int, as_str, plural, utc
from .model import FindingEntry, Report

MAX_SESSION_ROWS = 200
"""Rows of the sessions table; more are counted, not listed."""
MAX_EXCERPT_LINES = 60
"""Lines of one excerpt shown; the rest is counted."""
MAX_LINE_CHARS = 400
"""Characters of one excerpt line shown."""
CONTEXT_LINES = 2
"""Identical lines kept around a change in a compared excerpt; longer runs are folded."""
INLINE_EXCERPT = 80
"""Single-line excerpts up to this long are shown inline, longer ones as a block."""

_BACKTICKS = re.compile(r"`+")


def cell(text: object) -> str:
    """Captured or generated text, safe in a table cell and in running text.

    `&` is escaped too, so a captured `&lt;` shows as typed instead of as an entity."""
    return markdown_cell(as_str(text)).replace("&", "\\&")


def code_span(text: object, *, in_table: bool = False) -> str:
    """Text as an inline code span whatever backticks it holds (CommonMark §6.1)."""
    content = visible(as_str(text))
    if in_table:
        content = content.replace("|", "\\|")  # GFM splits cells on '|' even in code spans
    longest = max((len(m) for m in _BACKTICKS.findall(content)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if content.startswith(("`", " ")) or content.endswith(("`", " ")) else ""
    return f"{fence}{pad}{content}{pad}{fence}" if content else "` `"


def fenced(lines: list[str], info: str = "") -> list[str]:
    """A fenced block that no line can close early."""
    longest = max((len(m) for line in lines for m in _BACKTICKS.findall(line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, *lines, fence]


def prose(text: object) -> str:
    """Generated sentences with `code` parts, every part escaped."""
    return "".join(
        code_span(part) if is_code else cell(part)
        for part, is_code in digest.inline_code(as_str(text))
    )


def _excerpt_lines(text: str, tokens: Sequence[str] = ()) -> list[str]:
    """An excerpt's lines made visible, with a caret line under the tokens a finding names."""
    lines: list[str] = []
    for line in text.split("\n"):
        spans = map_spans(mark_tokens(line, tokens), visible)
        lines.append(clip(plain(spans), MAX_LINE_CHARS))
        carets = caret_line(spans) if tokens else ""
        if carets and len(carets) <= MAX_LINE_CHARS:
            lines.append(carets)
    if len(lines) > MAX_EXCERPT_LINES:
        hidden = len(lines) - MAX_EXCERPT_LINES
        lines = [*lines[:MAX_EXCERPT_LINES], f"… {plural(hidden, 'more line')}"]
    return lines


def _escaped(spans: Spans) -> Spans:
    return map_spans(spans, visible)


def _diff_block(sent: str, received: str) -> list[str]:
    """A ```diff block: '-' the sent line, '+' the received one, '^' under changed characters."""
    lines: list[str] = []
    rows = (
        line_diff(sent, received)
        if received
        else [DiffRow(RowKind.ONLY_A, r.a, ()) for r in line_diff(sent, sent)]
    )
    shown = 0
    for item in fold(rows, CONTEXT_LINES):
        if shown >= MAX_EXCERPT_LINES:
            lines.append("  … (cut)")
            break
        if isinstance(item, int):
            lines.append(f"  … {plural(item, 'identical line')}")
            continue
        a, b = _escaped(item.a), _escaped(item.b)
        if item.kind is RowKind.SAME:
            lines.append("  " + clip(plain(a), MAX_LINE_CHARS))
        if item.kind in (RowKind.CHANGED, RowKind.ONLY_A):
            lines.append("- " + clip(plain(a), MAX_LINE_CHARS))
        if item.kind in (RowKind.CHANGED, RowKind.ONLY_B):
            lines.append("+ " + clip(plain(b), MAX_LINE_CHARS))
            if item.kind is RowKind.CHANGED:
                carets = caret_line(b)
                if carets and len(carets) <= MAX_LINE_CHARS:
                    lines.append("  " + carets)
        shown += 1
    if not received:
        lines.append("+ [nothing arrived]")
    return fenced(lines, "diff")


def _where(ev: dict[str, Any], index: Index) -> str:
    capture = as_str(ev.get("capture"))
    role = index.role(capture) or capture
    frame = as_int(ev.get("frame"))
    parts = [f"{cell(role)} capture"]
    if frame is not None:
        parts.append(f"frame {frame}")
    if ev.get("ts") is not None:
        parts.append(f"{utc(ev.get('ts'))} UTC")
    direction = as_str(ev.get("direction"))
    if direction:
        parts.append("client → server" if direction == digest.C2S else "server → client")
    return ", ".join(parts)


def _note(ev: dict[str, Any]) -> str:
    note = as_str(ev.get("note"))
    return f" — {cell(note)}" if note else ""


def _evidence(finding: FindingEntry, index: Index) -> list[str]:
    out: list[str] = []
    for shown in digest.shown_evidence(finding, index):
        sent, received = shown.sent, shown.received
        if shown.compared and sent is not None and received is not None:
            if as_str(sent.get("excerpt")) == as_str(received.get("excerpt")):
                out.append(
                    f"- the same bytes in both captures: {_where(sent, index)}"
                    f"{_note(sent)}; {_where(received, index)}{_note(received)}"
                )
                out.append("")
                out.extend(
                    "  " + line
                    for line in fenced(_excerpt_lines(as_str(sent.get("excerpt"))), "text")
                )
                out.append("")
                continue
            out.append(f"- `-` as sent: {_where(sent, index)}{_note(sent)}")
            out.append(f"- `+` as received: {_where(received, index)}{_note(received)}")
            out.append("")
            out.extend(_diff_block(as_str(sent.get("excerpt")), as_str(received.get("excerpt"))))
            out.append("")
            continue
        ev = shown.copies[0]
        excerpt = as_str(ev.get("excerpt"))
        tokens = [t for t in digest.tokens_of(finding) if t in excerpt]
        if "\n" not in excerpt and len(visible(excerpt)) <= INLINE_EXCERPT and not tokens:
            out.append(f"- {_where(ev, index)}{_note(ev)}: {code_span(excerpt)}")
        else:
            out.append(f"- {_where(ev, index)}{_note(ev)}:")
            out.append("")
            out.extend("  " + line for line in fenced(_excerpt_lines(excerpt, tokens), "text"))
        out.append("")
    if out and out[-1] == "":
        out.pop()
    return out


def _remediation(text: str) -> list[str]:
    out: list[str] = []
    for block in digest.blocks(text):
        if block.code:
            out.extend(fenced([visible(line) for line in block.text.split("\n")], "text"))
        else:
            out.append(" ".join(prose(line) for line in block.text.split("\n")))
        out.append("")
    if out:
        out.pop()
    return out


def _sessions_of(finding: FindingEntry) -> str:
    ids = [as_str(s) for s in finding.get("sessions") or []]
    return " ⇄ ".join(cell(s) for s in ids[:2]) + (f" +{len(ids) - 2}" if len(ids) > 2 else "")


def _verify(issue: digest.Issue, index: Index) -> list[str]:
    rows = ["| finding | capture file | frames | Wireshark display filters |", "|---|---|---|---|"]
    for finding in issue.listed:
        for check in digest.checks(finding, index):
            filters = [f for f in (check.stream_filter, check.frame_filter) if f]
            rows.append(
                f"| {cell(finding.get('id'))} | {cell(check.role)}: {cell(check.file)} | "
                f"{', '.join(str(n) for n in check.frames) or '-'} | "
                f"{' and '.join(code_span(f, in_table=True) for f in filters) or '-'} |"
            )
    return rows


def _compared_key(finding: FindingEntry, index: Index) -> tuple[tuple[str, str], ...]:
    """The byte comparisons a finding shows (sent, received), without frames or times."""
    return tuple(
        (as_str((shown.sent or {}).get("excerpt")), as_str((shown.received or {}).get("excerpt")))
        for shown in digest.shown_evidence(finding, index)
        if shown.compared
    )


def _issue_evidence(issue: digest.Issue, index: Index) -> list[str]:
    """Evidence of an issue: each different comparison once, other packets listed briefly."""
    out: list[str] = []
    shown: dict[tuple[tuple[str, str], ...], list[str]] = {}
    identical: set[str] = set()
    full = 0
    for finding in issue.listed:
        compared = _compared_key(finding, index)
        key = compared or tuple((c, e) for c, _, e in digest.evidence_key(finding))
        if key and key in shown:
            shown[key].append(as_str(finding.get("id")))
            if not compared:
                identical.add(as_str(finding.get("id")))
            continue
        if full >= 3:
            continue
        full += 1
        shown[key] = []
        out.extend([f"**Evidence** ({cell(finding.get('id'))}):", ""])
        out.extend(_evidence(finding, index) or ["- (no packet recorded)"])
        out.append("")
    repeated = {fid for ids in shown.values() for fid in ids}
    if repeated:
        names = ", ".join(f for f in issue.ids if f in repeated)
        others_listed = False
        for finding in issue.listed:
            if as_str(finding.get("id")) not in repeated - identical:
                continue
            for item in digest.shown_evidence(finding, index):
                if item.compared:
                    continue
                ev = item.copies[0]
                if not others_listed:
                    out.extend([f"{cell(names)}: the same bytes as above; other packets:", ""])
                    others_listed = True
                out.append(
                    f"- {cell(finding.get('id'))}: {_where(ev, index)}{_note(ev)}: "
                    f"{code_span(clip(visible(as_str(ev.get('excerpt'))), INLINE_EXCERPT))}"
                )
        if not others_listed:
            out.append(f"{cell(names)}: the same bytes as above (frames below).")
        if out[-1] == "":
            out.pop()
        out.append("")
    others = len(issue.listed) - full - len(repeated)
    if others > 0:
        out.extend(
            [f"Evidence of the other {plural(others, 'finding')}: see the frames below.", ""]
        )
    return out


def _issue(number: int, issue: digest.Issue, index: Index, fixes_seen: dict[str, int]) -> list[str]:
    out = [f"### {number}. {cell(issue.title)}", ""]
    connections = {
        index.connection(as_str(s))[0] for f in issue.findings for s in f.get("sessions") or []
    }
    out.append(
        f"**{cell(issue.severity)}** · {cell(issue.confidence)} · "
        f"{code_span(issue.kind)} · {cell(digest.id_list(issue.ids))} · "
        f"{plural(len(connections), 'connection')}"
    )
    out.append("")
    for finding in issue.listed:
        out.append(
            f"- {cell(finding.get('id'))} ({_sessions_of(finding)}, "
            f"{cell(finding.get('severity'))}): {cell(finding.get('summary'))}"
        )
    if issue.unlisted:
        out.append(
            f"- … and {plural(issue.unlisted, 'more finding')} of this kind "
            "(report.json lists them all)."
        )
    out.append("")
    out.extend(_issue_evidence(issue, index))
    causes = list(dict.fromkeys(as_str(f.get("cause")) for f in issue.findings))
    out.extend([f"**Cause.** {' '.join(prose(c) for c in causes if c) or 'unknown'}", ""])
    remediation = as_str(issue.findings[0].get("remediation"))
    if fixes_seen.get(remediation) == 0:
        out.extend(["**Fix.** The one change in the verdict above.", ""])
    elif remediation in fixes_seen:
        out.extend([f"**Fix.** The same change as in section {fixes_seen[remediation]}.", ""])
    else:
        fixes_seen[remediation] = number
        out.extend(["**Fix.**", "", *_remediation(remediation), ""])
    out.extend(
        [
            "**Verify.** Open the file in Wireshark and apply the filter "
            "(`tcp.stream eq N` shows the whole connection):",
            "",
        ]
    )
    out.extend(_verify(issue, index))
    out.append("")
    return out


def _verdict(report: Report, index: Index) -> list[str]:
    v = digest.verdict(report, index)
    out = ["## Verdict", ""]
    if v.clean:
        out.extend([f"**{cell(v.headline)}.** {cell(v.happened)}", ""])
        return out
    top: FindingEntry | dict[str, Any] = v.fix_from or {}
    how = (
        "confirmed by comparing the two sides of the firewall"
        if v.two_sided and v.confidence == "confirmed"
        else f"{v.confidence or 'possible'}, from the symptoms in "
        + ("one capture" if not v.two_sided else "the captures")
    )
    out.extend([f"**{cell(v.headline)}** ({cell(how)}).", ""])
    rows = [
        ("What happened", cell(v.happened)),
        ("Between", cell(v.hosts)),
        (
            "Affected",
            f"{v.connections} of {plural(v.total_connections, 'connection')}, "
            f"{plural(v.messages, 'message')}",
        ),
        ("Since", f"{utc(v.first_ts)} UTC (first affected connection)"),
        ("Until", f"{utc(v.last_ts)} UTC (last affected connection)"),
        ("Security impact", " ".join(cell(i) for i in v.impact)),
        ("Most likely cause", prose(v.cause)),
        (
            "The fix",
            f"below, from {cell(top.get('id'))} ({code_span(top.get('kind'), in_table=True)})",
        ),
    ]
    out.extend(["| | |", "|---|---|"])
    out.extend(f"| {name} | {value} |" for name, value in rows)
    if v.two_sided:
        out.extend(["", "Times are on the client-side capture's clock."])
    out.extend(["", "### The one change that fixes it", ""])
    out.extend(_remediation(v.remediation))
    others = digest.other_fixes(report, v)
    if others:
        listed = "; ".join(f"{n}. {cell(issue.title)}" for n, issue in others)
        out.extend(["", f"Not cured by this change (see their own fix below): {listed}."])
    out.append("")
    return out


SESSION_HEADER = (
    "| session | peer | client | server | start (UTC) | STARTTLS | transactions | end | findings |"
)


def _session_rows(
    sessions: Iterable[dict[str, Any]], findings_of: dict[str, list[str]]
) -> list[str]:
    rows = [SESSION_HEADER, "|---|---|---|---|---|---|---|---|---|"]
    for session in sessions:
        sid = as_str(session.get("id"))
        rows.append(
            f"| {cell(sid)} | {cell(session.get('peer') or '-')} | {cell(session.get('client'))} | "
            f"{cell(session.get('server'))} | {utc(session.get('start'))} | "
            f"{cell(digest.starttls_text(session))} | "
            f"{cell(digest.transactions_text(session))} | {cell(session.get('end_reason'))} | "
            f"{cell(', '.join(findings_of.get(sid, [])) or '-')} |"
        )
    return rows


def findings_by_session(report: Report) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for finding in report.get("findings") or []:
        for sid in finding.get("sessions") or []:
            out.setdefault(as_str(sid), []).append(as_str(finding.get("id")))
    return out


def _sessions(report: Report, index: Index) -> list[str]:
    findings_of = findings_by_session(report)
    affected = digest.affected_connections(report, index)
    if affected:
        ids = [sid for near, far in affected for sid in (near, far) if sid]
        title, intro = (
            "## Affected sessions",
            (f"{plural(len(affected), 'connection')}; each row is one capture's view of it."),
        )
    else:
        ids = list(index.sessions)
        title, intro = "## Sessions", f"{plural(len(ids), 'session')} in the captures."
    sessions = [index.sessions[s] for s in ids if s in index.sessions]
    out = [title, "", intro, ""]
    out.extend(_session_rows(sessions[:MAX_SESSION_ROWS], findings_of))
    if len(sessions) > MAX_SESSION_ROWS:
        out.extend(
            [
                "",
                f"… and {plural(len(sessions) - MAX_SESSION_ROWS, 'more session')} "
                "(see report.json or report.html).",
            ]
        )
    out.append("")
    return out


def _timeline(report: Report, index: Index) -> list[str]:
    events, left = digest.timeline(report, index)
    if not events:
        return []
    out = ["## Timeline", ""]
    if index.two_sided:
        out.extend(
            [
                "UTC, on the client-side capture's clock (server-side times shifted by the "
                "clock offset).",
                "",
            ]
        )
    out.extend(["| time (UTC) | connection | event |", "|---|---|---|"])
    for event in events:
        text = cell(event.text)
        if event.severity:
            text = f"**{cell(event.severity)}** {text}"
        out.append(f"| {utc(event.ts)} | {cell(event.session)} | {text} |")
    if left:
        out.extend(["", f"… and {plural(left, 'more event')}."])
    out.append("")
    return out


def _appendix(report: Report, index: Index) -> list[str]:
    out = [
        "## Appendix",
        "",
        "### Captures",
        "",
        "| capture | role | file | format | packets | first (UTC) | last (UTC) | SMTP sessions "
        "| anomalies |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for capture in report.get("captures") or []:
        anomalies = capture.get("anomalies") or {}
        anomaly_text = ", ".join(f"{k}: {v}" for k, v in sorted(anomalies.items())) or "none"
        files = [f for f in capture.get("files") or [] if isinstance(f, dict)] or [
            {
                "path": capture.get("path"),
                "format": "",
                "packets": capture.get("packets"),
                "first_ts": capture.get("first_ts"),
                "last_ts": capture.get("last_ts"),
            }
        ]
        for i, f in enumerate(files):
            first = i == 0
            out.append(
                f"| {cell(capture.get('id')) if first else ''} | "
                f"{cell(capture.get('role')) if first else ''} | {cell(f.get('path'))} | "
                f"{cell(f.get('format'))} | {cell(f.get('packets'))} | {utc(f.get('first_ts'))} | "
                f"{utc(f.get('last_ts'))} | "
                f"{cell(capture.get('smtp_sessions')) if first else ''} | "
                f"{cell(anomaly_text) if first else ''} |"
            )
    out.extend(["", "### Clock offset", ""])
    clock = report.get("clock")
    if isinstance(clock, dict) and clock.get("offset_s") is not None:
        offset = digest.as_float(clock.get("offset_s")) or 0.0
        drift = digest.as_float(clock.get("drift_ppm"))
        out.append(
            f"The server-side capture's clock minus the client-side one: **{offset:+.6f} s** "
            f"(method {cell(clock.get('method'))}, from {cell(clock.get('support'))} "
            f"session pair(s)" + (f", drift {drift:+.3f} ppm" if drift is not None else "") + ")."
        )
    else:
        out.append("One capture: no clock to compare.")
    pairs = report.get("pairs") or []
    if pairs:
        out.extend(
            [
                "",
                "### How sessions were paired",
                "",
                "| client-side | server-side | score | margin | corroborated | matched on | "
                "time delta (s) | identical | divergences | end mismatches |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
        )
        for pair in pairs:
            delta = digest.as_float(pair.get("time_delta_s"))
            out.append(
                f"| {cell(pair.get('client_side'))} | {cell(pair.get('server_side'))} | "
                f"{cell(pair.get('score'))} | "
                f"{cell(pair.get('margin'))}{' (ambiguous)' if pair.get('ambiguous') else ''} | "
                f"{'yes' if pair.get('corroborated') else 'no'} | "
                f"{cell(', '.join(as_str(m) for m in pair.get('matched_on') or []))} | "
                f"{f'{delta:+.6f}' if delta is not None else '?'} | "
                f"{'yes' if pair.get('identical') else 'no'} | "
                f"{len(pair.get('divergences') or [])} | {len(pair.get('end_mismatches') or [])} |"
            )
    out.extend(_coverage(pairs))
    generator = report.get("generator") or {}
    out.extend(
        [
            "",
            f"Generated by {cell(generator.get('name') or 'smtpfw')} "
            f"{cell(generator.get('version') or '')} from report.json "
            f"(schema {cell(report.get('schema'))}).",
            "",
        ]
    )
    return out


def _coverage(pairs: list[Any]) -> list[str]:
    """The appendix's "Capture coverage": what one capture lacks, left out of the comparison."""
    rows = [(p, u) for p in pairs for u in p.get("uncovered") or [] if isinstance(u, dict)]
    if not rows:
        return []
    out = [
        "",
        "### Capture coverage",
        "",
        "Bytes one capture does not hold were not compared: they are no evidence of the firewall.",
        "",
        "| client-side | server-side | direction | lacking capture | reason | offset | bytes |",
        "|---|---|---|---|---|---|---|",
    ]
    for pair, u in rows:
        out.append(
            f"| {cell(pair.get('client_side'))} | {cell(pair.get('server_side'))} | "
            f"{cell(u.get('direction'))} | {cell(u.get('capture'))} | {cell(u.get('reason'))} | "
            f"{cell(u.get('offset'))} | {cell(u.get('length'))} |"
        )
    return out


def render_markdown(report: Report) -> str:
    """The whole report as Markdown text."""
    index = Index(report)
    v = digest.verdict(report, index)
    names = ", ".join(cell(index.file_of(c)) for c in index.captures) or "no capture"
    out = [f"# SMTP incident report: {cell(v.headline)}", "", f"Captures: {names}.", ""]
    for notice in digest.notices(report):
        out.extend([f"> **Note.** {cell(notice)}", ""])
    out.extend(_verdict(report, index))
    groups = digest.issues(report)
    if groups:
        out.extend(["## Findings", ""])
        fixes: dict[str, int] = {v.remediation: 0}
        for number, issue in enumerate(groups, 1):
            out.extend(_issue(number, issue, index, fixes))
    out.extend(_sessions(report, index))
    out.extend(_timeline(report, index))
    out.extend(_appendix(report, index))
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"
