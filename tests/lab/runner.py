"""Run lab scenarios: one session-wide lab (topology, servers, keys), one capture pair per run.

What it does: `Lab.start()` builds the namespaces, makes the TLS certificates and the DKIM key,
starts Postfix and aiosmtpd in the server namespace; `Lab.run(scenario)` writes the messages,
sets the fw namespace's iptables rules (SNAT, NFQUEUE, REDIRECT or the string-match filter),
starts the middlebox — the lab's NFQUEUE engine, its proxy, nginx's mail proxy with its
`auth_http` endpoint, or haproxy — and both tcpdumps, runs the clients in the client namespace
(starting or stopping one capture while a held session waits, for the capture accidents), waits
for the connections to finish, reads the NAT translations from conntrack, stops everything in
reverse order and returns a `ScenarioRun` (capture paths, what the clients saw, the middlebox
log, the translations, what the server delivered); `Lab.stop()` removes everything.
What it does not do: judge the results (the tests do).
"""

from __future__ import annotations

import importlib.metadata
import json
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import addresses as A
from . import thirdparty
from .capture import CaptureSpec, CaptureStats, Tcpdump, ifindex, to_pcapng
from .messages import build_message
from .pki import DkimKey, TlsFiles, make_dkim_key, make_tls_certificate
from .postfix import PostfixInstance, read_maildir
from .rewriter import MiddleboxConfig
from .scenarios import (
    REWRITER_BEHAVIOURS,
    Accident,
    Behaviour,
    CaptureFormat,
    CaptureLink,
    ClientKind,
    Outcome,
    Scenario,
    Server,
    Side,
    policy_of,
)
from .shell import LabError, Program, in_netns, lab_env, listening, python_module, run, start
from .topology import Topology

QUEUE_NUM = 25
SETTLE_TIMEOUT_SECONDS = 30.0
"""Longer than a lost FIN's retransmissions take to give up or be answered with a reset."""
DELIVERY_TIMEOUT_SECONDS = 10.0
CLIENT_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.05
LINGER_SECONDS = 0.2
BPF_SMTP = f"tcp port {A.SMTP_PORT}"
ACTIVE_STATES = ("established", "syn-sent", "syn-recv", "fin-wait-1", "fin-wait-2",
                 "close-wait", "last-ack", "closing")  # fmt: skip
HOLD_TIMEOUT_SECONDS = 20.0
HOLD_READY = "hold-ready"
HOLD_GO = "hold-go"
# conntrack -L: the original tuple, then the reply tuple (src, dst, sport, dport each).
CONNTRACK_TUPLE = re.compile(r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)")


@dataclass
class ScenarioRun:
    """Everything one scenario run produced."""

    scenario: Scenario
    directory: Path
    client_side: Path
    server_side: Path
    client_results: list[dict[str, Any]]
    middlebox_log: list[dict[str, Any]]
    capture_stats: dict[str, CaptureStats]
    sent: dict[str, bytes]
    """Message-ID → the message the client sent."""
    delivered: dict[str, bytes]
    """Message-ID → the copy the server stored."""
    server_log: str
    seconds: float
    translations: dict[str, str] = field(default_factory=dict)
    """conntrack's NAT table: client's "ip:port" → the translated "ip:port" (server side)."""
    accident_ts: float | None = None
    """When the capture accident happened (epoch seconds), for the scenarios that have one."""
    nat_ports: tuple[int, int] = A.NAT_PORT_RANGE
    """The SNAT port range of this run (its own slice of the lab's)."""


class Lab:
    """The session-wide lab. Use as a context manager or call start()/stop()."""

    def __init__(self, keep_files: bool = False) -> None:
        self.topology = Topology()
        self.keep_files = keep_files
        self.base = Path(
            tempfile.mkdtemp(prefix=A.TEMP_PREFIX_FORMAT.format(pid=self.topology.pid))
        )
        self.base.chmod(0o755)
        self.postfix: PostfixInstance | None = None
        self.aiosmtpd: Program | None = None
        self.dkim: DkimKey | None = None
        self.aiosmtpd_maildir = self.base / "aiosmtpd-mail" / "inbox"
        self.runs: dict[str, ScenarioRun] = {}
        self.started = False
        self.run_count = 0
        self.nat_ports = A.NAT_PORT_RANGE
        """The NAT ports of the current run (see addresses.NAT_PORTS_PER_RUN)."""

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- session -------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self.topology.setup()
            keys = self.base / "keys"
            self.dkim = make_dkim_key(keys, A.DKIM_SELECTOR, A.CLIENT_DOMAIN)
            pf_tls = make_tls_certificate(keys, A.POSTFIX_HOSTNAME)
            aio_tls = make_tls_certificate(keys, A.AIOSMTPD_HOSTNAME)
            self.postfix = PostfixInstance(
                self.base / "postfix", self.topology.server, A.POSTFIX_ADDRESS, pf_tls
            )
            self.postfix.start()
            self.aiosmtpd = self._start_aiosmtpd(aio_tls)
            self.started = True
        except BaseException:
            self.stop()
            raise

    def _start_aiosmtpd(self, tls: TlsFiles) -> Program:
        argv = python_module(
            "aiosmtpd_server", "--address", A.AIOSMTPD_ADDRESS,
            "--hostname", A.AIOSMTPD_HOSTNAME, "--cert", str(tls.cert), "--key", str(tls.key),
            "--maildir", str(self.aiosmtpd_maildir),
        )  # fmt: skip
        return start("aiosmtpd", argv, netns=self.topology.server, ready_marker="ready")

    def stop(self) -> None:
        if self.aiosmtpd is not None:
            self.aiosmtpd.stop()
            self.aiosmtpd = None
        if self.postfix is not None:
            self.postfix.stop()
            self.postfix = None
        self.topology.teardown()
        if not self.keep_files:
            shutil.rmtree(self.base, ignore_errors=True)
        self.started = False

    # -- one scenario --------------------------------------------------------------------

    def run(self, scenario: Scenario) -> ScenarioRun:
        if not self.started or self.dkim is None:
            raise LabError("the lab is not started")
        began = time.monotonic()
        self.nat_ports = nat_port_slice(self.run_count)
        self.run_count += 1
        directory = self.base / "runs" / scenario.name
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        sent = self._write_messages(scenario, directory)
        plan = directory / "plan.json"
        plan.write_text(json.dumps(self._plan(scenario, directory), indent=1))
        log_path = directory / "middlebox.jsonl"
        log_path.touch()
        log_start = len(self._server_log(scenario.server))

        self._flush_fw()
        helpers: list[Program] = []
        captures: dict[Side, Tcpdump] = {}
        stats: dict[str, CaptureStats] = {}
        translations: dict[str, str] = {}
        accident_ts: float | None = None
        timestamps = "1" if scenario.client_tcp_timestamps else "0"
        self.topology.sysctl(self.topology.client, "net.ipv4.tcp_timestamps", timestamps)
        try:
            # A connection of the previous run still retransmitting (a FIN whose answer was
            # lost) would be captured as a connection of this one: wait for it to end first.
            self._settle()
            # Anything that changed an interface's features since setup shows here, not as
            # bad checksums in the captures.
            self.topology.no_offloads()
            helpers = self._start_middlebox(scenario, directory, log_path)
            self._install_rules(scenario)
            raw_client, raw_server = self._capture_paths(scenario, directory)
            captures = {
                Side.CLIENT: Tcpdump(self._client_capture(raw_client, scenario), self.topology.fw),
                Side.SERVER: Tcpdump(self._server_capture(raw_server, scenario), self.topology.fw),
            }
            late = self._accident_side(scenario, Accident.LATE_START)
            early = self._accident_side(scenario, Accident.EARLY_STOP)
            for side, cap in captures.items():
                if side is not late:
                    cap.start()
            client = subprocess.Popen(
                in_netns(self.topology.client, python_module("client", str(plan))),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=lab_env(),
            )
            if scenario.accident is not None:
                self._await_hold(client, directory)
                accident_ts = time.time()
                if late is not None:
                    captures[late].start()
                if early is not None:
                    stats[str(early)] = captures[early].stop()
                (directory / HOLD_GO).touch()
            try:
                out, err = client.communicate(timeout=CLIENT_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired as exc:
                client.kill()
                client.communicate()
                raise LabError(f"the clients did not finish in {CLIENT_TIMEOUT_SECONDS}s") from exc
            if client.returncode != 0:
                raise LabError(f"the clients failed: {err.decode(errors='replace')[-2000:]}")
            results: list[dict[str, Any]] = json.loads(out)
            self._settle()
            translations = self._translations()
        finally:
            for side, cap in captures.items():
                if cap.program is not None:
                    stats[str(side)] = cap.stop()
            failed = [h for h in reversed(helpers) if h.stop() != 0]
            _log_proxied(helpers, log_path)
            self._flush_fw()
            self.topology.sysctl(self.topology.client, "net.ipv4.tcp_timestamps", "1")
            if failed:
                h = failed[0]
                raise LabError(f"{h.name} failed: {' | '.join(h.output)[-2000:]}")
        client_side, server_side = self._finish_files(scenario, raw_client, raw_server)
        delivered = self._await_delivery(scenario, sent)
        result = ScenarioRun(
            scenario=scenario,
            directory=directory,
            client_side=client_side,
            server_side=server_side,
            client_results=results,
            middlebox_log=[json.loads(x) for x in log_path.read_text().splitlines() if x],
            capture_stats=stats,
            sent=sent,
            delivered=delivered,
            server_log=self._server_log(scenario.server)[log_start:],
            seconds=time.monotonic() - began,
            translations=translations,
            accident_ts=accident_ts,
            nat_ports=self.nat_ports,
        )
        self.runs[scenario.name] = result
        return result

    @staticmethod
    def _accident_side(scenario: Scenario, accident: Accident) -> Side | None:
        a = scenario.accident
        return a.side if a is not None and a.accident is accident else None

    @staticmethod
    def _await_hold(client: subprocess.Popen[bytes], directory: Path) -> None:
        """Wait until the held client session says it is waiting."""
        ready = directory / HOLD_READY
        deadline = time.monotonic() + HOLD_TIMEOUT_SECONDS
        while not ready.exists():
            if client.poll() is not None or time.monotonic() > deadline:
                raise LabError("the held client session never reached its hold point")
            time.sleep(POLL_SECONDS / 5)

    def _translations(self) -> dict[str, str]:
        """The NAT table of the SMTP connections just run: client "ip:port" → translated."""
        proc = run(["conntrack", "-L", "-p", "tcp"], netns=self.topology.fw, check=False)
        table: dict[str, str] = {}
        for line in proc.stdout.decode().splitlines():
            tuples = CONNTRACK_TUPLE.findall(line)
            if len(tuples) != 2:
                continue
            (osrc, _odst, osport, odport), (_rsrc, rdst, _rsport, rdport) = tuples
            if int(odport) == A.SMTP_PORT and (rdst, rdport) != (osrc, osport):
                table[f"{osrc}:{osport}"] = f"{rdst}:{rdport}"
        return table

    def _write_messages(self, scenario: Scenario, directory: Path) -> dict[str, bytes]:
        assert self.dkim is not None
        sent: dict[str, bytes] = {}
        for action in scenario.clients:
            if action.message is None or action.message.message_id in sent:
                continue
            raw = build_message(action.message, self.dkim)
            (directory / f"{action.message.local_id}.eml").write_bytes(raw)
            sent[action.message.message_id] = raw
        return sent

    @staticmethod
    def _source_ports(scenario: Scenario) -> list[int]:
        """Distinct random client ports for a run with many sessions, 0 (the kernel's) otherwise.

        The kernel may hand a port out again as soon as its last connection closed (the server
        closes first, so the client keeps no TIME_WAIT); two sessions on one 4-tuple would make
        one connection of two in every reader of the captures. The ports come from outside the
        kernel's ephemeral range: a port an earlier run's client closed first stays in
        TIME_WAIT for a minute, and binding it would fail the session.
        """
        if not scenario.concurrency:
            return [0] * len(scenario.clients)
        low, high = A.CHOSEN_PORT_RANGE
        return random.sample(range(low, high + 1), len(scenario.clients))

    def _plan(self, scenario: Scenario, directory: Path) -> dict[str, Any]:
        sessions = []
        ports = self._source_ports(scenario)
        for action, source_port in zip(scenario.clients, ports, strict=True):
            session: dict[str, Any] = {
                "kind": str(action.kind),
                "source": action.source,
                "source_port": source_port,
                "server": scenario.server.address,
                "port": A.SMTP_PORT,
                "helo": A.CLIENT_HELO,
                "try_starttls": action.starttls,
            }
            if action.hold is not None:
                session |= {
                    "hold": str(action.hold),
                    "hold_ready": str(directory / HOLD_READY),
                    "hold_go": str(directory / HOLD_GO),
                }
            if action.kind is ClientKind.TYPING:
                session["lines"] = list(action.typed_lines)
            if action.message is not None:
                session |= {
                    "message_id": action.message.message_id,
                    "message_file": str(directory / f"{action.message.local_id}.eml"),
                    "mail_from": action.message.sender,
                    "rcpt_to": [action.message.recipient],
                }
            sessions.append(session)
        return {
            "parallel": scenario.parallel,
            "concurrency": scenario.concurrency,
            "sessions": sessions,
        }

    def _iptables(self, *args: str) -> None:
        run(["iptables", "-w", *args], netns=self.topology.fw)

    def _flush_fw(self) -> None:
        for table in ("filter", "nat", "mangle"):
            self._iptables("-t", table, "-F")
        # Forget translations of earlier runs: a reused 4-tuple must not inherit them.
        run(["conntrack", "-F"], netns=self.topology.fw, check=False)

    def _middlebox_config(self, scenario: Scenario) -> MiddleboxConfig | None:
        sources = {c.source for c in scenario.clients}
        policies = {s: scenario.policy_for(s) & REWRITER_BEHAVIOURS for s in sources}
        if not any(policies.values()):
            return None
        return MiddleboxConfig(
            per_client={s: policy_of(b) for s, b in policies.items()},
            seed=scenario.seed or sum(scenario.name.encode()),
        )

    def _start_middlebox(
        self, scenario: Scenario, directory: Path, log_path: Path
    ) -> list[Program]:
        """Start what sits in the path (nothing for a plain router or the iptables filter)."""
        fw = self.topology.fw
        server = scenario.server.address
        if scenario.uses_proxy:
            argv = python_module(
                "proxy", "--port", str(A.PROXY_PORT), "--source", A.NAT_ADDRESS,
                "--remove", "STARTTLS", "--log", str(log_path),
            )  # fmt: skip
            return [start("proxy", argv, netns=fw, ready_marker="ready")]
        if Behaviour.NGINX_MAIL_PROXY in scenario.behaviours:
            auth = start(
                "auth_http endpoint",
                python_module(
                    "mailauth", "--listen", f"127.0.0.1:{thirdparty.AUTH_HTTP_PORT}",
                    "--server", server, "--server-port", str(A.SMTP_PORT),
                    "--log", str(log_path),
                ),
                netns=fw,
                ready_marker="ready",
            )  # fmt: skip
            conf = directory / "nginx.conf"
            conf.write_text(thirdparty.nginx_conf(directory, server, directory / "nginx.log"))
            try:
                nginx = start(
                    "nginx",
                    ["nginx", "-e", "stderr", "-p", str(directory), "-c", str(conf)],
                    netns=fw,
                    ready=lambda: listening(fw, thirdparty.NGINX_PORT),
                )
            except BaseException:
                auth.stop()
                raise
            return [auth, nginx]
        if Behaviour.HAPROXY_TCP in scenario.behaviours:
            conf = directory / "haproxy.cfg"
            conf.write_text(thirdparty.haproxy_cfg(server))
            haproxy = start(
                "haproxy",
                ["haproxy", "-db", "-f", str(conf)],
                netns=fw,
                ready=lambda: listening(fw, thirdparty.HAPROXY_PORT),
            )
            haproxy.stop_signal = signal.SIGUSR1
            return [haproxy]
        config = self._middlebox_config(scenario)
        if config is None:
            return []
        config_path = directory / "middlebox.json"
        config_path.write_text(json.dumps(config.to_json(), indent=1))
        argv = python_module(
            "middlebox", "--queue", str(QUEUE_NUM), "--config", str(config_path),
            "--log", str(log_path),
        )  # fmt: skip
        return [start("middlebox", argv, netns=fw, ready_marker="ready")]

    def _redirect(self, port: int) -> None:
        self._iptables(
            "-t", "nat", "-A", "PREROUTING", "-i", A.FW_OUTSIDE_IF, "-p", "tcp",
            "--dport", str(A.SMTP_PORT), "-j", "REDIRECT", "--to-ports", str(port),
        )  # fmt: skip

    def _snat(self, *match: str) -> None:
        low, high = self.nat_ports
        self._iptables(
            "-t", "nat", "-A", "POSTROUTING", "-o", A.FW_INSIDE_IF, *match, "-p", "tcp",
            "--dport", str(A.SMTP_PORT), "-j", "SNAT",
            "--to-source", f"{A.NAT_ADDRESS}:{low}-{high}", "--random",
        )  # fmt: skip

    def _install_rules(self, scenario: Scenario) -> None:
        if scenario.uses_proxy:
            self._redirect(A.PROXY_PORT)
            return
        if Behaviour.NGINX_MAIL_PROXY in scenario.behaviours:
            # The proxies connect from fw's own address; the same SNAT as for the clients.
            self._redirect(thirdparty.NGINX_PORT)
            self._snat()
            return
        if Behaviour.HAPROXY_TCP in scenario.behaviours:
            self._redirect(thirdparty.HAPROXY_PORT)
            self._snat()
            return
        if Behaviour.STRING_RESET in scenario.behaviours:
            for rule in thirdparty.string_reset_rules():
                self._iptables(*rule)
        if self._middlebox_config(scenario) is not None:
            for match in ("--dport", "--sport"):
                self._iptables(
                    "-t", "mangle", "-A", "FORWARD", "-p", "tcp", match, str(A.SMTP_PORT),
                    "-j", "NFQUEUE", "--queue-num", str(QUEUE_NUM),
                )  # fmt: skip
        if scenario.nat:
            self._snat("-s", A.CLIENT_NET)

    @staticmethod
    def _capture_paths(scenario: Scenario, directory: Path) -> tuple[Path, Path]:
        return directory / "client-side.pcap", directory / "server-side.pcap"

    @staticmethod
    def _snaplen(scenario: Scenario, side: Side) -> int:
        if scenario.snaplen is not None and scenario.snaplen[0] is side:
            return scenario.snaplen[1]
        return 0

    def _client_capture(self, path: Path, scenario: Scenario) -> CaptureSpec:
        return CaptureSpec(
            path=path,
            interface=A.FW_OUTSIDE_IF,
            bpf=BPF_SMTP,
            nanoseconds=scenario.file_format is CaptureFormat.PCAPNG,
            snaplen=self._snaplen(scenario, Side.CLIENT),
        )

    def _server_capture(self, path: Path, scenario: Scenario) -> CaptureSpec:
        nano = scenario.file_format is CaptureFormat.PCAPNG
        snaplen = self._snaplen(scenario, Side.SERVER)
        if scenario.server_side_link is CaptureLink.ANY:
            index = ifindex(self.topology.fw, A.FW_INSIDE_IF)
            return CaptureSpec(
                path=path,
                interface="any",
                bpf=f"{BPF_SMTP} and ifindex {index}",
                sll2=True,
                nanoseconds=nano,
                snaplen=snaplen,
            )
        return CaptureSpec(
            path=path, interface=A.FW_INSIDE_IF, bpf=BPF_SMTP, nanoseconds=nano, snaplen=snaplen
        )

    def _open_smtp_sockets(self) -> list[str]:
        """SMTP connections not yet closed, in any namespace (the proxies' in fw too)."""
        argv = ["ss", "-Htn"]
        for state in ACTIVE_STATES:
            argv += ["state", state]
        argv += ["(", "dport", "=", f":{A.SMTP_PORT}", "or", "sport", "=", f":{A.SMTP_PORT}", ")"]
        return [
            f"{ns}: {line.strip()}"
            for ns in self.topology.namespaces
            for line in run(argv, netns=ns, check=False).stdout.decode().splitlines()
            if line.strip()
        ]

    def _settle(self) -> None:
        """Wait until no SMTP connection is open anywhere, then a little longer.

        LabError if one is still open after SETTLE_TIMEOUT_SECONDS: its packets would land in
        the next run's captures.
        """
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        while busy := self._open_smtp_sockets():
            if time.monotonic() > deadline:
                raise LabError(
                    f"SMTP connections still open after {SETTLE_TIMEOUT_SECONDS}s: "
                    + "; ".join(busy)[-2000:]
                )
            time.sleep(POLL_SECONDS)
        time.sleep(LINGER_SECONDS)

    @staticmethod
    def _finish_files(scenario: Scenario, client: Path, server: Path) -> tuple[Path, Path]:
        if scenario.file_format is not CaptureFormat.PCAPNG:
            return client, server
        out = []
        for raw in (client, server):
            ng = to_pcapng(raw, raw.with_suffix(".pcapng"))
            raw.unlink()
            out.append(ng)
        return out[0], out[1]

    def _maildir(self, server: Server) -> Path:
        if server is Server.POSTFIX:
            assert self.postfix is not None
            return self.postfix.paths.maildir
        return self.aiosmtpd_maildir

    def _await_delivery(self, scenario: Scenario, sent: dict[str, bytes]) -> dict[str, bytes]:
        wanted = {
            a.message.message_id
            for a in scenario.clients
            if a.message is not None and a.expect_outcome is Outcome.DELIVERED
        }
        deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
        while True:
            found = read_maildir(self._maildir(scenario.server))
            mine = {k: v for k, v in found.items() if k in sent}
            if wanted <= mine.keys() or time.monotonic() > deadline:
                return mine
            time.sleep(POLL_SECONDS)

    def _server_log(self, server: Server) -> str:
        if server is Server.POSTFIX and self.postfix is not None:
            return self.postfix.log()
        return ""


def nat_port_slice(index: int) -> tuple[int, int]:
    """The NAT ports of a lab's run number `index`: its own slice, reused after all were used."""
    low, high = A.NAT_PORT_RANGE
    slices = (high - low + 1) // A.NAT_PORTS_PER_RUN
    first = low + (index % slices) * A.NAT_PORTS_PER_RUN
    return first, first + A.NAT_PORTS_PER_RUN - 1


HAPROXY_LINE = re.compile(r"^proxied (\S+) via (\S+) to (\S+)$")


def _log_proxied(helpers: list[Program], log_path: Path) -> None:
    """haproxy's log lines (see `thirdparty.haproxy_cfg`) as `proxied` notes in the run's log."""
    with log_path.open("a", encoding="utf-8") as log:
        for helper in helpers:
            if helper.name != "haproxy":
                continue
            for line in helper.output:
                m = HAPROXY_LINE.match(line.strip())
                if m:
                    note = {"event": "proxied", "client": m[1], "via": m[2], "server": m[3]}
                    log.write(json.dumps(note, sort_keys=True) + "\n")


def environment_summary() -> dict[str, str]:
    """Versions of the real software the lab drives, for captures/lab/README.md."""
    versions: dict[str, str] = {}
    probes = {
        "postfix": ["postconf", "-d", "-h", "mail_version"],
        "nginx": ["nginx", "-v"],
        "haproxy": ["haproxy", "-v"],
        "iptables": ["iptables", "--version"],
        "tcpdump": ["tcpdump", "--version"],
        "swaks": ["swaks", "--version"],
        "kernel": ["uname", "-r"],
    }
    for name, argv in probes.items():
        proc = run(argv, check=False)
        text = (proc.stdout or proc.stderr).decode(errors="replace").strip().splitlines()
        versions[name] = text[0] if text else "?"
    for dist in ("aiosmtpd", "dkimpy", "NetfilterQueue"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "?"
    return versions
