"""The lab names exactly what it lacks before it builds anything (no root needed)."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

from . import deps


def test_without_root_the_only_missing_piece_is_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert deps.missing_pieces() == ["root (network namespaces, iptables and tcpdump need it)"]


def test_a_missing_program_is_named_with_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda n: None if n == "swaks" else real(n))
    assert "program 'swaks' (Debian package swaks)" in deps.missing_programs()


def test_a_missing_module_is_named_with_its_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n: None if n == "netfilterqueue" else real(n)
    )
    assert "Python module 'netfilterqueue' (PyPI NetfilterQueue)" in deps.missing_modules()
