"""Sessions as plain JSON-ready dictionaries, in the shape of `report.json` (`smtpfw.report/1`).

The keys of DOMAIN.md's contract keep their names and meanings; extra keys are additions.
No AUTH secret can appear: the observer never hands them on.
"""

from __future__ import annotations

from typing import Any

from .model import MailTransaction, SmtpSession


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


def session_dict(session: SmtpSession, peer: str | None = None) -> dict[str, Any]:
    starttls = session.starttls
    return {
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
