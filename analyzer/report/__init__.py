"""Reports: the report.json model built from an analysis, and its renderers.

No finding is computed here; `build` copies what detection found, the renderers format it.
"""

from .build import build_report
from .json import dumps, load, write
from .model import SCHEMA, Report

__all__ = ["SCHEMA", "Report", "build_report", "dumps", "load", "write"]
