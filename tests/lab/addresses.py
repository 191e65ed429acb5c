"""Names, addresses and ports of the lab topology, declared once.

Only documentation ranges are used (RFC 5737: TEST-NET-1 192.0.2.0/24 inside, TEST-NET-2
198.51.100.0/24 outside) and reserved example domains (RFC 2606); nothing leaves the namespaces.
"""

from __future__ import annotations

import re

NETNS_PREFIX_FORMAT = "smtpfw-{pid}-"
NETNS_ROLES = ("client", "fw", "server")
# Matches every namespace the lab ever creates; group 1 is the creating process id.
NETNS_PATTERN = re.compile(r"^smtpfw-(\d+)-(client|fw|server|probe)$")
TEMP_PREFIX_FORMAT = "smtpfw-lab-{pid}-"
TEMP_PATTERN = re.compile(r"^smtpfw-lab-(\d+)-")

CLIENT_PREFIX_LEN = 24
CLIENT_NET = "198.51.100.0/24"
FW_OUTSIDE_ADDRESS = "198.51.100.1"
CLIENT_ADDRESSES = ("198.51.100.10", "198.51.100.11", "198.51.100.12", "198.51.100.13")
CLIENT_ADDRESS = CLIENT_ADDRESSES[0]

SERVER_PREFIX_LEN = 24
SERVER_NET = "192.0.2.0/24"
FW_INSIDE_ADDRESS = "192.0.2.1"
NAT_ADDRESS = "192.0.2.254"
POSTFIX_ADDRESS = "192.0.2.25"
AIOSMTPD_ADDRESS = "192.0.2.26"

# Interface names inside the namespaces (each namespace has its own name space for links).
CLIENT_IF = "eth0"
FW_OUTSIDE_IF = "outside"
FW_INSIDE_IF = "inside"
SERVER_IF = "eth0"

SMTP_PORT = 25  # RFC 5321 §4.5.4.2: "the SMTP port (specified by IANA as port 25)"
PROXY_PORT = 10025
# Client ephemeral ports and NAT ports do not overlap, so a translated port always differs.
CLIENT_PORT_RANGE = (50000, 59999)
NAT_PORT_RANGE = (20000, 29999)
# Each run of one lab SNATs into its own slice of NAT_PORT_RANGE. conntrack is flushed between
# runs, so the box does not know the server still holds an earlier run's 192.0.2.254:port in
# TIME_WAIT; a new connection given that port with a lower ISN is answered with an ACK, reset
# by the client and its retried SYN translated anew: one connection, two on the server side.
NAT_PORTS_PER_RUN = 400
# Source ports the lab picks itself (runs with many sessions): outside the kernel's ephemeral
# range, so none is a port an earlier run's connection still holds in TIME_WAIT.
CHOSEN_PORT_RANGE = (60000, 64999)

LAB_DOMAIN = "lab.example"
CLIENT_DOMAIN = "client.example"
POSTFIX_HOSTNAME = f"mx.{LAB_DOMAIN}"
AIOSMTPD_HOSTNAME = f"mx2.{LAB_DOMAIN}"
CLIENT_HELO = f"mta.{CLIENT_DOMAIN}"
DKIM_SELECTOR = "lab2024"
