"""The `auth_http` endpoint nginx's mail proxy asks before it connects to a backend.

What it does: serves HTTP/1.0 on a loopback port in the fw namespace; to every request it answers
`Auth-Status: OK` with the backend's address and port (nginx `ngx_mail_auth_http_module`: the
response headers `Auth-Status`, `Auth-Server`, `Auth-Port`), logs the request's `Auth-SMTP-*` and
`Client-*` headers as JSON lines, and prints `ready` once it listens.
What it does not do: authenticate anyone (the lab's proxy runs with `smtp_auth none`) or choose
between backends.

Run inside the fw namespace:
`python -m lab.mailauth --listen 127.0.0.1:PORT --server IP --server-port 25 --log FILE`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

HEADER_LIMIT = 16384
REQUEST_END = b"\r\n\r\n"
READ_TIMEOUT_SECONDS = 5.0


def parse_headers(request: bytes) -> dict[str, str]:
    """Header fields of an HTTP request (RFC 9112 §5), names lower-cased, request line dropped."""
    lines = request.split(b"\r\n")[1:]
    fields: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(b":")
        if sep:
            fields[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return fields


def response(server: str, port: int) -> bytes:
    """The answer that lets nginx proxy the session to `server:port`."""
    return (
        f"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: {server}\r\nAuth-Port: {port}\r\n\r\n"
    ).encode("ascii")


async def serve(host: str, port: int, server: str, server_port: int, log_path: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log = log_path.open("a", encoding="utf-8")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(
                reader.readuntil(REQUEST_END), timeout=READ_TIMEOUT_SECONDS
            )
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        fields = parse_headers(request)
        note = {"event": "auth_http"} | {
            k: v for k, v in fields.items() if k.startswith(("auth-", "client-"))
        }
        log.write(json.dumps(note, sort_keys=True) + "\n")
        log.flush()
        writer.write(response(server, server_port))
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(handle, host, port, limit=HEADER_LIMIT)
    print("ready", flush=True)
    await stop.wait()
    listener.close()
    await listener.wait_closed()
    log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--server", required=True)
    parser.add_argument("--server-port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    asyncio.run(serve(host, int(port), args.server, args.server_port, args.log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
