"""smtpfw: find what a firewall did to SMTP.

Reads pcap/pcapng captures, reassembles every SMTP session (on any port), and — given captures
from both sides of a middlebox — pairs the sessions and names what changed in transit.

Public API:
    read_sessions(path)  -> list[SmtpSession]   every SMTP session in one capture (or rotation set)
"""

from analyzer.errors import CaptureError, SmtpfwError
from analyzer.pipeline import read_sessions
from analyzer.session.model import EndReason, MailTransaction, SmtpSession, StartTls

__all__ = [
    "CaptureError",
    "EndReason",
    "MailTransaction",
    "SmtpSession",
    "SmtpfwError",
    "StartTls",
    "read_sessions",
]
