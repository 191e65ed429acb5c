"""Where the peer projects' captures and expected outputs live (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

REALWORLD = Path(__file__).resolve().parents[3] / "shared" / "realworld"


@pytest.fixture(scope="session")
def realworld() -> Path:
    if not REALWORLD.is_dir():
        pytest.skip(f"peer-project captures not found at {REALWORLD}")
    return REALWORLD
