"""Configuration of the third-party middleboxes the lab puts in the path (Debian packages).

What it does: writes the configuration files and names the iptables rules for
- nginx's mail proxy (`libnginx-mod-mail`): terminates SMTP itself — its own 220 greeting, its
  own EHLO reply (no STARTTLS: `starttls off`), asks an `auth_http` endpoint (`mailauth.py`) for
  the backend after the first RCPT TO (`smtp_auth none`), then opens its own connection to the
  server, says EHLO with its own name, replays the client's MAIL and RCPT lines there
  (`xclient off`) and relays the rest byte for byte;
- haproxy in TCP mode: a plain full proxy — a new connection to the server with its own
  sequence numbers and segmentation, no byte of the dialogue changed;
- an iptables content filter: `-m string --algo bm` finds `DKIM-Signature` in a client segment,
  marks the connection (CONNMARK), and every later packet of the connection, in either
  direction, is answered with `REJECT --reject-with tcp-reset` — the kernel forges an RST to the
  packet's sender, claiming to be the other end (as the PIX < 7.2(3) DKIM bug did: the header
  crosses, then both ends are reset).
What it does not do: start anything (the runner does) or rewrite content: no Debian in-line
device rewrites TCP payload with checksums fixed (nftables payload mangling leaves the TCP
checksum stale), so the content-triggered device here resets.
"""

from __future__ import annotations

from pathlib import Path

from . import addresses as A

NGINX_MAIL_MODULE = Path("/usr/lib/nginx/modules/ngx_mail_module.so")
NGINX_PORT = 10026
HAPROXY_PORT = 10027
AUTH_HTTP_PORT = 10080
NGINX_SERVER_NAME = "relay.proxy.example"
# What the proxy offers in its own EHLO reply: what a real deployment commonly lists.
NGINX_CAPABILITIES = ("SIZE 10240000", "8BITMIME", "PIPELINING")
PROXY_TIMEOUT_SECONDS = 60

DKIM_STRING = "DKIM-Signature"
DKIM_CONNMARK = "0x1d"
# Linux's default TTL (net.ipv4.ip_default_ttl) for packets fw itself sends, REJECT's RSTs too.
FW_DEFAULT_TTL = 64


def nginx_conf(prefix: Path, server: str, error_log: Path) -> str:
    """nginx.conf for a foreground, single-process mail proxy in front of `server`."""
    caps = " ".join(f'"{c}"' for c in NGINX_CAPABILITIES)
    return f"""\
load_module {NGINX_MAIL_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {error_log} info;
events {{ worker_connections 1024; }}
mail {{
    server_name {NGINX_SERVER_NAME};
    auth_http 127.0.0.1:{AUTH_HTTP_PORT}/auth;
    proxy_pass_error_message on;
    proxy_timeout {PROXY_TIMEOUT_SECONDS}s;
    xclient off;
    server {{
        listen {NGINX_PORT};
        protocol smtp;
        smtp_auth none;
        starttls off;
        proxy on;
        smtp_capabilities {caps};
    }}
}}
# backend chosen by the auth_http endpoint: {server}:{A.SMTP_PORT}
"""


def haproxy_cfg(server: str) -> str:
    """haproxy.cfg: TCP mode, one backend, one log line per connection on stdout."""
    return f"""\
global
    log stdout format raw local0 info
defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client {PROXY_TIMEOUT_SECONDS}s
    timeout server {PROXY_TIMEOUT_SECONDS}s
frontend smtp
    bind 0.0.0.0:{HAPROXY_PORT}
    log-format "proxied %ci:%cp via %bi:%bp to %si:%sp"
    default_backend mx
backend mx
    server mx {server}:{A.SMTP_PORT}
"""


def string_reset_rules() -> list[list[str]]:
    """iptables arguments (filter FORWARD) for the DKIM content filter, in order.

    The marked-connection rule comes first, so the segment that carries the string is itself
    forwarded and only what follows it is answered with resets.
    """
    return [
        ["-A", "FORWARD", "-p", "tcp", "-m", "connmark", "--mark", DKIM_CONNMARK,
         "-j", "REJECT", "--reject-with", "tcp-reset"],
        ["-A", "FORWARD", "-p", "tcp", "--dport", str(A.SMTP_PORT),
         "-m", "string", "--algo", "bm", "--string", DKIM_STRING,
         "-j", "CONNMARK", "--set-mark", DKIM_CONNMARK],
    ]  # fmt: skip
