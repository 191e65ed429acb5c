"""A private Postfix instance for the server namespace: its own config, queue and mailbox.

What it does: writes main.cf/master.cf under a temp directory (own queue_directory,
data_directory, maillog_file; `inet_interfaces` = one lab address; STARTTLS with
`smtpd_tls_security_level = may`; every recipient at the lab domain delivered to one Maildir),
starts it with `postfix -c DIR start` inside the server namespace, waits until it listens,
reads what it delivered and logged, and stops it.
What it does not do: touch /etc/postfix or any system-wide Postfix.
"""

from __future__ import annotations

import os
import pwd
import time
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path

from . import addresses as A
from .pki import TlsFiles
from .shell import LabError, run

START_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.05

# Every daemon unprivileged and unchrooted (the instance lives in a temp dir, not a chroot tree).
MASTER_CF = """\
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass(frozen=True, slots=True)
class PostfixPaths:
    base: Path

    @property
    def config(self) -> Path:
        return self.base / "etc"

    @property
    def queue(self) -> Path:
        return self.base / "queue"

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def maildir(self) -> Path:
        return self.base / "mail" / "inbox"

    @property
    def maillog(self) -> Path:
        return self.base / "maillog"


def main_cf(paths: PostfixPaths, address: str, tls: TlsFiles, uid: int, gid: int) -> str:
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": paths.queue,
        "data_directory": paths.data,
        "maillog_file": paths.maillog,
        "maillog_file_prefixes": paths.base,
        "myhostname": A.POSTFIX_HOSTNAME,
        "mydomain": A.LAB_DOMAIN,
        "myorigin": "$mydomain",
        "mydestination": A.LAB_DOMAIN,
        "mynetworks": "127.0.0.0/8",
        "inet_interfaces": address,
        "inet_protocols": "ipv4",
        "smtpd_banner": "$myhostname ESMTP $mail_name (Debian/GNU)",
        "smtpd_peername_lookup": "no",
        "smtp_dns_support_level": "disabled",
        "biff": "no",
        "alias_maps": "",
        "alias_database": "",
        # Any local part at the lab domain is accepted and lands in one Maildir.
        "local_recipient_maps": "",
        "local_transport": "virtual",
        "virtual_mailbox_domains": "",
        "virtual_mailbox_base": paths.base / "mail",
        "virtual_mailbox_maps": "static:inbox/",
        "virtual_uid_maps": f"static:{uid}",
        "virtual_gid_maps": f"static:{gid}",
        "virtual_minimum_uid": "1",
        "smtpd_tls_cert_file": tls.cert,
        "smtpd_tls_key_file": tls.key,
        "smtpd_tls_security_level": "may",
        "smtpd_tls_loglevel": "1",
    }
    return "".join(f"{k} = {v}\n" for k, v in settings.items())


class PostfixInstance:
    """One Postfix, configured under `base`, listening on `address` in `netns`."""

    def __init__(self, base: Path, netns: str, address: str, tls: TlsFiles) -> None:
        self.paths = PostfixPaths(base)
        self.netns = netns
        self.address = address
        self.tls = tls

    def configure(self) -> None:
        try:
            owner = pwd.getpwnam("postfix")
        except KeyError as exc:
            raise LabError("the 'postfix' user is missing (is Postfix installed?)") from exc
        p = self.paths
        for d in (p.base, p.config, p.queue, p.data, p.maildir.parent):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o755)
        for d in (p.data, p.maildir.parent):
            os.chown(d, owner.pw_uid, owner.pw_gid)
        # The TLS key must be readable by smtpd/tlsmgr, which run as the postfix user.
        os.chown(self.tls.key, owner.pw_uid, owner.pw_gid)
        (p.config / "master.cf").write_text(MASTER_CF)
        (p.config / "main.cf").write_text(
            main_cf(p, self.address, self.tls, owner.pw_uid, owner.pw_gid)
        )

    def start(self) -> None:
        self.configure()
        run(["postfix", "-c", str(self.paths.config), "start"], netns=self.netns)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.listening():
                return
            time.sleep(POLL_SECONDS)
        raise LabError(f"Postfix did not listen on {self.address}:25; log: {self.log()[-2000:]}")

    def listening(self) -> bool:
        out = run(["ss", "-Hltn"], netns=self.netns, check=False).stdout.decode()
        return f"{self.address}:{A.SMTP_PORT} " in out

    def stop(self) -> None:
        run(["postfix", "-c", str(self.paths.config), "stop"], netns=self.netns, check=False)

    def log(self) -> str:
        try:
            return self.paths.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def delivered(self) -> dict[str, bytes]:
        return read_maildir(self.paths.maildir)


def read_maildir(maildir: Path) -> dict[str, bytes]:
    """Messages in a Maildir keyed by their Message-ID (angle brackets stripped)."""
    found: dict[str, bytes] = {}
    for sub in ("new", "cur"):
        folder = maildir / sub
        if not folder.is_dir():
            continue
        for item in sorted(folder.iterdir()):
            raw = item.read_bytes()
            mid = str(message_from_bytes(raw).get("Message-ID", "")).strip().strip("<>")
            found[mid] = raw
    return found
