"""Where the peer projects' captures and expected outputs live (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.realworld_path import REALWORLD


@pytest.fixture(scope="session")
def realworld() -> Path:
    if not REALWORLD.is_dir():
        pytest.skip(f"peer-project captures not found at {REALWORLD}")
    return REALWORLD
