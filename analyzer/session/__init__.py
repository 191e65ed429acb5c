"""SMTP sessions: the model (`SmtpSession`, `MailTransaction`), how they are built from the
observer's events, and their JSON shape. No packet or byte parsing happens here."""

from .model import EndReason, HeaderField, Line, MailTransaction, SmtpSession, StartTls

__all__ = ["EndReason", "HeaderField", "Line", "MailTransaction", "SmtpSession", "StartTls"]
