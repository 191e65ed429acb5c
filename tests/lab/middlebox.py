"""The middlebox process: an NFQUEUE consumer in the fw namespace that applies `rewriter` verdicts.

What it does: binds one netfilter queue, hands every queued packet to `rewriter.Middlebox`,
accepts (possibly rewritten) or drops it, sends the forged packets the engine asks for through a
raw IPv4 socket (the kernel's connection tracking then applies the same SNAT as to the real
packets), writes what was done as JSON lines, and prints `ready` once the queue is bound.
What it does not do: decide anything itself, install iptables rules (the runner does), or NAT.

Run inside the fw namespace: `python -m lab.middlebox --queue N --config FILE --log FILE`.
"""

from __future__ import annotations

import argparse
import json
import select
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from .rewriter import Action, Middlebox, MiddleboxConfig

POLL_SECONDS = 0.2
QUEUE_MAX_LEN = 4096


def _destination(packet: bytes) -> str:
    """IPv4 destination address of a raw packet (RFC 791 §3.1: bytes 16-19)."""
    return ".".join(str(b) for b in packet[16:20])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)

    from netfilterqueue import NetfilterQueue  # imported here: only the lab needs it

    config = MiddleboxConfig.from_json(json.loads(args.config.read_text()))
    box = Middlebox(config)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    log = args.log.open("a", encoding="utf-8")
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    def on_packet(pkt: Any) -> None:
        try:
            verdict = box.handle(pkt.get_payload())
        except Exception as exc:  # a lab bug must show in the log, not stall the connection
            log.write(json.dumps({"event": "error", "error": repr(exc)}) + "\n")
            log.flush()
            pkt.accept()
            return
        if verdict.action is Action.DROP:
            pkt.drop()
        else:
            if verdict.packet is not None:
                pkt.set_payload(verdict.packet)
            pkt.accept()
        for forged in verdict.inject:
            raw.sendto(forged, (_destination(forged), 0))
        for note in verdict.notes:
            log.write(json.dumps(note, sort_keys=True) + "\n")
        if verdict.notes:
            log.flush()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    nfq = NetfilterQueue()
    nfq.bind(args.queue, on_packet, max_len=QUEUE_MAX_LEN)
    fd = nfq.get_fd()
    print("ready", flush=True)
    try:
        while not stop:
            readable, _, _ = select.select([fd], [], [], POLL_SECONDS)
            if readable:
                nfq.run(block=False)
    finally:
        nfq.unbind()
        log.close()
        raw.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
