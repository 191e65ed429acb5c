"""The two captures' transcripts of one connection aligned step by step (`align`, `Step`), resets
and ends included.

Part of `report.digest` (see its docstring).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..model import Report, TranscriptLine
from .common import C2S, END_LINE, MAX_STEPS, S2C, Event, as_float, as_int, as_str
from .lookups import Index, is_message, transactions


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


def connection_resets(index: Index, near: str, far: str | None) -> list[Event]:
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
