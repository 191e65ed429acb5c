"""What the lab needs from the machine, checked before anything is built.

What it does: lists the missing pieces by name — root, each program, each Python module, nginx's
mail module, the postfix user, and what the kernel must do (network namespaces, veth pairs, the
NFQUEUE target delivering packets to a user-space queue, the string and connmark matches and the
REJECT target) — the last by a short probe in a throw-away namespace.
What it does not do: install anything (scripts/lab-deps.sh does).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil

from . import addresses as A
from .shell import LabError, python_module, run
from .thirdparty import NGINX_MAIL_MODULE, string_reset_rules

PROGRAMS = {
    "ip": "iproute2",
    "ss": "iproute2",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "ethtool": "ethtool",
    "sysctl": "procps",
    "tcpdump": "tcpdump",
    "tshark": "tshark",
    "editcap": "wireshark-common",
    "postfix": "postfix",
    "postconf": "postfix",
    "swaks": "swaks",
    "openssl": "openssl",
    "nginx": "nginx",
    "haproxy": "haproxy",
}
MODULES = {"netfilterqueue": "NetfilterQueue", "dkim": "dkimpy", "aiosmtpd": "aiosmtpd"}
PROBE_QUEUE = 9
PROBE_OK = "nfqueue ok"


def missing_programs() -> list[str]:
    return [
        f"program '{name}' (Debian package {pkg})"
        for name, pkg in PROGRAMS.items()
        if shutil.which(name) is None
    ]


def missing_files() -> list[str]:
    if NGINX_MAIL_MODULE.exists():
        return []
    return [f"nginx mail module {NGINX_MAIL_MODULE} (Debian package libnginx-mod-mail)"]


def missing_modules() -> list[str]:
    return [
        f"Python module '{mod}' (PyPI {dist})"
        for mod, dist in MODULES.items()
        if importlib.util.find_spec(mod) is None
    ]


def kernel_problems() -> list[str]:
    """Probe namespaces, veth and NFQUEUE in a namespace of our own; [] when all work."""
    ns = A.NETNS_PREFIX_FORMAT.format(pid=os.getpid()) + "probe"
    problems: list[str] = []
    try:
        run(["ip", "netns", "add", ns])
    except LabError as exc:
        return [f"kernel: cannot create a network namespace ({exc})"]
    try:
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        try:
            run(["ip", "link", "add", "p0", "netns", ns, "type", "veth",
                 "peer", "name", "p1", "netns", ns])  # fmt: skip
        except LabError as exc:
            problems.append(f"kernel: no veth pairs ({exc})")
        try:
            run(["iptables", "-w", "-A", "OUTPUT", "-o", "lo", "-p", "udp", "--dport", "9",
                 "-j", "NFQUEUE", "--queue-num", str(PROBE_QUEUE)], netns=ns)  # fmt: skip
            out = run(python_module("probe", str(PROBE_QUEUE)), netns=ns, timeout=20).stdout
            if PROBE_OK not in out.decode():
                problems.append("kernel: NFQUEUE delivered no packet to user space")
        except LabError as exc:
            problems.append(f"kernel: NFQUEUE target or queue unusable ({exc})")
        for rule in string_reset_rules():
            try:
                run(["iptables", "-w", *rule], netns=ns)
            except LabError as exc:
                problems.append(f"kernel: iptables string/connmark/REJECT unusable ({exc})")
                break
    finally:
        run(["ip", "netns", "delete", ns], check=False)
    return problems


def missing_pieces() -> list[str]:
    """Everything the lab lacks, named; [] when it can run."""
    if os.geteuid() != 0:
        return ["root (network namespaces, iptables and tcpdump need it)"]
    missing = missing_programs() + missing_files() + missing_modules()
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        missing.append("the 'postfix' system user (Debian package postfix)")
    if not missing:
        missing += kernel_problems()
    return missing
