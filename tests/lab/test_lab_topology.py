"""The lab's network holds what the captures' ground truth relies on: offloads off on every end.

A checksum offload left on shows as bad checksums in the captures, a segmentation offload as
segments larger than the wire carries; both are checked here on the interfaces themselves, and
the check is shown to notice an end whose offloads are on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .runner import Lab
from .shell import run
from .topology import Topology, offloads_on, turn_offloads_off

pytestmark = pytest.mark.lab


def test_every_veth_end_has_its_offloads_off_after_setup(lab: Lab) -> None:
    ends = lab.topology.veth_ends
    assert len(ends) == 4
    assert {ns for ns, _ in ends} == set(lab.topology.namespaces)
    assert {(ns, dev): offloads_on(ns, dev) for ns, dev in ends} == {end: [] for end in ends}


@pytest.fixture
def bare_veth() -> Iterator[tuple[str, str]]:
    """A veth pair in a throw-away namespace of this test, offloads as the kernel left them."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    ns = Topology(pid=os.getpid()).prefix + "probe"
    run(["ip", "netns", "add", ns])
    try:
        run(["ip", "-n", ns, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"])
        yield ns, "probe0"
    finally:
        run(["ip", "netns", "delete", ns], check=False)


def test_the_offload_check_names_what_a_fresh_veth_has_on(bare_veth: tuple[str, str]) -> None:
    ns, dev = bare_veth
    assert {"tx-checksumming", "scatter-gather", "tcp-segmentation-offload"} <= set(
        offloads_on(ns, dev)
    )


def test_the_offload_check_is_silent_once_they_are_off(bare_veth: tuple[str, str]) -> None:
    ns, dev = bare_veth
    turn_offloads_off(ns, dev)
    assert offloads_on(ns, dev) == []
