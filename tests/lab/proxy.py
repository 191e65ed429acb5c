"""A token-removing SMTP proxy (Zorp-like): re-terminates TCP and deletes EHLO keywords.

What it does: accepts connections that iptables REDIRECTs to it in the fw namespace, finds the
server the client asked for (SO_ORIGINAL_DST), connects to it from the NAT address, relays
client bytes as they come, and relays server replies whole: in the reply to EHLO it deletes the
lines whose keyword is in the removal set (fixing the last line's separator when the deleted line
was the last). After a 220 reply to STARTTLS both directions are relayed blindly. It logs what
it removed as JSON lines and prints `ready`.
What it does not do: keep TCP lengths or sequence numbers (it is a different connection on each
side, as with any real proxy), or inspect DATA.

Run inside the fw namespace:
`python -m lab.proxy --port P --source A --remove STARTTLS --log FILE`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import struct
import sys
from collections import deque
from pathlib import Path

from . import addresses as A

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
SOCKADDR_IN = struct.Struct("!2xH4s8x")
LINE_LIMIT = 4096
REPLY_TLS_READY = 220  # RFC 3207 §4


def original_destination(sock: socket.socket) -> tuple[str, int]:
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, SOCKADDR_IN.size)
    port, addr = SOCKADDR_IN.unpack(raw)
    return socket.inet_ntoa(addr), port


def strip_keywords(reply: list[bytes], remove: frozenset[str]) -> tuple[list[bytes], list[str]]:
    """Delete EHLO reply lines (not the first) whose keyword is in `remove`."""
    kept = [reply[0]]
    removed = []
    for line in reply[1:]:
        keyword = line[4:].split(b" ", 1)[0].strip().decode("latin-1").upper()
        if keyword in remove:
            removed.append(keyword)
        else:
            kept.append(line)
    if removed and len(kept[-1]) >= 4:
        kept[-1] = kept[-1][:3] + b" " + kept[-1][4:]
    return kept, removed


class Session:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        source: str,
        remove: frozenset[str],
        log: list[dict[str, object]],
    ) -> None:
        self.c_reader, self.c_writer = reader, writer
        self.source = source
        self.remove = remove
        self.log = log
        self.verbs: deque[str] = deque()
        self.blind = asyncio.Event()

    async def run(self) -> None:
        sock = self.c_writer.get_extra_info("socket")
        server, port = original_destination(sock)
        peer = self.c_writer.get_extra_info("peername")
        s_reader, s_writer = await asyncio.open_connection(
            server, port, local_addr=(self.source, 0)
        )
        self.log.append({"event": "proxied", "client": f"{peer[0]}:{peer[1]}",
                         "server": f"{server}:{port}",
                         "via": "{}:{}".format(*s_writer.get_extra_info("sockname"))})  # fmt: skip
        up = asyncio.create_task(self._client_to_server(s_writer))
        down = asyncio.create_task(self._server_to_client(s_reader))
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.sleep(0.2)
        for task in (up, down):
            task.cancel()
        for w in (s_writer, self.c_writer):
            w.close()

    async def _client_to_server(self, s_writer: asyncio.StreamWriter) -> None:
        pending = b""
        while True:
            data = await self.c_reader.read(65536)
            if not data:
                s_writer.write_eof()
                return
            if not self.blind.is_set():
                pending += data
                *lines, pending = pending.split(b"\n")
                pending = pending[-LINE_LIMIT:]
                for line in lines:
                    self.verbs.append(line.split(b" ", 1)[0].strip().decode("latin-1").upper())
            s_writer.write(data)
            await s_writer.drain()

    async def _server_to_client(self, s_reader: asyncio.StreamReader) -> None:
        reply: list[bytes] = []
        while True:
            if self.blind.is_set():
                data = await s_reader.read(65536)
                if not data:
                    return
                self.c_writer.write(data)
                await self.c_writer.drain()
                continue
            line = await s_reader.readline()
            if not line:
                return
            reply.append(line)
            if len(line) >= 4 and line[3:4] == b"-":
                continue
            verb = self.verbs.popleft() if self.verbs else ""
            if verb == "EHLO":
                reply, removed = strip_keywords(reply, self.remove)
                for keyword in removed:
                    self.log.append({"event": "remove_ehlo_keyword", "keyword": keyword})
            self.c_writer.write(b"".join(reply))
            await self.c_writer.drain()
            code = reply[-1][:3]
            reply = []
            if verb == "STARTTLS" and code == str(REPLY_TLS_READY).encode():
                self.blind.set()


async def serve(port: int, source: str, remove: frozenset[str], log_path: Path) -> None:
    log: list[dict[str, object]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            tasks.add(task)
        try:
            await Session(reader, writer, source, remove, log).run()
        except OSError as exc:
            log.append({"event": "error", "error": str(exc)})
            writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", port)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    await asyncio.wait_for(server.wait_closed(), 5)
    with log_path.open("a", encoding="utf-8") as fh:
        for note in log:
            fh.write(json.dumps(note, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=A.PROXY_PORT)
    parser.add_argument("--source", default=A.NAT_ADDRESS)
    parser.add_argument("--remove", action="append", default=[])
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    remove = frozenset(k.upper() for k in (args.remove or ["STARTTLS"]))
    asyncio.run(serve(args.port, args.source, remove, args.log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
