"""Kernel probe: does a packet sent to a NFQUEUE rule reach a user-space queue here?

What it does: binds the queue given on the command line, sends one UDP datagram to
127.0.0.1:9 (an iptables rule in the same namespace queues it), and prints `nfqueue ok` when the
packet arrives within two seconds. What it does not do: install the rule (`deps.py` does).

Run inside a namespace: `python -m lab.probe QUEUE`.
"""

from __future__ import annotations

import select
import socket
import sys
import time
from typing import Any

TIMEOUT_SECONDS = 2.0
DISCARD_PORT = 9  # RFC 863


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from netfilterqueue import NetfilterQueue

    seen: list[int] = []

    def on_packet(pkt: Any) -> None:
        seen.append(len(pkt.get_payload()))
        pkt.drop()

    nfq = NetfilterQueue()
    nfq.bind(int(args[0]), on_packet)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"probe", ("127.0.0.1", DISCARD_PORT))
        deadline = time.monotonic() + TIMEOUT_SECONDS
        fd = nfq.get_fd()
        while not seen and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                nfq.run(block=False)
    finally:
        nfq.unbind()
    print("nfqueue ok" if seen else "nfqueue silent", flush=True)
    return 0 if seen else 1


if __name__ == "__main__":
    sys.exit(main())
