"""Sessions as plain JSON-ready dictionaries, in the shape of `report.json` (`smtpfw.report/1`).

The keys of DOMAIN.md's contract keep their names and meanings; extra keys are additions.
No AUTH secret can appear: the observer never hands them on.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from analyzer.smtp import limits as smtp_caps

from . import builder as session_caps
from .model import Dropped, MailTransaction, SmtpSession

DROPPED: tuple[tuple[str, str, str, ModuleType], ...] = (
    ("dialogue_lines", "lines", "MAX_LINES_KEPT", session_caps),
    ("transactions", "transactions", "MAX_TRANSACTIONS_KEPT", session_caps),
    ("header_fields", "header_fields", "MAX_HEADERS_KEPT", session_caps),
    ("recipients", "recipients", "MAX_RECIPIENTS_KEPT", session_caps),
    ("accepted_recipients", "accepted_recipients", "MAX_RECIPIENTS_KEPT", session_caps),
    ("anomalies", "anomalies", "MAX_ANOMALIES_KEPT", session_caps),
    ("line_bytes", "line_bytes", "DEFAULT_MAX_LINE", smtp_caps),
    ("reply_lines", "reply_lines", "DEFAULT_MAX_LINE", smtp_caps),
    ("pending_commands", "pending_commands", "MAX_PENDING_COMMANDS", smtp_caps),
    ("header_bytes", "header_bytes", "DEFAULT_MAX_LINE", smtp_caps),
    ("header_sections", "header_sections", "DEFAULT_MAX_HEADER_BLOCK", smtp_caps),
)
"""report.json `sessions[].dropped`: key, `Dropped` field, the cap it hit and where the cap is
declared (read when the entry is made, so it shows the value in force)."""


def transaction_dict(txn: MailTransaction) -> dict[str, Any]:
    return {
        "mail_from": txn.mail_from,
        "rcpt_to": list(txn.rcpt_to),
        "message_id": txn.message_id,
        "size": txn.size,
        "dkim_signed": txn.dkim_signed,
        "reply_code": txn.reply_code,
        "complete": txn.complete,
        "subject": txn.subject,
        "start": txn.start_ts,
        "frame": txn.frame.frame_no if txn.frame else None,
        "data_offset": txn.data_offset,
        "accepted_rcpt_to": list(txn.accepted_rcpt_to),
    }


def dropped_dict(dropped: Dropped) -> dict[str, Any]:
    """What the caps left out of a session, as report.json's `dropped` (empty when nothing):
    each entry `{"count", "cap", "limit"}`, `anomaly_reports` also `by_kind`."""
    entry: dict[str, Any] = {}
    for key, name, cap, module in DROPPED:
        count = getattr(dropped, name)
        if count:
            entry[key] = {"count": count, "cap": cap, "limit": getattr(module, cap)}
    if dropped.anomaly_reports:
        entry["anomaly_reports"] = {
            "count": sum(n for _, n in dropped.anomaly_reports),
            "cap": "ANOMALY_REPORT_LIMIT",
            "limit": smtp_caps.ANOMALY_REPORT_LIMIT,
            "by_kind": dict(dropped.anomaly_reports),
        }
    return entry


def session_dict(session: SmtpSession, peer: str | None = None) -> dict[str, Any]:
    """The session's report.json entry; `dropped` only when a cap left something out."""
    starttls = session.starttls
    entry = {
        "id": session.id,
        "capture": session.capture_id,
        "client": session.client,
        "server": session.server,
        "start": session.start_ts,
        "end": session.end_ts,
        "banner": session.banner,
        "helo": session.helo,
        "ehlo_keywords": list(session.ehlo_keywords),
        "starttls": {
            "advertised": starttls.advertised,
            "attempted": starttls.attempted,
            "reply_code": starttls.reply_code,
            "established": starttls.established,
        },
        "transactions": [transaction_dict(t) for t in session.transactions],
        "end_reason": str(session.end_reason),
        "peer": peer,
        "tcp_stream": session.flow.index,
        "handshake_seen": session.flow.handshake_seen,
        "helo_verb": session.helo_verb,
        "auth_mechanism": session.auth_mechanism,
        "tls_bytes": list(session.tls_bytes),
        "gaps": session.gaps,
        "anomalies": list(session.anomaly_kinds),
    }
    dropped = dropped_dict(session.dropped) if session.dropped else None
    if dropped:
        entry["dropped"] = dropped
    return entry
