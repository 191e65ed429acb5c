"""The tshark engine keeps AUTH credentials out of its sessions as the native reader does."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from analyzer.engines.tshark import read_sessions_tshark
from tests.engines.conftest import needs_tshark

from .dialogues import dialogue, leaks, login_initial, plain_initial
from .test_no_secret_leaves import write


@needs_tshark
@pytest.mark.parametrize("verb", [b"AUTH", b"XXXX"], ids=lambda v: v.decode())
def test_tshark_sessions_hold_no_secret(tmp_path: Path, verb: bytes) -> None:
    items = dialogue(plain_initial(verb) + login_initial(verb))
    (session,) = read_sessions_tshark([write(tmp_path / "one.pcap", items)])
    client = [line.text for line in session.lines if line.verb is not None]
    assert f"{verb.decode()} PLAIN" in client
    assert leaks(repr(session)) == [] and leaks(pickle.dumps(session)) == []
