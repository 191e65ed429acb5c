"""Render a report model as one self-contained HTML page (`report.html`).

What it does: writes, from `report.json` alone, the verdict, one card per kind of finding (the two
captures' copies side by side with the changed characters marked, cause, fix, how to verify),
a ladder diagram (`svg`) and side-by-side transcripts per affected connection, a sessions table
that sorts (click a header) and filters (type in the box) with a few lines of inline script and
reads fine without it, a timeline and an appendix. CSS and script are inline (`templates/`);
a Content-Security-Policy lets the page load nothing and run only its own script (by hash).
What it does not do: compute findings (see `digest`), fetch anything, or print a captured
character unescaped: every captured string goes through `text.visible` (controls, NULs,
undecodable bytes and surrogates become visible escapes) and `html.escape(quote=True)`.

Why one long module: one self-contained page, its sections in reading order.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from analyzer.text import clip, visible

from . import digest, svg
from .diff import DiffRow, RowKind, Span, Spans, fold, line_diff, map_spans, mark_tokens
from .digest import C2S, Index, Step, as_float, as_int, as_str, plural, utc
from .escape import esc, marked
from .model import FindingEntry, Report

MAX_LADDERS = 20
"""Connections drawn as ladder diagrams; the rest are listed."""
MAX_SESSION_ROWS = 5000
"""Rows of the sessions table."""
MAX_LINE_CHARS = 800
"""Characters of one captured line shown (the rest is in report.json)."""
MAX_CMP_ROWS = 80
"""Rows of one side-by-side comparison (identical runs are folded first)."""
CONTEXT_LINES = 2


@cache
def _template(name: str) -> str:
    return (resources.files("analyzer.report") / "templates" / name).read_text(encoding="utf-8")


def _spans(spans: Spans, cls: str) -> str:
    return marked(map_spans(spans, visible), "mark", cls)


def _clipped(spans: Spans) -> Spans:
    from .diff import clip_spans

    return clip_spans(spans, MAX_LINE_CHARS)


def _prose(text: object) -> str:
    return "".join(
        f"<code>{esc(part)}</code>" if is_code else esc(part)
        for part, is_code in digest.inline_code(as_str(text))
    )


def _remediation(text: str) -> str:
    out = []
    for block in digest.blocks(text):
        if block.code:
            out.append(f'<pre class="config">{esc_lines(block.text)}</pre>')
        else:
            out.append(f"<p>{' '.join(_prose(line) for line in block.text.split(chr(10)))}</p>")
    return "".join(out)


def esc_lines(text: str) -> str:
    return "\n".join(esc(line) for line in text.split("\n"))


def _badge(severity: str) -> str:
    cls = severity if severity in digest.SEVERITIES else "info"
    return f'<span class="badge {cls}">{esc(severity or "?")}</span>'


def _anchor(session_id: str) -> str:
    """An id attribute value for a connection (only [a-z0-9-])."""
    safe = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in session_id.lower())
    tag = hashlib.sha1(session_id.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    return f"conn-{safe[:60]}-{tag}"


# -- verdict --------------------------------------------------------------------------------------


def _verdict(report: Report, index: Index) -> str:
    v = digest.verdict(report, index)
    if v.clean:
        cls = "nooverlap" if digest.verdict_kind(report) == "no_overlap" else "clean"
        return (
            f'<section class="verdict {cls}" id="verdict"><p class="headline">'
            f"{esc(v.headline)}</p><p>{esc(v.happened)}</p></section>"
        )
    top: FindingEntry | dict[str, Any] = v.fix_from or {}
    severity = v.severity
    how = (
        "confirmed by comparing the two sides of the firewall"
        if v.two_sided and v.confidence == "confirmed"
        else f"{v.confidence or 'possible'}, from the symptoms in "
        + ("one capture" if not v.two_sided else "the captures")
    )
    facts = [
        ("What happened", esc(v.happened)),
        ("Between", esc(v.hosts)),
        (
            "Affected",
            esc(
                f"{v.connections} of {plural(v.total_connections, 'connection')}, "
                f"{plural(v.messages, 'message')}"
            ),
        ),
        (
            "When (UTC)",
            esc(
                f"{utc(v.first_ts)} → {utc(v.last_ts)} (first and last affected "
                "connection" + (", client-side clock)" if v.two_sided else ")")
            ),
        ),
        ("Security impact", "<br>".join(esc(i) for i in v.impact)),
        ("Most likely cause", _prose(v.cause)),
    ]
    dl = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    cls = severity if severity in digest.SEVERITIES else "info"
    return (
        f'<section class="verdict {cls}" id="verdict">'
        f'<p class="headline">{_badge(severity)} {esc(v.headline)}</p>'
        f'<p class="sub">{esc(how)}</p><dl class="facts">{dl}</dl>'
        f'<div class="fix"><h4>The one change that fixes it '
        f'<span class="pill">from {esc(top.get("id"))} · {esc(top.get("kind"))}</span></h4>'
        f"{_remediation(v.remediation)}{_others(report, v)}</div></section>"
    )


def _others(report: Report, v: digest.Verdict) -> str:
    others = digest.other_fixes(report, v)
    if not others:
        return ""
    links = "; ".join(f'<a href="#issue-{n}">{n}. {esc(issue.title)}</a>' for n, issue in others)
    return f'<p class="sub">Not cured by this change (each has its own fix below): {links}.</p>'


# -- findings -------------------------------------------------------------------------------------


def _where(ev: dict[str, Any], index: Index, *, role: bool = True) -> str:
    """Capture, frame, time and note of a piece of evidence (in a comparison's column header
    the role is the column's, and a bare 'as sent'/'as received' note repeats it)."""
    capture = as_str(ev.get("capture"))
    parts = [f"{index.role(capture) or capture} capture"] if role else []
    frame = as_int(ev.get("frame"))
    if frame is not None:
        parts.append(f"frame {frame}")
    if ev.get("ts") is not None:
        parts.append(utc(ev.get("ts"), date=False) + " UTC")
    note = as_str(ev.get("note"))
    if not role and note in ("as sent", "as received"):
        note = ""
    return esc(", ".join(parts)) + (f" — <em>{esc(note)}</em>" if note else "")


def _cmp_table(shown: digest.Shown, index: Index) -> str:
    """Client-side copy left, server-side copy right, one row per line, changes marked."""
    client, server = shown.client_side or {}, shown.server_side or {}
    c2s = shown.direction == C2S
    client_cls, server_cls = ("sent", "got") if c2s else ("got", "sent")
    client_text, server_text = as_str(client.get("excerpt")), as_str(server.get("excerpt"))
    rows_html = []
    rows = (
        line_diff(client_text, server_text)
        if client_text and server_text
        else [
            DiffRow(
                RowKind.ONLY_A if client_text else RowKind.ONLY_B,
                (Span(line, True),) if client_text else (),
                () if client_text else (Span(line, True),),
            )
            for line in (client_text or server_text).split("\n")
        ]
    )
    for item in fold(rows, CONTEXT_LINES)[:MAX_CMP_ROWS]:
        if isinstance(item, int):
            rows_html.append(
                f'<tr class="fold"><td colspan="2" class="none">… '
                f"{plural(item, 'identical line')}</td></tr>"
            )
            continue
        same = item.kind is RowKind.SAME
        left = _spans(_clipped(item.a), client_cls) if item.kind is not RowKind.ONLY_B else ""
        right = _spans(_clipped(item.b), server_cls) if item.kind is not RowKind.ONLY_A else ""
        left_cell = (
            f'<td class="{client_cls}">{left}</td>'
            if item.kind is not RowKind.ONLY_B
            else '<td class="none">(not in this capture)</td>'
        )
        right_cell = (
            f'<td class="{server_cls}">{right}</td>'
            if item.kind is not RowKind.ONLY_A
            else '<td class="none">(nothing arrived)</td>'
            if c2s
            else '<td class="none">(not in this capture)</td>'
        )
        rows_html.append(f'<tr class="{"same" if same else "chg"}">{left_cell}{right_cell}</tr>')
    client_head = f"client-side capture, {'as sent' if c2s else 'as received'}"
    server_head = f"server-side capture, {'as received' if c2s else 'as sent'}"
    return (
        '<table class="cmp"><thead><tr>'
        f"<th>{esc(client_head)}<br>{_where(client, index, role=False)}</th>"
        f"<th>{esc(server_head)}<br>{_where(server, index, role=False)}</th>"
        f"</tr></thead><tbody>{''.join(rows_html)}</tbody></table>"
    )


def _single_evidence(ev: dict[str, Any], index: Index, marks: Sequence[str]) -> str:
    text = as_str(ev.get("excerpt"))
    if "\n" not in text and len(text) <= 80:
        return (
            f"<li>{_where(ev, index)}: "
            f"<code>{_spans(_clipped(mark_tokens(text, marks)), 'hit')}</code></li>"
        )
    return f"<li>{_where(ev, index)}<pre>{_lines(_text_lines(text, marks), 'hit')}</pre></li>"


def _evidence(issue: digest.Issue, index: Index) -> str:
    out: list[str] = []
    seen: dict[tuple[tuple[str, str], ...], list[str]] = {}
    full = 0
    for finding in issue.listed:
        shown = digest.shown_evidence(finding, index)
        key = tuple(
            (as_str((s.sent or {}).get("excerpt")), as_str((s.received or {}).get("excerpt")))
            for s in shown
            if s.compared
        ) or digest_key(finding)
        fid = as_str(finding.get("id"))
        if key in seen:
            seen[key].append(fid)
            continue
        if full >= 3:
            continue
        full += 1
        seen[key] = []
        parts = [f"<h4>Evidence · {esc(fid)}</h4>"]
        singles = []
        for item in shown:
            if item.compared:
                parts.append(f'<div class="scroll">{_cmp_table(item, index)}</div>')
            else:
                singles.append(_single_evidence(item.copies[0], index, digest.tokens_of(finding)))
        if singles:
            parts.append(f'<ul class="evidence-list">{"".join(singles)}</ul>')
        out.append("".join(parts))
    repeated = [fid for ids in seen.values() for fid in ids]
    if repeated:
        out.append(
            f"<p>{esc(', '.join(repeated))}: the same bytes as above "
            "(their frames are in the table below).</p>"
        )
    others = len(issue.listed) - full - len(repeated)
    if others > 0:
        out.append(
            f"<p>Evidence of the other {plural(others, 'finding')}: see the frames below.</p>"
        )
    if any(
        item.compared and item.client_side != item.server_side
        for finding in issue.listed
        for item in digest.shown_evidence(finding, index)
        if as_str((item.client_side or {}).get("excerpt"))
        != as_str((item.server_side or {}).get("excerpt"))
    ):
        out.insert(
            0,
            '<p class="legend"><span><span class="sw" style="background:#aceebb">'
            '</span>as sent</span><span><span class="sw" style="background:#ffcecb">'
            "</span>as received (changed characters marked)</span></p>",
        )
    return "".join(out)


def digest_key(finding: FindingEntry) -> tuple[tuple[str, str], ...]:
    return tuple((c, e) for c, _, e in digest.evidence_key(finding))


def _verify(issue: digest.Issue, index: Index) -> str:
    """One row per finding, one column per capture: frames and display filters."""
    captures = list(index.captures)
    rows = []
    for finding in issue.listed:
        by_capture = {c.capture: c for c in digest.checks(finding, index)}
        cells = []
        for capture in captures:
            check = by_capture.get(capture)
            if check is None:
                cells.append("<td>-</td>")
                continue
            filters = "<br>".join(
                f"<code>{esc(f)}</code>" for f in (check.stream_filter, check.frame_filter) if f
            )
            other_file = (
                f'<span class="mono">{esc(check.file)}</span><br>'
                if check.file != index.file_of(capture)
                else ""
            )
            frames = ", ".join(str(n) for n in check.frames)
            label = "frame " if len(check.frames) == 1 else "frames "
            cells.append(
                f"<td>{other_file}{label + esc(frames) + '<br>' if frames else ''}"
                f"{filters or '-'}</td>"
            )
        rows.append(f"<tr><td>{esc(finding.get('id'))}</td>{''.join(cells)}</tr>")
    heads = "".join(
        f'<th>{esc(index.role(c) or c)} capture<br><span class="mono">{esc(index.file_of(c))}'
        "</span></th>"
        for c in captures
    )
    return (
        "<h4>Verify in Wireshark</h4><p>Open the file and apply a display filter: "
        "<code>tcp.stream eq N</code> shows the whole connection, the frame filter the "
        "evidence.</p>"
        f'<table class="verify"><thead><tr><th>finding</th>{heads}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _issue(
    number: int, issue: digest.Issue, index: Index, fixes: dict[str, int], anchors: dict[str, str]
) -> str:
    connections = {
        index.connection(as_str(s))[0] for f in issue.findings for s in f.get("sessions") or []
    }
    items = []
    for finding in issue.listed:
        sessions = [as_str(s) for s in finding.get("sessions") or []]
        near = index.connection(sessions[0])[0] if sessions else ""
        link = (
            f'<a href="#{anchors[near]}">{esc(" ⇄ ".join(sessions[:2]))}</a>'
            if near in anchors
            else esc(" ⇄ ".join(sessions[:2]))
        )
        items.append(
            f"<li><b>{esc(finding.get('id'))}</b> ({link}, "
            f"{esc(finding.get('severity'))}): {esc(finding.get('summary'))}</li>"
        )
    if issue.unlisted:
        items.append(
            f"<li>… and {plural(issue.unlisted, 'more finding')} of this kind "
            "(report.json lists them all).</li>"
        )
    causes = list(dict.fromkeys(as_str(f.get("cause")) for f in issue.findings))
    remediation = as_str(issue.findings[0].get("remediation"))
    if remediation in fixes and fixes[remediation] == 0:
        fix = '<p>The one change in the <a href="#verdict">verdict</a> above.</p>'
    elif remediation in fixes:
        fix = (
            f'<p>The same change as in <a href="#issue-{fixes[remediation]}">finding group '
            f"{fixes[remediation]}</a>.</p>"
        )
    else:
        fixes[remediation] = number
        fix = _remediation(remediation)
    severity = issue.severity if issue.severity in digest.SEVERITIES else "info"
    return (
        f'<article class="issue {severity}" id="issue-{number}">'
        f"<h3>{_badge(issue.severity)} {number}. {esc(issue.title)}"
        f'<span class="pill">{esc(issue.confidence)}</span>'
        f'<span class="pill mono">{esc(issue.kind)}</span>'
        f'<span class="pill">{esc(digest.id_list(issue.ids))}</span>'
        f'<span class="pill">{plural(len(connections), "connection")}</span></h3>'
        f'<ul class="summaries">{"".join(items)}</ul>'
        f"{_evidence(issue, index)}"
        f"<h4>Cause</h4><p>{' '.join(_prose(c) for c in causes if c) or 'unknown'}</p>"
        f"<h4>Fix</h4>{fix}{_verify(issue, index)}</article>"
    )


# -- connections ----------------------------------------------------------------------------------


def _lines(lines: Sequence[Spans], cls: str) -> str:
    """Lines of runs as HTML, one per line (the cell keeps line breaks), changes marked."""
    return "\n".join(_spans(_clipped(line), cls) for line in lines[:MAX_CMP_ROWS])


def _text_lines(text: str, marks: Sequence[str] = ()) -> list[Spans]:
    return [mark_tokens(line, marks) for line in text.split("\n")]


def _transcript_table(
    steps: Sequence[Step], two_sided: bool, t0: float | None, marks: Sequence[str]
) -> str:
    rows = []
    for step in steps:
        client, server = step.client_side, step.server_side
        c2s = step.direction == C2S
        arrow = "→" if c2s else "←"
        rel = f"+{step.time - t0:.3f}" if t0 is not None else ""
        cls = "chg" if step.differs else "same"
        if step.forged:
            cls += " forged"
        if step.kind == "lost":
            cls += " lost"
        client_cls, server_cls = ("sent", "got") if c2s else ("got", "sent")
        if client is not None and server is not None and step.differs:
            a, b = _pair_lines(as_str(client.get("text")), as_str(server.get("text")))
            left, right = _lines(a, client_cls), _lines(b, server_cls)
        else:
            left = _lines(_text_lines(as_str((client or {}).get("text")), marks), "hit")
            right = _lines(_text_lines(as_str((server or {}).get("text"))), "hit")
        note = f"<br><em>{esc(step.note)}</em>" if step.note else ""
        cframe = as_int((client or {}).get("frame"))
        sframe = as_int((server or {}).get("frame"))
        cells = [
            f'<td class="meta">{esc(rel)}</td>',
            f'<td class="meta">{cframe if cframe is not None else ""}</td>',
            f'<td class="meta">{arrow}</td>',
            f'<td class="{client_cls}">{left}{note}</td>'
            if client is not None
            else '<td class="none">—</td>',
        ]
        if two_sided:
            cells.append(
                f'<td class="{server_cls}">{right}{note}</td>'
                if server is not None
                else '<td class="none">—</td>'
            )
            cells.append(f'<td class="meta">{sframe if sframe is not None else ""}</td>')
        rows.append(f'<tr class="{cls}">{"".join(cells)}</tr>')
    head = (
        "<th>s</th><th>frame</th><th></th><th>client-side capture</th>"
        "<th>server-side capture</th><th>frame</th>"
        if two_sided
        else "<th>s</th><th>frame</th><th></th><th>capture</th>"
    )
    return (
        f'<table class="transcript"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _pair_lines(a: str, b: str) -> tuple[list[Spans], list[Spans]]:
    """Two versions of a (multi-line) step, line by line, changes marked."""
    left: list[Spans] = []
    right: list[Spans] = []
    for row in line_diff(a, b):
        if row.kind is not RowKind.ONLY_B:
            left.append(row.a)
        if row.kind is not RowKind.ONLY_A:
            right.append(row.b)
    return left, right


def _connection(
    report: Report,
    index: Index,
    near: str,
    far: str | None,
    findings_of: dict[str, list[str]],
    anchor: str,
) -> str:
    session = index.session(near)
    peer = index.session(far) if far else None
    steps = digest.align(report, near, far, index)
    two_sided = far is not None
    _, marks, frames = digest.findings_touching(report, {near})
    start = as_float((session or {}).get("start"))
    diagram = svg.connection_ladder(
        steps,
        two_sided=two_sided,
        session=session,
        peer=peer,
        title=svg.connection_title(near, far, session),
        marks=marks,
        frames=frames,
        inside="{} server-side",
        empty="<p>No transcript was kept for this connection.</p>",
    )
    ids = findings_of.get(near, []) + [
        f for f in findings_of.get(far or "", []) if f not in findings_of.get(near, [])
    ]
    t0 = min((s.time for s in steps), default=None)
    legend = (
        '<p class="legend"><span>red arrow: the two captures differ (each half shows its '
        "own copy; changed characters in bold red)</span><span>dashed: made by the "
        "firewall</span><span>×: never crossed the firewall</span></p>"
        if two_sided
        else '<p class="legend"><span>highlighted: the lines the findings point at</span></p>'
    )
    return (
        f'<section class="conn" id="{anchor}"><h3>{esc(near)}'
        + (f" ⇄ {esc(far)}" if far else "")
        + f' <span class="addr">{esc((session or {}).get("client"))} → '
        f"{esc((session or {}).get('server'))} · {esc(utc(start))} UTC · findings "
        f"{esc(', '.join(ids) or '-')}</span></h3>{legend}"
        f'<div class="scroll">{diagram}</div>'
        f"<details><summary>Transcripts side by side ({plural(len(steps), 'step')})</summary>"
        f'<div class="scroll">{_transcript_table(steps, two_sided, t0, marks)}</div></details>'
        "</section>"
    )


# -- sessions, timeline, appendix -----------------------------------------------------------------


def _sessions(
    report: Report, index: Index, findings_of: dict[str, list[str]], anchors: dict[str, str]
) -> str:
    sessions = list(index.sessions.values())
    rows = []
    for session in sessions[:MAX_SESSION_ROWS]:
        sid = as_str(session.get("id"))
        near = index.connection(sid)[0]
        ids = findings_of.get(sid, [])
        link = f'<a href="#{anchors[near]}">{esc(sid)}</a>' if near in anchors else esc(sid)
        txns = digest.transactions(session)
        start = as_float(session.get("start"))
        rows.append(
            f'<tr class="{"affected" if ids else ""}"><td data-sort="{esc(sid)}">{link}</td>'
            f"<td>{esc(session.get('peer') or '-')}</td><td>{esc(session.get('client'))}</td>"
            f"<td>{esc(session.get('server'))}</td>"
            f'<td class="nowrap" data-sort="{start if start is not None else ""}">'
            f"{esc(utc(start))}</td>"
            f"<td>{esc(digest.starttls_text(session))}</td>"
            f'<td data-sort="{len(txns)}">{esc(digest.transactions_text(session))}</td>'
            f"<td>{esc(session.get('end_reason'))}</td><td>{esc(', '.join(ids) or '-')}</td></tr>"
        )
    more = (
        f"<p>… and {plural(len(sessions) - MAX_SESSION_ROWS, 'more session')} "
        "(see report.json).</p>"
        if len(sessions) > MAX_SESSION_ROWS
        else ""
    )
    return (
        f'<section id="sessions"><h2>Sessions ({len(sessions)})</h2>'
        '<div class="filterbar"><input class="filter" type="search" hidden '
        'placeholder="Filter: address, sender, finding…" aria-label="Filter sessions" '
        'data-table="sessions-table" data-count="sessions-count">'
        f'<span class="count" id="sessions-count">{plural(len(rows), "row")}</span></div>'
        '<div class="scroll"><table class="sortable" id="sessions-table"><thead><tr>'
        "<th>session</th><th>peer</th><th>client</th><th>server</th>"
        '<th data-type="number">start (UTC)</th><th>STARTTLS</th>'
        '<th data-type="number">transactions</th><th>end</th><th>findings</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>{more}</section>"
    )


def _timeline(report: Report, index: Index) -> str:
    events, left = digest.timeline(report, index)
    if not events:
        return ""
    rows = []
    for event in events:
        badge = _badge(event.severity) + " " if event.severity else ""
        rows.append(
            f'<tr><td class="mono">{esc(utc(event.ts))}</td><td>{esc(event.session)}'
            f"</td><td>{badge}{esc(event.text)}</td></tr>"
        )
    note = (
        '<p class="sub">UTC on the client-side capture\'s clock (server-side times shifted '
        "by the clock offset).</p>"
        if index.two_sided
        else ""
    )
    more = f"<p>… and {plural(left, 'more event')}.</p>" if left else ""
    return (
        f'<section id="timeline"><h2>Timeline</h2>{note}<table><thead><tr><th>time (UTC)</th>'
        f"<th>connection</th><th>event</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        f"</table>{more}</section>"
    )


def _appendix(report: Report) -> str:
    rows = []
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
            rows.append(
                f"<tr><td>{esc(capture.get('id')) if first else ''}</td>"
                f"<td>{esc(capture.get('role')) if first else ''}</td>"
                f'<td class="mono">{esc(f.get("path"))}</td><td>{esc(f.get("format"))}</td>'
                f'<td class="num">{esc(f.get("packets"))}</td>'
                f"<td>{esc(utc(f.get('first_ts')))}</td>"
                f"<td>{esc(utc(f.get('last_ts')))}</td>"
                f'<td class="num">{esc(capture.get("smtp_sessions")) if first else ""}</td>'
                f"<td>{esc(anomaly_text) if first else ''}</td></tr>"
            )
    clock = report.get("clock")
    if isinstance(clock, dict) and clock.get("offset_s") is not None:
        offset = as_float(clock.get("offset_s")) or 0.0
        drift = as_float(clock.get("drift_ppm"))
        clock_html = (
            f"<p>Server-side clock minus client-side clock: <b>{offset:+.6f} s</b> "
            f"(method {esc(clock.get('method'))}, from {esc(clock.get('support'))} "
            "session pair(s)"
            + (f", drift {drift:+.3f} ppm" if drift is not None else "")
            + ").</p>"
        )
    else:
        clock_html = "<p>One capture: no clock to compare.</p>"
    pair_rows = []
    for pair in report.get("pairs") or []:
        delta = as_float(pair.get("time_delta_s"))
        pair_rows.append(
            f"<tr><td>{esc(pair.get('client_side'))}</td><td>{esc(pair.get('server_side'))}</td>"
            f'<td class="num">{esc(pair.get("score"))}</td>'
            f'<td class="num">{esc(pair.get("margin"))}'
            f"{' (ambiguous)' if pair.get('ambiguous') else ''}</td>"
            f"<td>{'yes' if pair.get('corroborated') else 'no'}</td>"
            f"<td>{esc(', '.join(as_str(m) for m in pair.get('matched_on') or []))}</td>"
            f'<td class="num">{f"{delta:+.6f}" if delta is not None else "?"}</td>'
            f"<td>{'yes' if pair.get('identical') else 'no'}</td>"
            f'<td class="num">{len(pair.get("divergences") or [])}</td>'
            f'<td class="num">{len(pair.get("end_mismatches") or [])}</td></tr>'
        )
    pairs = (
        "<h3>How sessions were paired</h3><table><thead><tr><th>client-side</th>"
        "<th>server-side</th><th>score</th><th>margin</th><th>corroborated</th>"
        "<th>matched on</th><th>time delta (s)</th>"
        "<th>identical</th><th>divergences</th><th>end mismatches</th></tr></thead>"
        f"<tbody>{''.join(pair_rows)}</tbody></table>"
        if pair_rows
        else ""
    )
    uncovered = [
        f"<tr><td>{esc(pair.get('client_side'))}</td><td>{esc(pair.get('server_side'))}</td>"
        f"<td>{esc(u.get('direction'))}</td><td>{esc(u.get('capture'))}</td>"
        f'<td>{esc(u.get("reason"))}</td><td class="num">{esc(u.get("offset"))}</td>'
        f'<td class="num">{esc(u.get("length"))}</td></tr>'
        for pair in report.get("pairs") or []
        for u in pair.get("uncovered") or []
        if isinstance(u, dict)
    ]
    if uncovered:
        pairs += (
            "<h3>Capture coverage</h3><p>Bytes one capture does not hold were not compared: "
            "they are no evidence of the firewall.</p><table><thead><tr><th>client-side</th>"
            "<th>server-side</th><th>direction</th><th>lacking capture</th><th>reason</th>"
            f"<th>offset</th><th>bytes</th></tr></thead><tbody>{''.join(uncovered)}</tbody></table>"
        )
    return (
        '<section id="appendix"><h2>Appendix</h2><h3>Captures</h3><div class="scroll"><table>'
        "<thead><tr><th>capture</th><th>role</th><th>file</th><th>format</th><th>packets</th>"
        "<th>first (UTC)</th><th>last (UTC)</th><th>SMTP sessions</th><th>anomalies</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></div><h3>Clock offset</h3>{clock_html}"
        f"{pairs}</section>"
    )


# -- page -----------------------------------------------------------------------------------------


def _csp(script: str) -> str:
    digest_b64 = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest_b64}'; base-uri 'none'; form-action 'none'"
    )


def _body(report: Report, index: Index) -> Iterable[str]:
    v = digest.verdict(report, index)
    findings_of: dict[str, list[str]] = {}
    for finding in report.get("findings") or []:
        for sid in finding.get("sessions") or []:
            findings_of.setdefault(as_str(sid), []).append(as_str(finding.get("id")))
    connections = digest.affected_connections(report, index)
    drawn = connections[:MAX_LADDERS]
    anchors = {near: _anchor(near) for near, _ in drawn}
    files = ", ".join(index.file_of(c) for c in index.captures) or "no capture"
    generator = report.get("generator") or {}
    yield (
        f"<header><h1>SMTP incident report: {esc(v.headline)}</h1>"
        f'<p class="sub">Captures: <span class="mono">{esc(files)}</span></p></header>'
    )
    groups = digest.issues(report)
    toc = [("verdict", "Verdict")]
    if groups:
        toc.append(("findings", f"Findings ({len(report.get('findings') or [])})"))
    if drawn:
        toc.append(("connections", "Connections"))
    toc.append(("sessions", "Sessions"))
    if connections:
        toc.append(("timeline", "Timeline"))
    toc.append(("appendix", "Appendix"))
    yield '<nav class="toc">' + "".join(f'<a href="#{a}">{t}</a>' for a, t in toc) + "</nav>"
    for notice in digest.notices(report):
        yield f'<section class="notice"><p><strong>Note.</strong> {esc(notice)}</p></section>'
    yield _verdict(report, index)
    if groups:
        fixes: dict[str, int] = {v.remediation: 0}
        yield '<section id="findings"><h2>Findings</h2>'
        for number, issue in enumerate(groups, 1):
            yield _issue(number, issue, index, fixes, anchors)
        yield "</section>"
    if drawn:
        yield (
            '<section id="connections"><h2>Affected connections</h2><p class="sub">'
            "Each command and reply as the two captures saw it, in time order.</p>"
        )
        for near, far in drawn:
            yield _connection(report, index, near, far, findings_of, anchors[near])
        if len(connections) > len(drawn):
            rest = ", ".join(near for near, _ in connections[len(drawn) :])
            yield f"<p>Not drawn: {esc(clip(rest, 2000))}.</p>"
        yield "</section>"
    yield _sessions(report, index, findings_of, anchors)
    yield _timeline(report, index)
    yield _appendix(report)
    yield (
        f"<footer>Generated by {esc(generator.get('name') or 'smtpfw')} "
        f"{esc(generator.get('version') or '')} from report.json (schema "
        f"{esc(report.get('schema'))}). Re-render with <code>smtpfw report report.json "
        "--format html</code>.</footer>"
    )


def render_html(report: Report) -> str:
    """The whole report as one HTML page."""
    index = Index(report)
    v = digest.verdict(report, index)
    script = _template("report.js")
    generator = report.get("generator") or {}
    return Template(_template("page.html")).substitute(
        csp=_csp(script),
        generator=esc(
            f"{as_str(generator.get('name')) or 'smtpfw'} "
            f"{as_str(generator.get('version'))}".strip()
        ),
        title=esc(f"smtpfw: {v.headline}"),
        css=_template("report.css"),
        body="\n".join(_body(report, index)),
        script=script,
    )
