"""tcpdump on the middlebox's interfaces: start it, know it listens, stop it without losing packets.

What it does: runs tcpdump inside the fw namespace (packet-buffered `-U`, `--immediate-mode`,
full snap length unless a scenario cuts it, a 64 MiB buffer, no name resolution, optional
`-i any` with the SLL2 link type and an `ifindex` filter, optional nanosecond time stamps),
waits for its "listening on" line, stops it with SIGINT and reads its packet counters; converts
a finished file to pcapng with editcap.
What it does not do: read the packets (see `pcapread.py`).
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from pathlib import Path

from .shell import LabError, Program, run, start

READY_MARKER = "listening on"
COUNTER = re.compile(r"(\d+) packets? (captured|received by filter|dropped by kernel)")
LINUX_SLL2 = "LINUX_SLL2"
BUFFER_KIB = 65536
"""tcpdump -B. libpcap sizes each ring slot for the snap length when it cannot know the MTU
(`-i any`): with the 2 MiB default and whole packets that is eight slots, and a burst of nine
packets before tcpdump reads is a kernel drop. 64 MiB keeps hundreds of slots on any device."""


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """tcpdump's own counters at exit."""

    captured: int
    received: int
    dropped_by_kernel: int


@dataclass(frozen=True, slots=True)
class CaptureSpec:
    """One capture point."""

    path: Path
    interface: str
    """An interface name, or 'any'."""
    bpf: str
    sll2: bool = False
    nanoseconds: bool = False
    snaplen: int = 0
    """Bytes kept of each packet (tcpdump -s); 0: whole packets."""


class Tcpdump:
    def __init__(self, spec: CaptureSpec, netns: str) -> None:
        self.spec = spec
        self.netns = netns
        self.program: Program | None = None

    def start(self) -> None:
        s = self.spec
        argv = ["tcpdump", "-i", s.interface, "-w", str(s.path), "-U", "-n", "-s", str(s.snaplen),
                "-B", str(BUFFER_KIB), "--immediate-mode", "-Z", "root"]  # fmt: skip
        if s.sll2:
            argv += ["-y", LINUX_SLL2]
        if s.nanoseconds:
            argv += ["--time-stamp-precision=nano"]
        argv.append(s.bpf)
        self.program = start(
            f"tcpdump on {s.interface}", argv, netns=self.netns, ready_marker=READY_MARKER
        )

    def stop(self) -> CaptureStats:
        if self.program is None:
            raise LabError("tcpdump was not started")
        status = self.program.stop(signal.SIGINT)
        counters = {m.group(2): int(m.group(1)) for m in COUNTER.finditer("\n".join(
            self.program.output))}  # fmt: skip
        self.program = None
        if status != 0 or "captured" not in counters:
            raise LabError(f"tcpdump on {self.spec.interface} ended badly (exit {status})")
        return CaptureStats(
            captured=counters["captured"],
            received=counters.get("received by filter", 0),
            dropped_by_kernel=counters.get("dropped by kernel", 0),
        )


def ifindex(netns: str, interface: str) -> int:
    """The interface index of `interface` inside `netns` (for `ifindex` filters on SLL2)."""
    out = run(["ip", "-o", "link", "show", "dev", interface], netns=netns).stdout.decode()
    return int(out.split(":", 1)[0])


def to_pcapng(src: Path, dst: Path) -> Path:
    """Rewrite a pcap file as pcapng (editcap keeps time stamp resolution)."""
    run(["editcap", "-F", "pcapng", str(src), str(dst)])
    return dst
