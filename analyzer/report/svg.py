"""Draw one SMTP connection as a ladder (sequence) diagram in inline SVG.

What it does: turns the aligned steps of a connection (`digest.align`) into an SVG with the
client, the firewall and the server as lifelines; each command and reply is an arrow across
the firewall, labelled with what each capture saw. Where the two captures differ, the arrow
is red and each half carries its own version with the changed characters marked; a reset the
firewall forged starts at the firewall's lifeline; bytes that never crossed stop at it with a
cross. With one capture there is no firewall lifeline: client and server only, and the lines
the findings point at are highlighted.
What it does not do: read the report model beyond the steps it is given, fetch fonts or images,
or let captured text out unescaped: every string is made visible (`text.visible`), clipped and
XML-escaped before it lands in the SVG.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analyzer.text import clip, visible

from .diff import RowKind, Span, Spans, clip_spans, fold, line_diff, map_spans, mark_tokens
from .digest import C2S, Step, as_float, as_int, as_str
from .escape import esc, marked

WIDTH = 1000
X_CLIENT = 170
X_FIREWALL = 500
X_SERVER = 830
HEADER_HEIGHT = 92
LINE_HEIGHT = 14
ROW_PAD = 10
CHAR_WIDTH = 6.6
"""Width of one character of the 11px monospace labels, in SVG units (0.6 em)."""
HALF_CHARS = int((X_FIREWALL - X_CLIENT - 16) / CHAR_WIDTH)
LABEL_LINES = 12
"""Lines of a multi-line reply drawn on one arrow; identical runs are folded first."""
MAX_ROWS = 160
"""Steps drawn per diagram; the rest are counted in a last row."""


def _spans_svg(spans: Spans) -> str:
    return marked(spans, "tspan", "chg")


@dataclass(frozen=True, slots=True)
class Label:
    """The lines drawn above one arrow: one block, or one per half when the captures differ."""

    left: tuple[Spans, ...]
    right: tuple[Spans, ...]
    split: bool

    @property
    def height(self) -> int:
        return max(len(self.left), len(self.right), 1)


def _prepared(spans: Spans, limit: int) -> Spans:
    return clip_spans(map_spans(spans, visible), limit)


def _single(text: str, limit: int, marks: Sequence[str] = ()) -> tuple[Spans, ...]:
    lines: list[Spans] = []
    all_lines = text.split("\n")
    for line in all_lines[:LABEL_LINES]:
        lines.append(_prepared(mark_tokens(line, marks), limit))
    if len(all_lines) > LABEL_LINES:
        lines.append((Span(f"… {len(all_lines) - LABEL_LINES} more lines", False),))
    return tuple(lines)


def _label(step: Step, marks: Sequence[str], limit: int) -> Label:
    client, server = step.client_side, step.server_side
    if client is not None and server is not None and step.differs:
        left: list[Spans] = []
        right: list[Spans] = []
        rows = line_diff(as_str(client.get("text")), as_str(server.get("text")))
        for item in fold(rows, 1)[: LABEL_LINES + 1]:
            if isinstance(item, int):
                filler = (Span(f"… {item} identical lines", False),)
                left.append(filler)
                right.append(filler)
                continue
            left.append(_prepared(item.a, HALF_CHARS) if item.kind is not RowKind.ONLY_B else ())
            right.append(_prepared(item.b, HALF_CHARS) if item.kind is not RowKind.ONLY_A else ())
        return Label(tuple(left), tuple(right), True)
    copy = client if client is not None else server
    text = as_str((copy or {}).get("text"))
    if step.kind == "end":
        kind = (
            "RST"
            if (copy or {}).get("kind", "rst" if text.startswith("[RST") else "") == "rst"
            else "FIN"
        )
        ttl = re.search(r"ttl=(\d+)", text)
        label = kind + (f" (TTL {ttl.group(1)})" if ttl and kind == "RST" else "")
        if step.forged:
            lines = [(Span(f"{kind} forged by the firewall", True),)]
            for part in textwrap.wrap(visible(step.note), max(limit, 20))[:3]:
                lines.append((Span(part, False),))
            return Label(tuple(lines), (), False)
        return Label(((Span(label, False),),), (), False)
    return Label(_single(text, limit, marks), (), False)


@dataclass(frozen=True, slots=True)
class Geometry:
    """Where the lifelines are: with a firewall between (two captures) or without."""

    two_sided: bool

    @property
    def client(self) -> int:
        return X_CLIENT

    @property
    def server(self) -> int:
        return X_SERVER

    @property
    def firewall(self) -> int:
        return X_FIREWALL


def _arrow(x1: float, x2: float, y: float, cls: str) -> str:
    """A horizontal arrow from x1 to x2, head at x2."""
    head = 8 if x2 > x1 else -8
    return (
        f'<line class="{cls}" x1="{x1:.0f}" y1="{y:.0f}" x2="{x2 - head:.0f}" y2="{y:.0f}"/>'
        f'<polygon class="{cls} head" points="{x2:.0f},{y:.0f} {x2 - head:.0f},{y - 4:.0f} '
        f'{x2 - head:.0f},{y + 4:.0f}"/>'
    )


def _text_block(lines: Sequence[Spans], x: float, y: float, cls: str) -> str:
    """Lines centred on `x` as one block: a single line centred, several aligned on the left."""
    out = []
    anchor = "middle"
    if len(lines) > 1:
        longest = max(sum(len(span.text) for span in spans) for spans in lines)
        x -= longest * CHAR_WIDTH / 2
        anchor = "start"
    for i, spans in enumerate(lines):
        if not spans:
            continue
        out.append(
            f'<text class="{cls}" x="{x:.0f}" y="{y + i * LINE_HEIGHT:.0f}" '
            f'text-anchor="{anchor}">{_spans_svg(spans)}</text>'
        )
    return "".join(out)


def _segment(step: Step, geo: Geometry) -> tuple[float, float, str]:
    """Start, end and CSS class of a step's arrow."""
    c2s = step.direction == C2S
    start, end = (geo.client, geo.server) if c2s else (geo.server, geo.client)
    if not geo.two_sided:
        return start, end, "msg"
    if step.forged:
        # a forged segment appears only where it was captured; it starts at the firewall
        return geo.firewall, (geo.server if c2s else geo.client), "forged"
    if step.kind == "lost":
        return start, geo.firewall, "lost"
    if step.client_side is None or step.server_side is None:
        seen_by_sender = (step.client_side if c2s else step.server_side) is not None
        if seen_by_sender:
            return start, geo.firewall, "lost"
        return geo.firewall, end, "inserted"
    return start, end, "differs" if step.differs else "msg"


def _times(step: Step, t0: float | None) -> tuple[str, str, str]:
    """Relative time, client-side frame and server-side frame of a step, as gutter text."""
    rel = f"+{step.time - t0:.3f} s" if t0 is not None and step.time >= t0 else ""
    cf = as_int((step.client_side or {}).get("frame"))
    sf = as_int((step.server_side or {}).get("frame"))
    return rel, (f"frame {cf}" if cf is not None else ""), (f"frame {sf}" if sf is not None else "")


@dataclass(frozen=True, slots=True)
class Party:
    """A lifeline's heading: its role and address as each capture shows it."""

    name: str
    address: str
    detail: str = ""


def party(
    session: Mapping[str, Any] | None, peer: Mapping[str, Any] | None, role: str, inside: str
) -> Party:
    """The `role` ("client" or "server") lifeline of a connection: its address in `session`, and
    its address in the peer session when that differs, written with the `inside` pattern."""
    address = as_str((session or {}).get(role))
    other = as_str((peer or {}).get(role))
    detail = inside.format(other) if peer is not None and other and other != address else ""
    return Party(role, address, detail)


def connection_title(near: str, far: str | None, session: Mapping[str, Any] | None) -> str:
    """`client#3 ⇄ server#3: client → server` (raw: escape it where it is shown)."""
    return (
        f"{near}" + (f" ⇄ {far}" if far else "") + f": {as_str((session or {}).get('client'))} → "
        f"{as_str((session or {}).get('server'))}"
    )


def connection_ladder(
    steps: Sequence[Step],
    *,
    two_sided: bool,
    session: Mapping[str, Any] | None,
    peer: Mapping[str, Any] | None,
    title: str,
    marks: Sequence[str],
    frames: Sequence[int],
    inside: str,
    empty: str,
) -> str:
    """The ladder of one connection (`ladder`), or the `empty` paragraph when it has no steps."""
    if not steps:
        return empty
    return ladder(
        steps,
        two_sided=two_sided,
        client=party(session, peer, "client", inside),
        server=party(session, peer, "server", inside),
        title=title,
        marks=marks,
        highlight_frames=frames,
    )


def ladder(
    steps: Sequence[Step],
    *,
    two_sided: bool,
    client: Party,
    server: Party,
    title: str,
    marks: Sequence[str] = (),
    highlight_frames: Sequence[int] = (),
) -> str:
    """The SVG diagram of one connection. `marks`/`highlight_frames` (one capture only) pick the
    tokens and lines the findings point at."""
    geo = Geometry(two_sided)
    rows: list[str] = []
    y = HEADER_HEIGHT
    t0 = min((s.time for s in steps), default=None)
    shown = steps[:MAX_ROWS]
    for step in shown:
        x1, x2, cls = _segment(step, geo)
        label = _label(step, marks, int((abs(x2 - x1) - 16) / CHAR_WIDTH))
        height = ROW_PAD + label.height * LINE_HEIGHT + ROW_PAD + 4
        frame = as_int((step.client_side or step.server_side or {}).get("frame"))
        flagged = cls in ("differs", "forged", "lost", "inserted") or (
            not two_sided and frame is not None and frame in highlight_frames
        )
        arrow_y = y + ROW_PAD + label.height * LINE_HEIGHT + 2
        parts = [f'<g class="step {cls}{" flagged" if flagged else ""}">']
        tip = _tooltip(step)
        if tip:
            parts.append(f"<title>{tip}</title>")
        if flagged:
            parts.append(
                f'<rect class="band" x="0" y="{y:.0f}" width="{WIDTH}" height="{height:.0f}"/>'
            )
        text_y = y + ROW_PAD + 10
        text_cls = "lbl" + (" hot" if flagged else "")
        if label.split:
            parts.append(_text_block(label.left, (geo.client + geo.firewall) / 2, text_y, text_cls))
            parts.append(
                _text_block(label.right, (geo.firewall + geo.server) / 2, text_y, text_cls)
            )
        else:
            parts.append(_text_block(label.left, (x1 + x2) / 2, text_y, text_cls))
        parts.append(_arrow(x1, x2, arrow_y, "arrow " + cls))
        if cls in ("differs", "forged", "inserted") and two_sided:
            parts.append(f'<circle class="mark" cx="{geo.firewall}" cy="{arrow_y:.0f}" r="5"/>')
        if cls == "lost":
            fx = geo.firewall
            parts.append(
                f'<path class="cross" d="M{fx - 6},{arrow_y - 6:.0f} l12,12 '
                f'M{fx + 6},{arrow_y - 6:.0f} l-12,12"/>'
            )
        rel, cframe, sframe = _times(step, t0)
        parts.append(f'<text class="gut" x="8" y="{arrow_y - 2:.0f}">{esc(rel)}</text>')
        parts.append(f'<text class="gut" x="8" y="{arrow_y + 11:.0f}">{esc(cframe)}</text>')
        if two_sided:
            parts.append(
                f'<text class="gut" x="{WIDTH - 8}" y="{arrow_y + 4:.0f}" '
                f'text-anchor="end">{esc(sframe)}</text>'
            )
        parts.append("</g>")
        rows.append("".join(parts))
        y += height
    if len(steps) > MAX_ROWS:
        rows.append(
            f'<text class="gut" x="{WIDTH / 2:.0f}" y="{y + 16:.0f}" text-anchor="middle">'
            f"… {len(steps) - MAX_ROWS} more steps: see the transcripts</text>"
        )
        y += 24
    bottom = y + 12
    lifelines = [
        f'<line class="life" x1="{geo.client}" y1="{HEADER_HEIGHT - 12}" x2="{geo.client}" '
        f'y2="{bottom:.0f}"/>',
        f'<line class="life" x1="{geo.server}" y1="{HEADER_HEIGHT - 12}" x2="{geo.server}" '
        f'y2="{bottom:.0f}"/>',
    ]
    heads = [_head(geo.client, client), _head(geo.server, server)]
    if two_sided:
        lifelines.append(
            f'<rect class="wall" x="{geo.firewall - 4}" y="{HEADER_HEIGHT - 12}" '
            f'width="8" height="{bottom - HEADER_HEIGHT + 12:.0f}"/>'
        )
        heads.append(_head(geo.firewall, Party("firewall", "between the captures")))
        heads.append(
            f'<text class="tap" x="{(geo.client + geo.firewall) / 2:.0f}" '
            f'y="{HEADER_HEIGHT - 16}" text-anchor="middle">client-side capture</text>'
        )
        heads.append(
            f'<text class="tap" x="{(geo.firewall + geo.server) / 2:.0f}" '
            f'y="{HEADER_HEIGHT - 16}" text-anchor="middle">server-side capture</text>'
        )
    height = bottom + 8
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ladder" viewBox="0 0 {WIDTH} '
        f'{height:.0f}" width="{WIDTH}" height="{height:.0f}" role="img" '
        f'aria-label="{esc(title)}"><title>{esc(title)}</title>'
        + "".join(lifelines)
        + "".join(heads)
        + "".join(rows)
        + "</svg>"
    )


def _head(x: int, party: Party) -> str:
    width = 236
    lines = [p for p in (party.address, party.detail) if p]
    return (
        f'<rect class="head" x="{x - width / 2:.0f}" y="6" width="{width}" '
        f'height="{28 + 13 * len(lines)}" rx="5"/>'
        f'<text class="who" x="{x}" y="22" text-anchor="middle">{esc(party.name)}</text>'
        + "".join(
            f'<text class="addr" x="{x}" y="{36 + 13 * i}" text-anchor="middle">'
            f"{esc(clip(line, 34))}</text>"
            for i, line in enumerate(lines)
        )
    )


def _tooltip(step: Step) -> str:
    parts = []
    for name, copy in (("client-side", step.client_side), ("server-side", step.server_side)):
        if copy is None:
            continue
        frame = as_int(copy.get("frame"))
        ts = as_float(copy.get("ts"))
        where = f"{name} capture" + (f", frame {frame}" if frame is not None else "")
        where += f", t={ts:.6f}" if ts is not None else ""
        parts.append(f"{where}: {clip(visible(as_str(copy.get('text'))), 300)}")
    if step.note:
        parts.append(visible(step.note))
    return html.escape("\n".join(parts), quote=True)
