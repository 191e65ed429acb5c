"""smtpfw: find what a firewall did to SMTP.

Reads pcap/pcapng captures, reassembles every SMTP session (on any port), and — given captures
from both sides of a middlebox — pairs the sessions and names what changed in transit.

Public API:
    read_sessions(path)  -> list[SmtpSession]   every SMTP session in one capture (or rotation set)
    analyze(path) / analyze(client_side=..., server_side=...) -> Analysis
        sessions, pairs across the firewall, findings with evidence, the clock offset
"""

from analyzer.detect import Confidence, Evidence, Finding, FindingKind, Severity
from analyzer.errors import CaptureError, SmtpfwError
from analyzer.pipeline import analyze, read_sessions
from analyzer.result import Analysis
from analyzer.session.model import EndReason, MailTransaction, SmtpSession, StartTls

__all__ = [
    "Analysis",
    "CaptureError",
    "Confidence",
    "EndReason",
    "Evidence",
    "Finding",
    "FindingKind",
    "MailTransaction",
    "Severity",
    "SmtpSession",
    "SmtpfwError",
    "StartTls",
    "analyze",
    "read_sessions",
]
