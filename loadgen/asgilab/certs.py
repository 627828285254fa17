"""TLS material made at start-up: a throw-away CA and one leaf for every lab host name."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class CertPaths:
    ca: Path
    cert: Path  # leaf certificate
    key: Path  # leaf key, PKCS#8 (Granian accepts nothing else)
    bundle: Path  # cert + key in one file (HAProxy's crt)

    def exist(self) -> bool:
        return all(p.exists() for p in (self.ca, self.cert, self.key, self.bundle))


def cert_paths(directory: Path) -> CertPaths:
    return CertPaths(
        directory / "ca.pem", directory / "cert.pem", directory / "key.pem", directory / "bundle.pem"
    )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ensure(directory: Path, hostnames: list[str]) -> CertPaths:
    """Creates the CA and leaf unless they exist and already cover every host name."""
    out = cert_paths(directory)
    wanted = sorted(set(hostnames) | {"localhost", "127.0.0.1", "::1"})
    if out.exist():
        leaf = x509.load_pem_x509_certificate(out.cert.read_bytes())
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have = {str(v) for v in san.get_values_for_type(x509.DNSName)}
        have |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
        if set(wanted) <= have and leaf.not_valid_after_utc > dt.datetime.now(dt.UTC):
            return out
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    later = now + dt.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("asgi-lab CA"))
        .issuer_name(_name("asgi-lab CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for host in wanted:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    cert_pem = leaf.public_bytes(pem) + ca.public_bytes(pem)
    out.ca.write_bytes(ca.public_bytes(pem))
    out.cert.write_bytes(cert_pem)
    out.key.write_bytes(key_pem)
    out.bundle.write_bytes(cert_pem + key_pem)
    for p in (out.ca, out.cert, out.key, out.bundle):
        p.chmod(0o644)  # proxies drop privileges (nginx workers, container users) and must read them
    return out
