"""Keys the lab makes at setup: a self-signed TLS certificate per server and a DKIM key pair.

What it does: calls openssl to write a certificate/key pair, and an RSA key whose public half is
published as a DKIM TXT record value (RFC 6376 §3.6.1) that the tests hand to dkimpy instead of
DNS. What it does not do: sign or verify anything.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from .shell import run

# RFC 8301 §3.2: signers SHOULD use RSA keys of at least 2048 bits.
RSA_BITS = 2048
CERT_DAYS = 2


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A server certificate and its private key, PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A DKIM signing key and the selector/domain it is published under."""

    private_pem: bytes
    public_der_b64: str
    selector: str
    domain: str

    @property
    def dns_name(self) -> bytes:
        return f"{self.selector}._domainkey.{self.domain}.".encode()

    @property
    def txt_record(self) -> bytes:
        """RFC 6376 §3.6.1 key record."""
        return f"v=DKIM1; k=rsa; p={self.public_der_b64}".encode()

    def dnsfunc(self, name: bytes | str, timeout: int = 5) -> bytes | None:
        """A resolver for dkimpy that knows exactly this one key."""
        wanted = self.dns_name.rstrip(b".")
        asked = (name.encode() if isinstance(name, str) else name).rstrip(b".")
        return self.txt_record if asked == wanted else None


def make_tls_certificate(directory: Path, common_name: str) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    cert = directory / f"{common_name}.crt"
    key = directory / f"{common_name}.key"
    run(
        ["openssl", "req", "-x509", "-newkey", f"rsa:{RSA_BITS}", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", str(CERT_DAYS),
         "-subj", f"/CN={common_name}", "-addext", f"subjectAltName=DNS:{common_name}"]
    )  # fmt: skip
    key.chmod(0o600)
    return TlsFiles(cert=cert, key=key)


def make_dkim_key(directory: Path, selector: str, domain: str) -> DkimKey:
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / f"dkim-{selector}.key"
    run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{RSA_BITS}",
         "-out", str(private)]
    )  # fmt: skip
    der = run(["openssl", "pkey", "-in", str(private), "-pubout", "-outform", "DER"]).stdout
    return DkimKey(
        private_pem=private.read_bytes(),
        public_der_b64=base64.b64encode(der).decode(),
        selector=selector,
        domain=domain,
    )
