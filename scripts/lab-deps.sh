#!/usr/bin/env bash
# Install what the real-traffic lab (tests/lab/) needs: Debian packages and the Python modules
# in the project's virtualenv. Idempotent: installs only what is missing and does nothing when
# everything is present. Without root it installs nothing and says so; the lab tests then skip.
#
#   scripts/lab-deps.sh            # VENV=.venv by default
#   VENV=/path/to/venv scripts/lab-deps.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="$VENV/bin/python"

# program or file -> Debian package
PACKAGES=(
  iproute2          # ip, ss: namespaces, veth, routes
  iptables          # SNAT, NFQUEUE, REDIRECT, string match + REJECT tcp-reset
  conntrack         # flush translations between scenarios
  ethtool           # offloads off: wire-sized segments, real checksums
  procps            # sysctl
  tcpdump           # the captures
  tshark            # reading them back in the tests
  wireshark-common  # editcap: pcap -> pcapng
  postfix           # the real MTA
  swaks             # a real SMTP client
  nginx             # a full proxy with its own greeting: nginx's mail proxy ...
  libnginx-mod-mail # ... (ngx_mail_module.so)
  haproxy           # a plain full proxy (TCP mode)
  libnet-ssleay-perl  # swaks STARTTLS
  openssl           # certificates, DKIM key
  libnetfilter-queue-dev  # NetfilterQueue builds against it
  gcc
  libc6-dev
)
PY_MODULES=(netfilterqueue dkim aiosmtpd)
PY_DISTS=(NetfilterQueue dkimpy aiosmtpd)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "lab-deps: not root, cannot install: ${missing[*]} (the lab tests will skip)" >&2
  else
    export DEBIAN_FRONTEND=noninteractive
    # Postfix unconfigured: the lab writes its own configuration per run.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    echo "wireshark-common wireshark-common/install-setuid boolean false" \
      | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    echo "lab-deps: installed ${missing[*]}"
  fi
fi

if [ ! -x "$PYTHON" ]; then
  echo "lab-deps: no virtualenv at $VENV; create it first" >&2
  exit 0
fi
py_missing=()
for i in "${!PY_MODULES[@]}"; do
  "$PYTHON" -c "import ${PY_MODULES[$i]}" 2>/dev/null || py_missing+=("${PY_DISTS[$i]}")
done
if [ ${#py_missing[@]} -gt 0 ]; then
  "$PYTHON" -m pip install -q "${py_missing[@]}"
  echo "lab-deps: pip installed ${py_missing[*]}"
fi
