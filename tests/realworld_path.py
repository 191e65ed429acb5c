"""Where the peer projects' captures and expected outputs are (read-only, never edited).

`SMTPFW_REALWORLD` names the folder; otherwise `shared/realworld` beside the project, then the
workplace's copy. Tests that need it skip, saying so, when none exists.
"""

from __future__ import annotations

import os
from pathlib import Path

_CANDIDATES = [
    os.environ.get("SMTPFW_REALWORLD", ""),
    str(Path(__file__).resolve().parents[2] / "shared" / "realworld"),
    "/work/shared/realworld",
]

REALWORLD = next((Path(c) for c in _CANDIDATES if c and Path(c).is_dir()), Path(_CANDIDATES[1]))
