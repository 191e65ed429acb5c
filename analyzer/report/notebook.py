"""Show an analysis in a notebook: a verdict, the findings, and one connection drawn in full.

What it does: `analysis_html` (what `Analysis._repr_html_` shows) writes one sentence of verdict
(the worst finding and the counts, or "no difference"), a table of the findings, and — for one
chosen connection — the ladder diagram from the report layer (`report.svg.ladder` over
`report.digest.align`) and the two captures' transcripts side by side, the changed characters
marked. `show_session(analysis, "client#3")` returns an object a notebook displays as that one
connection. Everything is rendered from the report model (`report.build_report`), like the HTML
report, with a small stylesheet scoped to the output.
What it does not do: import pandas, find anything, or print a captured character unescaped: every
captured or generated string goes through `text.visible` (controls and undecodable bytes become
visible escapes) and `html.escape(quote=True)`; the SVG does the same (`report.svg`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from analyzer.errors import UsageError
from analyzer.result import Analysis
from analyzer.text import clip, visible

from . import digest, svg
from .build import build_report, transcript
from .diff import Spans, clip_spans, line_diff, map_spans, mark_tokens
from .digest import C2S, Index, Step, as_float, as_int, as_str, plural, utc
from .escape import esc, marked
from .model import FindingEntry, Report

MAX_FINDING_ROWS = 15
"""Findings listed one by one; beyond this a table by kind comes first, and
`frames.findings(analysis)` has them all."""
MAX_STEPS = 400
"""Rows of a side-by-side transcript."""
MAX_LINE_CHARS = 400
"""Characters of one captured line shown in a transcript cell."""
MAX_LINES_PER_STEP = 40
"""Lines of one multi-line reply shown in a transcript cell."""

STYLE = """<style>
.smtpfw { font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1f2328; background: #fff; padding: 4px 8px; }
.smtpfw .verdict { border-left: 6px solid #59636e; padding: 6px 12px; margin: 4px 0 10px;
  background: #f6f8fa; font-size: 14px; }
.smtpfw .verdict.critical { border-left-color: #b3261e; background: #fff8f7; }
.smtpfw .verdict.high { border-left-color: #c4510a; background: #fffaf5; }
.smtpfw .notice { border-left: 6px solid #c4510a; padding: 6px 12px; margin: 4px 0 10px;
  background: #fffaf5; }
.smtpfw .verdict.medium { border-left-color: #9a6700; }
.smtpfw .verdict.low { border-left-color: #2f6fbf; }
.smtpfw .verdict.clean { border-left-color: #1a7f37; background: #f6fff8; }
.smtpfw .sub { color: #59636e; margin: 2px 0 8px; }
.smtpfw table { border-collapse: collapse; margin: 6px 0; font-size: 12px; }
.smtpfw th, .smtpfw td { border: 1px solid #d1d9e0; padding: 3px 6px; text-align: left;
  vertical-align: top; }
.smtpfw th { background: #f6f8fa; }
.smtpfw .badge { display: inline-block; border-radius: 999px; padding: 0 7px; font-size: 11px;
  font-weight: 700; text-transform: uppercase; color: #fff; background: #59636e; }
.smtpfw .badge.critical { background: #b3261e; } .smtpfw .badge.high { background: #c4510a; }
.smtpfw .badge.medium { background: #9a6700; } .smtpfw .badge.low { background: #2f6fbf; }
.smtpfw .mono, .smtpfw td.line { font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono",
  monospace; font-size: 12px; }
.smtpfw td.line { white-space: pre-wrap; word-break: break-all; }
.smtpfw td.meta { color: #59636e; white-space: nowrap; }
.smtpfw td.none { color: #8c959f; text-align: center; }
.smtpfw tr.chg td.sent { background: #dafbe1; } .smtpfw tr.chg td.got { background: #ffebe9; }
.smtpfw tr.forged td.line, .smtpfw tr.lost td.line { background: #ffebe9; }
.smtpfw mark { border-radius: 2px; padding: 0 1px; font-weight: 700; }
.smtpfw mark.sent { background: #aceebb; color: #116329; }
.smtpfw mark.got { background: #ffcecb; color: #a40e26; }
.smtpfw mark.hit { background: #fff1a8; color: #6f4a00; }
.smtpfw .scroll { overflow-x: auto; }
.smtpfw svg.ladder { display: block; max-width: none; background: #fff; border: 1px solid #d1d9e0;
  border-radius: 6px; margin: 6px 0; }
.smtpfw svg.ladder .life { stroke: #8c959f; stroke-width: 1.5; stroke-dasharray: 5 4; }
.smtpfw svg.ladder .wall { fill: #ffe8cc; stroke: #d9822b; stroke-width: 1; }
.smtpfw svg.ladder .head { fill: #f6f8fa; stroke: #8c959f; }
.smtpfw svg.ladder .who { font: 700 13px system-ui, sans-serif; fill: #1f2328; }
.smtpfw svg.ladder .addr { font: 11px ui-monospace, Menlo, monospace; fill: #59636e; }
.smtpfw svg.ladder .tap { font: italic 11px system-ui, sans-serif; fill: #59636e; }
.smtpfw svg.ladder .lbl { font: 11px ui-monospace, Menlo, "DejaVu Sans Mono", monospace;
  fill: #24292f; paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round;
  white-space: pre; }
.smtpfw svg.ladder .lbl.hot { stroke: #fff4f2; }
.smtpfw svg.ladder .chg { fill: #cf222e; font-weight: 700; }
.smtpfw svg.ladder .gut { font: 10px ui-monospace, Menlo, monospace; fill: #59636e; }
.smtpfw svg.ladder .band { fill: #fff4f2; }
.smtpfw svg.ladder .arrow { stroke: #57606a; stroke-width: 1.4; fill: #57606a; }
.smtpfw svg.ladder .arrow.differs, .smtpfw svg.ladder .arrow.forged,
.smtpfw svg.ladder .arrow.lost, .smtpfw svg.ladder .arrow.inserted { stroke: #cf222e;
  fill: #cf222e; stroke-width: 2.2; }
.smtpfw svg.ladder .arrow.forged, .smtpfw svg.ladder .arrow.inserted { stroke-dasharray: 7 4; }
.smtpfw svg.ladder polygon.arrow { stroke-dasharray: none; }
.smtpfw svg.ladder .mark { fill: #cf222e; stroke: #fff; stroke-width: 2; }
.smtpfw svg.ladder .cross { stroke: #cf222e; stroke-width: 3; }
</style>"""
"""Scoped to `.smtpfw`, so it changes nothing else on the notebook page. The ladder's classes
are the ones `report.svg` draws with."""


def _spans(spans: Spans, cls: str) -> str:
    return marked(map_spans(clip_spans(spans, MAX_LINE_CHARS), visible), "mark", cls)


def _badge(severity: str) -> str:
    cls = severity if severity in digest.SEVERITIES else "info"
    return f'<span class="badge {cls}">{esc(severity or "?")}</span>'


# -- the report model, with the transcripts a chosen connection needs ---------------------------


def _report(analysis: Analysis, session_ids: Sequence[str]) -> Report:
    """The report model, with transcripts for `session_ids` even when no finding names them."""
    report = build_report(analysis)
    for sid in session_ids:
        session = analysis.session(sid)
        if session is not None and sid not in report["transcripts"]:
            report["transcripts"][sid] = transcript(session)
    return report


# -- verdict and findings -----------------------------------------------------------------------


def verdict_sentence(report: Report, index: Index | None = None) -> tuple[str, str]:
    """One sentence: the worst finding and the counts, or that nothing differs. Returns the
    sentence (raw text) and the severity it speaks of ('clean' when none)."""
    index = index or Index(report)
    findings = digest.ordered_findings(report)
    connections = len({index.connection(s)[0] for s in index.sessions})
    if not index.sessions:
        return "No SMTP session in these captures.", "clean"
    if digest.verdict_kind(report) == "no_overlap":
        v = digest.verdict(report, index)
        return f"{v.headline}. {v.happened}", "high"
    if not findings:
        if index.two_sided:
            pairs = len(report.get("pairs") or [])
            return (
                f"No difference: {plural(pairs, 'paired session')} "
                f"{'is' if pairs == 1 else 'are'} byte-identical on both sides of the "
                "firewall.",
                "clean",
            )
        return (
            f"No symptoms: none of the {plural(connections, 'SMTP session')} in this capture "
            "shows a sign of SMTP inspection.",
            "clean",
        )
    v = digest.verdict(report, index)
    top = findings[0]
    severity = as_str(top.get("severity"))
    counts = Counter(as_str(f.get("severity")) for f in findings)
    by_severity = ", ".join(f"{counts[s]} {s}" for s in digest.SEVERITIES if counts[s])
    how = (
        "confirmed by both captures"
        if as_str(top.get("confidence")) == "confirmed"
        else f"{as_str(top.get('confidence'))}, the captures' overlap not proven"
        if digest.verdict_kind(report) == "unproven_overlap"
        else f"{as_str(top.get('confidence'))}, from one capture's symptoms"
    )
    return (
        f"{severity.capitalize()}: {v.headline[:1].lower()}{v.headline[1:]} — "
        f"{plural(len(findings), 'finding')} ({by_severity}) in {v.connections} of "
        f"{plural(v.total_connections, 'connection')}, {how}.",
        severity,
    )


def _first_evidence(finding: FindingEntry, index: Index) -> float | None:
    times = [
        index.on_client_clock(e.get("ts"), as_str(e.get("capture")))
        for e in finding.get("evidence") or []
    ]
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _kinds_table(report: Report, index: Index) -> str:
    """One row per kind of finding: how many, how bad, how sure, over which time."""
    rows = []
    for issue in digest.issues(report):
        times = [t for f in issue.findings if (t := _first_evidence(f, index)) is not None]
        connections = {
            index.connection(as_str(s))[0] for f in issue.findings for s in f.get("sessions") or []
        }
        rows.append(
            f'<tr><td class="mono">{esc(issue.kind)}</td><td>{_badge(issue.severity)}</td>'
            f"<td>{esc(issue.confidence)}</td><td>{len(issue.findings)}</td>"
            f"<td>{len(connections)}</td>"
            f'<td class="meta">{esc(utc(min(times)) if times else "")}</td>'
            f'<td class="meta">{esc(utc(max(times)) if times else "")}</td></tr>'
        )
    return (
        '<div class="scroll"><table><thead><tr><th>kind</th><th>worst severity</th>'
        "<th>best confidence</th><th>findings</th><th>connections</th><th>first (UTC)</th>"
        f"<th>last (UTC)</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _findings_table(report: Report, index: Index) -> str:
    findings = digest.ordered_findings(report)
    if not findings:
        return ""
    rows = []
    for f in findings[:MAX_FINDING_ROWS]:
        first = _first_evidence(f, index)
        rows.append(
            f"<tr><td>{esc(f.get('id'))}</td><td>{_badge(as_str(f.get('severity')))}</td>"
            f'<td>{esc(f.get("confidence"))}</td><td class="mono">{esc(f.get("kind"))}</td>'
            f'<td class="mono">{esc(", ".join(as_str(s) for s in f.get("sessions") or []))}'
            f'</td><td class="meta">{esc(utc(first) if first is not None else "")}</td>'
            f"<td>{esc(f.get('summary'))}</td></tr>"
        )
    more = len(findings) - MAX_FINDING_ROWS
    head = _kinds_table(report, index) if more > 0 else ""
    tail = (
        f'<p class="sub">… and {plural(more, "more finding")}: '
        "<code>frames.findings(analysis)</code> lists them all.</p>"
        if more > 0
        else ""
    )
    return (
        f'{head}<div class="scroll"><table><thead><tr><th>id</th><th>severity</th>'
        "<th>confidence</th><th>kind</th><th>sessions</th><th>first evidence (UTC)</th>"
        f"<th>summary</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>{tail}"
    )


def _captures(report: Report) -> str:
    parts = []
    for capture in report.get("captures") or []:
        path = clip(as_str(capture.get("path")), 120)
        parts.append(
            f'{esc(capture.get("role"))} <span class="mono">{esc(path)}</span> '
            f"({esc(plural(as_int(capture.get('packets')) or 0, 'packet'))}, "
            f"{esc(plural(as_int(capture.get('smtp_sessions')) or 0, 'SMTP session'))})"
        )
    offset = as_float(report.get("clock_offset_s"))
    clock = f"; server-side clock {offset:+.6f} s ahead" if offset is not None else ""
    return f'<p class="sub">{"; ".join(parts)}{esc(clock)}</p>'


# -- one connection -----------------------------------------------------------------------------


def _cell_lines(text: str, cls: str, marks: Sequence[str]) -> str:
    lines = text.split("\n")
    shown = [_spans(mark_tokens(line, marks), cls) for line in lines[:MAX_LINES_PER_STEP]]
    if len(lines) > MAX_LINES_PER_STEP:
        shown.append(esc(f"… {len(lines) - MAX_LINES_PER_STEP} more lines"))
    return "\n".join(shown)


def _diff_cells(a: str, b: str, a_cls: str, b_cls: str) -> tuple[str, str]:
    left: list[str] = []
    right: list[str] = []
    for row in line_diff(a, b)[:MAX_LINES_PER_STEP]:
        if row.a:
            left.append(_spans(row.a, a_cls))
        if row.b:
            right.append(_spans(row.b, b_cls))
    return "\n".join(left), "\n".join(right)


def transcript_table(steps: Sequence[Step], two_sided: bool, marks: Sequence[str] = ()) -> str:
    """The aligned steps of one connection as a table: the client-side copy of each command
    and reply beside the server-side copy, changed characters marked."""
    t0 = min((s.time for s in steps), default=None)
    rows = []
    for step in steps[:MAX_STEPS]:
        client, server = step.client_side, step.server_side
        c2s = step.direction == C2S
        client_cls, server_cls = ("sent", "got") if c2s else ("got", "sent")
        client_text, server_text = (
            as_str((client or {}).get("text")),
            as_str((server or {}).get("text")),
        )
        if client is not None and server is not None and step.differs:
            left, right = _diff_cells(client_text, server_text, client_cls, server_cls)
        else:
            left = _cell_lines(client_text, "hit", marks)
            right = _cell_lines(server_text, "hit", marks)
        note = f"<br><em>{esc(step.note)}</em>" if step.note else ""
        cls = " ".join(
            c
            for c in (
                "chg" if step.differs else "same",
                "forged" if step.forged else "",
                "lost" if step.kind == "lost" else "",
            )
            if c
        )
        cframe, sframe = as_int((client or {}).get("frame")), as_int((server or {}).get("frame"))
        cells = [
            f'<td class="meta">{esc(f"+{step.time - t0:.3f}" if t0 is not None else "")}</td>',
            f'<td class="meta">{esc(cframe if cframe is not None else "")}</td>',
            f'<td class="meta">{"→" if c2s else "←"}</td>',
            f'<td class="line {client_cls}">{left}{note}</td>'
            if client is not None
            else '<td class="none">—</td>',
        ]
        if two_sided:
            cells.append(
                f'<td class="line {server_cls}">{right}{note}</td>'
                if server is not None
                else '<td class="none">—</td>'
            )
            cells.append(f'<td class="meta">{esc(sframe if sframe is not None else "")}</td>')
        rows.append(f'<tr class="{cls}">{"".join(cells)}</tr>')
    more = (
        f'<tr><td colspan="6" class="none">… {plural(len(steps) - MAX_STEPS, "more step")}'
        "</td></tr>"
        if len(steps) > MAX_STEPS
        else ""
    )
    head = (
        "<th>s</th><th>frame</th><th></th><th>client-side capture</th>"
        "<th>server-side capture</th><th>frame</th>"
        if two_sided
        else "<th>s</th><th>frame</th><th></th><th>capture</th>"
    )
    return (
        f'<div class="scroll"><table class="transcript"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}{more}</tbody></table></div>"
    )


def connection_html(report: Report, session_id: str, index: Index | None = None) -> str:
    """One connection: heading, ladder diagram and side-by-side transcripts."""
    index = index or Index(report)
    near, far = index.connection(session_id)
    session, peer = index.session(near), (index.session(far) if far else None)
    steps = digest.align(report, near, far, index)
    ids, marks, frames = digest.findings_touching(report, {near} if far is None else {near, far})
    title = svg.connection_title(near, far, session)
    two_sided = far is not None
    diagram = svg.connection_ladder(
        steps,
        two_sided=two_sided,
        session=session,
        peer=peer,
        title=title,
        marks=marks,
        frames=frames,
        inside="{} (server side)",
        empty="<p>No commands or replies were captured on this connection.</p>",
    )
    start = as_float((session or {}).get("start"))
    return (
        f"<h4>{esc(title)}</h4>"
        f'<p class="sub">{esc(utc(start))} UTC · findings {esc(", ".join(ids) or "none")}'
        + (
            " · red arrows: the two captures differ; dashed: made by the firewall; ×: never crossed"
            if two_sided
            else ""
        )
        + "</p>"
        f'<div class="scroll">{diagram}</div>'
        f"{transcript_table(steps, two_sided, marks)}"
    )


def _wrap(body: str) -> str:
    return f'{STYLE}<div class="smtpfw">{body}</div>'


def _check(analysis: Analysis, session_id: str) -> None:
    if analysis.session(session_id) is None:
        known = ", ".join(s.id for s in analysis.sessions[:10])
        more = " …" if len(analysis.sessions) > 10 else ""
        raise UsageError(
            f"no session {session_id!r} in this analysis (sessions: {known or 'none'}{more})"
        )


def analysis_html(analysis: Analysis, session: str | None = None) -> str:
    """The verdict, the findings table and one connection (`session`, by default the first
    affected one) as an HTML fragment for a notebook."""
    if session is not None:
        _check(analysis, session)
    chosen = [session] if session is not None else []
    peer = analysis.peer_of(session) if session is not None else None
    report = _report(analysis, chosen + ([peer] if peer else []))
    index = Index(report)
    sentence, severity = verdict_sentence(report, index)
    if session is None:
        affected = digest.affected_connections(report, index)
        session = affected[0][0] if affected else None
    body = [f'<p class="notice">{esc(notice)}</p>' for notice in digest.notices(report)]
    body += [
        f'<p class="verdict {esc(severity)}">{esc(sentence)}</p>',
        _captures(report),
        _findings_table(report, index),
    ]
    if session is not None:
        body.append(connection_html(report, session, index))
    hint = session or (analysis.sessions[0].id if analysis.sessions else None)
    if hint is not None:
        body.append(
            f'<p class="sub">Draw any session with <code>show_session(analysis, '
            f"{esc(repr(hint))})</code>; tables: <code>from analyzer import frames"
            "</code>.</p>"
        )
    return _wrap("".join(body))


class SessionView:
    """One connection of an analysis, displayed by a notebook as its ladder and transcripts."""

    __slots__ = ("analysis", "session_id")

    def __init__(self, analysis: Analysis, session_id: str) -> None:
        _check(analysis, session_id)
        self.analysis = analysis
        self.session_id = session_id

    def _repr_html_(self) -> str:
        peer = self.analysis.peer_of(self.session_id)
        report = _report(self.analysis, [self.session_id] + ([peer] if peer else []))
        return _wrap(connection_html(report, self.session_id))

    def __repr__(self) -> str:
        session = self.analysis.session(self.session_id)
        where = f" {session.client} → {session.server}" if session is not None else ""
        return f"<session {visible(self.session_id)}{visible(where)}>"


def show_session(analysis: Analysis, session_id: str) -> SessionView:
    """An object a notebook shows as one connection: ladder diagram and side-by-side
    transcripts (both captures' copies when the session is paired)."""
    return SessionView(analysis, session_id)


__all__ = [
    "SessionView",
    "analysis_html",
    "connection_html",
    "show_session",
    "transcript_table",
    "verdict_sentence",
]
