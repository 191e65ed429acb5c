"""Build and tear down the lab network: client — fw — server namespaces joined by veth pairs.

What it does: creates three namespaces named `smtpfw-<pid>-{client,fw,server}`, the two veth
pairs, addresses and routes, turns forwarding on in fw, turns segmentation and checksum offloads
off on all four veth ends and reads them back with `ethtool -k`, failing the setup if one stays
on (so captures show wire-sized segments with real checksums), and removes all of it again:
processes still running inside the namespaces (ended by their process ids), the namespaces, and
the leftovers of earlier runs whose creating process is gone.
What it does not do: start any service or firewall rule (see `runner.py`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from . import addresses as A
from .shell import LabError, run

OFFLOAD_FEATURES = ("rx", "tx", "tso", "gso", "gro", "sg")
# What `ethtool -k` calls each of OFFLOAD_FEATURES; every one must read "off" once set.
OFFLOAD_NAMES = (
    "rx-checksumming", "tx-checksumming", "tcp-segmentation-offload",
    "generic-segmentation-offload", "generic-receive-offload", "scatter-gather",
)  # fmt: skip
OFFLOAD_ATTEMPTS = 5
OFFLOAD_RETRY_SECONDS = 0.2
KILL_GRACE_SECONDS = 2.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_netns() -> list[str]:
    out = run(["ip", "netns", "list"]).stdout.decode()
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(netns: str) -> list[int]:
    proc = run(["ip", "netns", "pids", netns], check=False)
    return [int(p) for p in proc.stdout.decode().split() if p.isdigit()]


def _end_processes(netns: str) -> None:
    """End every process inside a lab namespace, one process id at a time."""
    pids = netns_pids(netns)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_SECONDS
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.05)
        for pid in pids:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
    for pid in pids:
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def delete_netns(netns: str) -> None:
    _end_processes(netns)
    run(["ip", "netns", "delete", netns], check=False)


def cleanup_stale(own_pid: int | None = None) -> list[str]:
    """Remove namespaces and temp dirs of lab runs whose process is gone (and `own_pid`'s)."""
    removed = []
    for name in list_netns():
        m = A.NETNS_PATTERN.match(name)
        if m and (int(m.group(1)) == own_pid or not _pid_alive(int(m.group(1)))):
            delete_netns(name)
            removed.append(name)
    tmp = Path(tempfile.gettempdir())
    for entry in tmp.iterdir():
        m = A.TEMP_PATTERN.match(entry.name)
        if m and entry.is_dir() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(str(entry))
    return removed


def offloads_on(ns: str, dev: str) -> list[str]:
    """Those of OFFLOAD_NAMES that `ethtool -k` does not report as off for `dev` in `ns`."""
    out = run(["ethtool", "-k", dev], netns=ns).stdout.decode()
    state: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, value = line.strip().partition(":")
        if sep:
            state[name] = value.split()[0] if value.split() else ""
    return [name for name in OFFLOAD_NAMES if state.get(name) != "off"]


def turn_offloads_off(ns: str, dev: str) -> None:
    """Turn the offloads off on one end and read them back; LabError if any stays on.

    A checksum offload left on makes the captures show partial checksums, a segmentation
    offload super-sized segments: the lab's ground truth would be wrong, so this is fatal.
    """
    argv = ["ethtool", "-K", dev]
    for feature in OFFLOAD_FEATURES:
        argv += [feature, "off"]
    still_on: list[str] = []
    for _ in range(OFFLOAD_ATTEMPTS):
        # ethtool exits non-zero when a requested change had no effect: read the state.
        run(argv, netns=ns, check=False)
        still_on = offloads_on(ns, dev)
        if not still_on:
            return
        time.sleep(OFFLOAD_RETRY_SECONDS)
    raise LabError(f"offloads still on for {dev} in {ns}: {', '.join(still_on)}")


class Topology:
    """The three namespaces of one lab run."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.prefix = A.NETNS_PREFIX_FORMAT.format(pid=self.pid)
        self.client = self.prefix + "client"
        self.fw = self.prefix + "fw"
        self.server = self.prefix + "server"

    @property
    def namespaces(self) -> tuple[str, str, str]:
        return (self.client, self.fw, self.server)

    @property
    def veth_ends(self) -> tuple[tuple[str, str], ...]:
        """Every veth end as (namespace, interface): both ends of both pairs."""
        return (
            (self.client, A.CLIENT_IF),
            (self.fw, A.FW_OUTSIDE_IF),
            (self.fw, A.FW_INSIDE_IF),
            (self.server, A.SERVER_IF),
        )

    def setup(self) -> None:
        cleanup_stale(own_pid=self.pid)
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise

    def _build(self) -> None:
        for ns in self.namespaces:
            run(["ip", "netns", "add", ns])
            self.sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(
            ["ip", "link", "add", A.CLIENT_IF, "netns", self.client, "type", "veth",
             "peer", "name", A.FW_OUTSIDE_IF, "netns", self.fw]
        )  # fmt: skip
        run(
            ["ip", "link", "add", A.FW_INSIDE_IF, "netns", self.fw, "type", "veth",
             "peer", "name", A.SERVER_IF, "netns", self.server]
        )  # fmt: skip
        for address in A.CLIENT_ADDRESSES:
            self._addr(self.client, f"{address}/{A.CLIENT_PREFIX_LEN}", A.CLIENT_IF)
        self._addr(self.fw, f"{A.FW_OUTSIDE_ADDRESS}/{A.CLIENT_PREFIX_LEN}", A.FW_OUTSIDE_IF)
        self._addr(self.fw, f"{A.FW_INSIDE_ADDRESS}/{A.SERVER_PREFIX_LEN}", A.FW_INSIDE_IF)
        self._addr(self.fw, f"{A.NAT_ADDRESS}/{A.SERVER_PREFIX_LEN}", A.FW_INSIDE_IF)
        for address in (A.POSTFIX_ADDRESS, A.AIOSMTPD_ADDRESS):
            self._addr(self.server, f"{address}/{A.SERVER_PREFIX_LEN}", A.SERVER_IF)
        for ns, dev in self.veth_ends:
            turn_offloads_off(ns, dev)
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        # Bringing an end up (or its peer) may renegotiate features: check them all afterwards.
        self.no_offloads()
        run(["ip", "-n", self.client, "route", "add", "default", "via", A.FW_OUTSIDE_ADDRESS])
        run(["ip", "-n", self.server, "route", "add", "default", "via", A.FW_INSIDE_ADDRESS])
        for ns in self.namespaces:
            # IPv6 router and neighbour chatter has no place in the captures.
            self.sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1")
            self.sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")
        low, high = A.CLIENT_PORT_RANGE
        self.sysctl(self.client, "net.ipv4.ip_local_port_range", f"{low} {high}")
        self.sysctl(self.fw, "net.ipv4.ip_forward", "1")
        self.sysctl(self.fw, "net.ipv4.conf.all.send_redirects", "0")
        # The rewriter shifts sequence numbers after conntrack has seen a packet; without this
        # conntrack would call the other direction out of window, and NAT would skip it.
        self.sysctl(self.fw, "net.netfilter.nf_conntrack_tcp_be_liberal", "1")

    @staticmethod
    def _addr(ns: str, cidr: str, dev: str) -> None:
        run(["ip", "-n", ns, "addr", "add", cidr, "dev", dev])

    def no_offloads(self) -> None:
        """Offloads off on every veth end, read back; LabError naming any that stays on."""
        for ns, dev in self.veth_ends:
            turn_offloads_off(ns, dev)

    @staticmethod
    def sysctl(ns: str, key: str, value: str) -> None:
        run(["sysctl", "-q", "-w", f"{key}={value}"], netns=ns)

    def exists(self) -> bool:
        present = set(list_netns())
        return all(ns in present for ns in self.namespaces)

    def teardown(self) -> None:
        """Remove this run's namespaces, then leftovers of runs whose process is gone."""
        present = set(list_netns())
        for ns in self.namespaces:
            if ns in present:
                delete_netns(ns)
        cleanup_stale()
