"""`Index`: the report.json lookups every part of the digest uses (sessions, pairs, captures,
roles, clock offset), and what a session's transactions say (a message, delivered, STARTTLS).

Part of `report.digest` (see its docstring).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..model import Report, TranscriptLine
from .common import as_float, as_int, as_str

if TYPE_CHECKING:
    from .summary import Verdict


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
