"""Each run of a lab translates into NAT ports no earlier run of that lab used (no root needed).

The server keeps an earlier run's connections in TIME_WAIT while conntrack, flushed between
runs, has forgotten them: a reused NAT port can turn one connection into two on the server side.
"""

from __future__ import annotations

from . import addresses as A
from .runner import nat_port_slice
from .scenarios import SCENARIOS


def test_every_scenario_of_one_lab_gets_ports_of_its_own_inside_the_nat_range() -> None:
    slices = [nat_port_slice(i) for i in range(len(SCENARIOS))]
    ports = [set(range(low, high + 1)) for low, high in slices]
    assert all(len(p) == A.NAT_PORTS_PER_RUN for p in ports)
    assert len(set().union(*ports)) == sum(len(p) for p in ports)
    low, high = A.NAT_PORT_RANGE
    assert all(low <= first and last <= high for first, last in slices)


def test_the_slices_are_reused_only_after_the_whole_range() -> None:
    count = (A.NAT_PORT_RANGE[1] - A.NAT_PORT_RANGE[0] + 1) // A.NAT_PORTS_PER_RUN
    assert len({nat_port_slice(i) for i in range(count)}) == count
    assert nat_port_slice(count) == nat_port_slice(0)
