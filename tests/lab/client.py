"""The lab's SMTP clients, run inside the client namespace; results as JSON on stdout.

What it does, per session in the plan file:
- `smtplib`: an MTA-like client — EHLO, STARTTLS when offered (a rejected STARTTLS or one not
  offered means cleartext, as with opportunistic TLS), then MAIL/RCPT/DATA of a prepared
  message, QUIT;
- `swaks`: the real swaks binary with `--tls-optional` and the same message;
- `typing`: a person at a telnet prompt — one character per TCP segment (TCP_NODELAY and a
  pause between characters), Enter sends CRLF;
sessions run one after another, all at once, or a fixed number in flight started a few
milliseconds apart (a list server's run). A session may hold after EHLO or RCPT until the runner
says go (it starts or stops a capture meanwhile). Every outcome (delivered, reset, rejected) is a
result, never an exception.
What it does not do: build messages (the runner writes them) or judge the outcome.

Run: `python -m lab.client PLAN.json`.
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SESSION_TIMEOUT_SECONDS = 20.0
REPLY_LIMIT = 65536
HOLD_TIMEOUT_SECONDS = 20.0
HOLD_POLL_SECONDS = 0.005
STAGGER_SECONDS = 0.004
"""Between the starts of two sessions of a run with a fixed number in flight."""
IN_FLIGHT_LINGER_SECONDS = 0.15
"""How long each session of such a run waits after EHLO: a local delivery takes a few ms, so
without it the sessions barely overlap and the run would not be the concurrent one it claims."""


@dataclass
class Result:
    """What one client session saw."""

    kind: str
    source: str
    message_id: str | None = None
    outcome: str = "unknown"
    tls: bool = False
    banner: str = ""
    ehlo_keywords: list[str] = field(default_factory=list)
    starttls_offered: bool = False
    starttls_reply: int | None = None
    replies: list[str] = field(default_factory=list)
    error: str | None = None
    local_port: int | None = None
    transcript: str = ""


def _classify(exc: BaseException) -> str:
    text = str(exc).lower()
    if isinstance(exc, ConnectionResetError) or "reset" in text or "errno 104" in text:
        return "connection_reset"
    if isinstance(exc, BrokenPipeError | smtplib.SMTPServerDisconnected):
        return "disconnected"
    if isinstance(exc, smtplib.SMTPResponseException):
        return "rejected"
    return "error"


def _tls_context() -> ssl.SSLContext:
    # Opportunistic TLS between MTAs does not authenticate the peer (RFC 7435 §1.2).
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _hold(plan: dict[str, Any], point: str) -> None:
    """At the plan's hold point: say so, then wait until the runner says go."""
    if plan.get("hold") != point:
        return
    Path(plan["hold_ready"]).touch()
    go = Path(plan["hold_go"])
    deadline = time.monotonic() + HOLD_TIMEOUT_SECONDS
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(HOLD_POLL_SECONDS)


def run_smtplib(plan: dict[str, Any]) -> Result:
    res = Result("smtplib", plan["source"], plan.get("message_id"))
    message = Path(plan["message_file"]).read_bytes()
    source = (plan["source"], int(plan.get("source_port", 0)))
    client = smtplib.SMTP(timeout=SESSION_TIMEOUT_SECONDS, source_address=source)
    try:
        # connect() alone leaves the name STARTTLS sends as SNI empty.
        client._host = plan["server"]  # type: ignore[attr-defined]
        code, text = client.connect(plan["server"], plan["port"])
        res.banner = f"{code} {text.decode(errors='replace')}"
        sock = client.sock
        if sock is not None:
            res.local_port = sock.getsockname()[1]
        client.ehlo(plan["helo"])
        res.ehlo_keywords = sorted(k.upper() for k in client.esmtp_features)
        res.starttls_offered = client.has_extn("starttls")
        time.sleep(float(plan.get("linger_s", 0.0)))
        _hold(plan, "ehlo")
        if res.starttls_offered and plan.get("try_starttls", True):
            try:
                code, _ = client.starttls(context=_tls_context())
                res.starttls_reply = code
                res.tls = True
                client.ehlo(plan["helo"])
            except smtplib.SMTPResponseException as exc:
                res.starttls_reply = exc.smtp_code
                res.replies.append(f"STARTTLS {exc.smtp_code} {exc.smtp_error!r}")
        code, text = client.mail(plan["mail_from"])
        res.replies.append(f"MAIL {code}")
        for rcpt in plan["rcpt_to"]:
            code, text = client.rcpt(rcpt)
            res.replies.append(f"RCPT {code}")
        _hold(plan, "rcpt")
        code, text = client.data(message)
        res.replies.append(f"DATA {code} {text.decode(errors='replace')}")
        res.outcome = "delivered" if code == 250 else "rejected"
        client.quit()
    except Exception as exc:  # every ending is a result, never a crash of the plan
        res.error = f"{type(exc).__name__}: {exc}"
        if res.outcome == "unknown":
            res.outcome = _classify(exc)
    finally:
        client.close()
    return res


def run_swaks(plan: dict[str, Any]) -> Result:
    res = Result("swaks", plan["source"], plan.get("message_id"))
    argv = [
        "swaks", "--server", plan["server"], "--port", str(plan["port"]),
        "--local-interface", plan["source"], "--helo", plan["helo"],
        "--from", plan["mail_from"], "--to", ",".join(plan["rcpt_to"]),
        "--data", f"@{plan['message_file']}", "--tls-optional",
        "--timeout", str(int(SESSION_TIMEOUT_SECONDS)),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, timeout=SESSION_TIMEOUT_SECONDS * 2)
    out = proc.stdout.decode(errors="replace")
    res.transcript = out
    lines = out.splitlines()
    received = [line[4:] for line in lines if line.startswith(("<-  ", "<~  "))]
    res.banner = received[0] if received else ""
    res.tls = any(line.startswith("=== TLS started") for line in lines)
    res.starttls_offered = any(r[4:].upper().startswith("STARTTLS") for r in received[1:])
    for i, line in enumerate(lines):
        if line.strip().endswith("-> STARTTLS") and i + 1 < len(lines):
            reply = lines[i + 1][4:]
            res.starttls_reply = int(reply[:3]) if reply[:3].isdigit() else None
    res.replies = received
    if proc.returncode == 0:
        res.outcome = "delivered"
    else:
        text = (out + proc.stderr.decode(errors="replace")).lower()
        res.error = f"swaks exit {proc.returncode}"
        res.outcome = "connection_reset" if "reset" in text or "closed" in text else "rejected"
    return res


def _read_reply(sock: socket.socket) -> str:
    """Read one complete (possibly multi-line) reply, RFC 5321 §4.2.1."""
    data = b""
    while len(data) < REPLY_LIMIT:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) > 1 and any(len(x) >= 4 and x[3:4] == b" " for x in lines[:-1]):
            break
    return data.decode(errors="replace")


def run_typing(plan: dict[str, Any]) -> Result:
    res = Result("typing", plan["source"], None)
    delay = float(plan.get("delay", 0.03))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(SESSION_TIMEOUT_SECONDS)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((plan["source"], 0))
        sock.connect((plan["server"], plan["port"]))
        res.local_port = sock.getsockname()[1]
        res.banner = _read_reply(sock).strip()
        for line in plan["lines"]:
            for ch in line:
                sock.sendall(ch.encode())
                time.sleep(delay)
            sock.sendall(b"\r\n")
            res.replies.append(_read_reply(sock).strip())
        res.outcome = "completed"
    except OSError as exc:
        res.error = f"{type(exc).__name__}: {exc}"
        res.outcome = _classify(exc)
    finally:
        sock.close()
    return res


RUNNERS = {"smtplib": run_smtplib, "swaks": run_swaks, "typing": run_typing}


def run_in_flight(sessions: list[dict[str, Any]], in_flight: int) -> list[Result]:
    """Run the sessions with `in_flight` of them open at once, starts staggered."""
    results: list[Result | None] = [None] * len(sessions)
    slots = threading.Semaphore(in_flight)

    def worker(i: int) -> None:
        try:
            plan = {"linger_s": IN_FLIGHT_LINGER_SECONDS, **sessions[i]}
            results[i] = RUNNERS[sessions[i]["kind"]](plan)
        finally:
            slots.release()

    threads = []
    for i in range(len(sessions)):
        slots.acquire()
        t = threading.Thread(target=worker, args=(i,))
        t.start()
        threads.append(t)
        time.sleep(STAGGER_SECONDS)
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def run_plan(plan: dict[str, Any]) -> list[Result]:
    sessions: list[dict[str, Any]] = plan["sessions"]
    if plan.get("concurrency"):
        return run_in_flight(sessions, int(plan["concurrency"]))
    if not plan.get("parallel"):
        return [RUNNERS[s["kind"]](s) for s in sessions]
    results: list[Result | None] = [None] * len(sessions)
    barrier = threading.Barrier(len(sessions))

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = RUNNERS[sessions[i]["kind"]](sessions[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    plan = json.loads(Path(args[0]).read_text())
    results = run_plan(plan)
    json.dump([vars(r) for r in results], sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
