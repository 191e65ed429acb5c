#!/usr/bin/env bash
# Install the system packages smtpfw's tests and lab need (Debian, as root). Idempotent: does
# nothing when everything is present; never fails the build when not root (the tests that need
# a missing piece then say which).
set -euo pipefail
PACKAGES=(python3 python3-venv python3-pip python3-dev gcc libc6-dev make tshark tcpdump iproute2
          iptables openssl postfix swaks libnetfilter-queue-dev chromium conntrack ethtool
          wireshark-common nginx libnginx-mod-mail haproxy)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: not root, cannot install: ${missing[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Postfix, nginx and haproxy from the packages are configured for the lab by the tests
# themselves; keep the system instances stopped so they hold no port.
if command -v postfix >/dev/null 2>&1; then postfix stop >/dev/null 2>&1 || true; fi
for service in nginx haproxy; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$service" >/dev/null 2>&1 || true; fi
done
