"""`make demo`: analyse every bundled capture pair and write the reports under reports/.

Runs `smtpfw analyze` on the folder of synthetic sample pairs (captures/) and on the pairs
recorded from real mail software in the lab (captures/lab/), one report per pair plus an index
page each. Findings are the point of the demo, so exit status 1 ("findings") counts as success.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from analyzer.cli import EXIT_FINDINGS, EXIT_OK, main

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = (
    (ROOT / "captures", ROOT / "reports"),
    (ROOT / "captures" / "lab", ROOT / "reports" / "lab"),
)


def run() -> int:
    os.chdir(ROOT)  # reports name the captures by their path in the project
    ran = False
    for captures, reports in FOLDERS:
        if not captures.is_dir() or not any(captures.glob("*/client-side*")):
            continue
        ran = True
        print(f"### smtpfw analyze {captures.relative_to(ROOT)} --out {reports.relative_to(ROOT)}")
        code = main(
            ["analyze", str(captures.relative_to(ROOT)), "--out", str(reports.relative_to(ROOT))]
        )
        if code not in (EXIT_OK, EXIT_FINDINGS):
            return code
    if not ran:
        print("no capture pairs found under captures/", file=sys.stderr)
        return 2
    print(f"\nOpen {ROOT / 'reports' / 'index.html'} for the overview.")
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
