"""The notebook display, under the name notebooks import it by: `show_session`,
`analysis_html` and `verdict_sentence` (rendered by `analyzer.report.notebook`)."""

from __future__ import annotations

from analyzer.report.notebook import (
    MAX_FINDING_ROWS,
    SessionView,
    analysis_html,
    connection_html,
    show_session,
    transcript_table,
    verdict_sentence,
)

__all__ = [
    "MAX_FINDING_ROWS",
    "SessionView",
    "analysis_html",
    "connection_html",
    "show_session",
    "transcript_table",
    "verdict_sentence",
]
