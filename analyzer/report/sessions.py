"""The session listing of `smtpfw sessions`: a table row per session, or a JSON array of
report.json's session entries, each written as sessions come so memory does not grow with the
capture.

`session_row` renders one session as the table's cells (captured text made visible; cells are
clipped to their column when written); `SessionTable` sizes its columns to the first
`TABLE_MEASURED_ROWS` rows, then streams; `JsonArray` writes items already serialised, byte for
byte as `json.dump(items, indent=2)` would. It reads no captures.
"""

from __future__ import annotations

from typing import TextIO

from analyzer.session.model import SmtpSession
from analyzer.text import clip, visible

from .digest import utc


def _starttls_cell(session: SmtpSession) -> str:
    tls = session.starttls
    parts = []
    if tls.advertised:
        parts.append("offered")
    if tls.attempted:
        parts.append(f"tried:{tls.reply_code if tls.reply_code is not None else '?'}")
    if tls.established:
        parts.append("up")
    return ",".join(parts) or "-"


_COLUMNS = (
    ("session", 12),
    ("client", 21),
    ("server", 21),
    ("start (UTC)", 23),
    ("dur", 7),
    ("banner", 28),
    ("helo", 18),
    ("ehlo keywords", 34),
    ("starttls", 18),
    ("txns", 4),
    ("end", 4),
    ("anomalies", 30),
)


def session_row(session: SmtpSession) -> tuple[str, ...]:
    messages = sum(1 for t in session.transactions if t.complete)
    return (
        session.id,
        session.client,
        session.server,
        utc(session.start_ts),
        f"{session.duration:.2f}",
        visible((session.banner or "-").split("\n", 1)[0]),
        visible(session.helo or "-"),
        visible(",".join(session.ehlo_keywords) or "-"),
        _starttls_cell(session),
        f"{len(session.transactions)}/{messages}",
        str(session.end_reason),
        visible(",".join(session.anomaly_kinds) or "-"),
    )


TABLE_MEASURED_ROWS = 1000
"""Session rows buffered to size the table's columns; past this many the table is written as
it comes, every column at its full width."""


class JsonArray:
    """Writes a JSON array item by item, byte for byte as `json.dump(items, indent=2)` would."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.count = 0

    def add(self, item_json: str) -> None:
        """One item, already serialised with `indent=2` at the top level."""
        self._out.write(("[\n  " if not self.count else ",\n  ") + item_json.replace("\n", "\n  "))
        self.count += 1

    def close(self) -> None:
        self._out.write("\n]\n" if self.count else "[]\n")


class SessionTable:
    """Writes the session table: columns sized to the rows when there are few of them, else
    streamed at full width."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._rows: list[tuple[str, ...]] | None = []
        self._widths = [limit for _, limit in _COLUMNS]
        self.count = 0

    def add(self, row: tuple[str, ...]) -> None:
        self.count += 1
        if self._rows is None:
            self._write_row(row)
            return
        self._rows.append(row)
        if len(self._rows) > TABLE_MEASURED_ROWS:
            self._flush()  # too many to size: every column at its full width

    def _flush(self, sized: bool = False) -> None:
        """Write the header and the rows held; `sized`: columns as wide as those rows need."""
        rows, self._rows = self._rows or [], None
        if sized:
            self._widths = [
                min(limit, max([len(name)] + [len(row[i]) for row in rows]))
                for i, (name, limit) in enumerate(_COLUMNS)
            ]
        self._write("  ".join(n.ljust(w) for (n, _), w in zip(_COLUMNS, self._widths, strict=True)))
        for row in rows:
            self._write_row(row)

    def _write(self, line: str) -> None:
        self._out.write(line.rstrip() + "\n")

    def _write_row(self, row: tuple[str, ...]) -> None:
        cells = (clip(c, w).ljust(w) for c, w in zip(row, self._widths, strict=True))
        self._write("  ".join(cells))

    def close(self) -> None:
        if self._rows is not None:
            self._flush(sized=True)
        self._out.write(f"{self.count} SMTP session(s)\n")
