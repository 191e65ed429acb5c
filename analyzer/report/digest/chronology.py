"""The timeline of the affected connections: starts, findings, resets and ends, in time order.

Part of `report.digest` (see its docstring).
"""

from __future__ import annotations

from ..model import Report
from .common import MAX_TIMELINE_EVENTS, Event, as_str
from .lookups import Index, affected_connections
from .transcripts import connection_resets


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
        events.extend(connection_resets(index, near, far))
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
