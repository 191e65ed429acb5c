"""Run smtpfw on every bundled capture and write the results under reports/.

Each capture directory under captures/ (and captures/lab/) gets reports/<name>/sessions-*.json,
and the session tables are printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from analyzer.cli import main

ROOT = Path(__file__).resolve().parent.parent


def capture_dirs() -> list[Path]:
    found = []
    for base in (ROOT / "captures", ROOT / "captures" / "lab"):
        if base.is_dir():
            found += sorted(d for d in base.iterdir() if d.is_dir() and any(d.glob("*.pcap*")))
    return found


def run() -> int:
    worst = 0
    dirs = capture_dirs()
    if not dirs:
        print("no bundled captures found under captures/", file=sys.stderr)
        return 2
    for directory in dirs:
        name = directory.relative_to(ROOT / "captures").as_posix().replace("/", "-")
        out_dir = ROOT / "reports" / name
        out_dir.mkdir(parents=True, exist_ok=True)
        for capture in sorted(directory.glob("*.pcap*")):
            print(f"== {directory.relative_to(ROOT)}/{capture.name}")
            code = main(["sessions", str(capture)])
            json_path = out_dir / f"sessions-{capture.name.split('.')[0]}.json"
            with json_path.open("w") as out:
                saved, sys.stdout = sys.stdout, out
                try:
                    main(["sessions", "--json", str(capture)])
                finally:
                    sys.stdout = saved
            worst = max(worst, code)
    print(f"reports written under {ROOT / 'reports'}")
    return worst


if __name__ == "__main__":
    raise SystemExit(run())
