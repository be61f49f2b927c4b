"""TLS material for the local development PBX: a private CA and a server certificate it signs.

The CA is generated per PBX (never shipped, never in the repository) and kept in the PBX's own state
directory; the agent verifies Asterisk's certificate against it (``ari.ca_file``). A production PBX
uses certificates from the site's own CA instead (docs/transport-security.md).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")
VALID_DAYS = 825
RENEW_BEFORE_DAYS = 14


@dataclass(frozen=True)
class TlsFiles:
    """Where the files are (on the host side)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "asterisk.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "asterisk.key"

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.ca_cert, self.ca_key, self.server_cert, self.server_key))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ari-agent development PBX"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def make_ca(common_name: str = "ari-agent development CA", *, now: dt.datetime | None = None) \
        -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_server_cert(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, *,
                     names: tuple[str, ...] = SERVER_NAMES, ips: tuple[str, ...] = SERVER_IPS,
                     now: dt.datetime | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0] if names else ips[0])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def write_ca(directory: Path, common_name: str = "ari-agent development CA") -> TlsFiles:
    """A fresh CA (and a server certificate for 127.0.0.1/localhost) written to ``directory``."""
    files = TlsFiles(directory)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_cert, ca_key = make_ca(common_name)
    cert, key = make_server_cert(ca_cert, ca_key)
    _write_key(files.ca_key, ca_key)
    _write_key(files.server_key, key)
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def needs_renewal(files: TlsFiles, *, now: dt.datetime | None = None) -> bool:
    """True when a file is missing, unreadable, or a certificate expires within RENEW_BEFORE_DAYS."""
    if not files.complete():
        return True
    now = now or dt.datetime.now(dt.UTC)
    try:
        for path in (files.ca_cert, files.server_cert):
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            if cert.not_valid_after_utc - now < dt.timedelta(days=RENEW_BEFORE_DAYS):
                return True
    except (OSError, ValueError):
        return True
    return False


def ensure_tls(directory: Path) -> TlsFiles:
    """The PBX's TLS files in ``directory``: kept while valid, generated (CA and server) otherwise."""
    files = TlsFiles(directory)
    if needs_renewal(files):
        return write_ca(directory)
    return files
