"""The second server personality: aiosmtpd with STARTTLS, delivering into a Maildir.

What it does: listens on one address, port 25, offers STARTTLS (not required), stores every
message it accepts in a Maildir, prints `ready` once it accepts connections, and stops on
SIGTERM. Its replies differ from Postfix's (`500 Error: command "XXXXXXXX" not recognized`),
which is why the lab runs it.
What it does not do: relay, authenticate, or check recipients.

Run inside the server namespace:
`python -m lab.aiosmtpd_server --address A --hostname H --cert C --key K --maildir D`.
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
import threading
from pathlib import Path
from types import FrameType

from . import addresses as A


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--hostname", default=A.AIOSMTPD_HOSTNAME)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args(argv)

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Mailbox

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    args.maildir.parent.mkdir(parents=True, exist_ok=True)
    controller = Controller(
        Mailbox(args.maildir),
        hostname=args.address,
        port=A.SMTP_PORT,
        server_hostname=args.hostname,
        tls_context=context,
        require_starttls=False,
        ready_timeout=10.0,
    )
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    controller.start()
    print("ready", flush=True)
    try:
        while not done.wait(0.2):
            pass
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
