"""Throwaway certificates for the test servers.

One trusted CA (trustme) issues the good certificate, an expired one and one for the wrong
host; a separate self-signed certificate stands for the home-made certificates IT departments
sometimes install.  Clients trust only the CA file, never the system store, so nothing here can
leak into a real connection.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class TestCertificates:
    __test__ = False  # not a test class, despite its name

    ca_file: Path
    good: CertPair
    expired: CertPair
    wrong_host: CertPair
    self_signed: CertPair

    def by_name(self, name: str) -> CertPair:
        pair = getattr(self, name)
        assert isinstance(pair, CertPair)
        return pair


# The names the good certificate is valid for: tests connect to these.
GOOD_IDENTITIES = ("localhost", "127.0.0.1", "mail.cadence.test")


def _write_leaf(leaf: trustme.LeafCert, directory: Path, name: str) -> CertPair:
    cert = directory / f"{name}.crt"
    key = directory / f"{name}.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    for pem in leaf.cert_chain_pems[1:]:
        with cert.open("ab") as fh:
            fh.write(pem.bytes())
    leaf.private_key_pem.write_to_path(str(key))
    return CertPair(cert, key)


def _self_signed(directory: Path) -> CertPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pair = CertPair(directory / "self_signed.crt", directory / "self_signed.key")
    pair.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pair


def make_certificates(directory: Path) -> TestCertificates:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Cadence test CA")
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    now = dt.datetime.now(dt.UTC)
    good = _write_leaf(ca.issue_cert(*GOOD_IDENTITIES), directory, "good")
    expired = _write_leaf(
        ca.issue_cert(
            *GOOD_IDENTITIES,
            not_before=now - dt.timedelta(days=60),
            not_after=now - dt.timedelta(days=30),
        ),
        directory,
        "expired",
    )
    wrong_host = _write_leaf(ca.issue_cert("mail.example.net"), directory, "wrong_host")
    certs = TestCertificates(ca_file, good, expired, wrong_host, _self_signed(directory))
    for path in directory.iterdir():
        path.chmod(0o644)
    return certs
