"""A throwaway PostgreSQL that speaks only TLS over TCP, with a certificate from a test CA made here.

The CA and the server certificate are generated per session with ``cryptography`` (EC P-256): the server's
certificate names ``localhost`` and ``127.0.0.1`` (subject alternative names), as an Aurora endpoint's names
its host. A second, unrelated CA stands for "the wrong CA". ``pg_hba.conf`` accepts TCP connections only with
TLS (``hostssl``) and rejects the rest, so a connection that works there really is encrypted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests import pg

HBA = """\
local all all trust
hostssl all all 127.0.0.1/32 trust
hostssl all all ::1/128 trust
hostnossl all all all reject
"""


@dataclass(frozen=True)
class TlsServer:
    """A running TLS-only cluster and the PEM files of its CA and of an unrelated one."""

    cluster: pg.Cluster
    ca: Path  # signed the server's certificate
    wrong_ca: Path  # signed nothing the server has

    @property
    def port(self) -> int:
        return self.cluster.port

    def url(self, dbname: str = "postgres", host: str = "127.0.0.1") -> str:
        """A URL without TLS keywords: the settings under test add them."""
        return f"postgresql://postgres@{host}:{self.port}/{dbname}"

    def admin_url(self, dbname: str = "postgres") -> str:
        """For fixtures' own set-up: verified against the test CA."""
        return f"{self.url(dbname, 'localhost')}?sslmode=verify-full&sslrootcert={self.ca}"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA certificate, valid from yesterday for a year."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # key_cert_sign, crl_sign
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_certificate(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, names: tuple[str, ...] = ("localhost", "127.0.0.1")
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server certificate signed by ``ca`` whose subject alternative names are ``names`` (DNS or IP)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def write_certificates(folder: Path) -> tuple[Path, Path, Path, Path]:
    """``(ca.pem, wrong-ca.pem, server.crt, server.key)`` in ``folder``; the key 0600 as PostgreSQL demands,
    owned by the ``postgres`` user when the tests run as root (the server runs as that user)."""
    ca_key, ca = make_ca("fintech-etl test CA")
    _, wrong = make_ca("fintech-etl unrelated CA")
    server_key, server = make_server_certificate(ca_key, ca)
    paths = folder / "ca.pem", folder / "wrong-ca.pem", folder / "server.crt", folder / "server.key"
    paths[0].write_bytes(_pem(ca))
    paths[1].write_bytes(_pem(wrong))
    paths[2].write_bytes(_pem(server))
    paths[3].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    paths[3].chmod(0o600)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (folder, *paths):
            os.chown(path, user.pw_uid, user.pw_gid)
    return paths


@contextlib.contextmanager
def running_tls_server() -> Iterator[TlsServer]:
    folder = Path(tempfile.mkdtemp(prefix="etl-tls-"))
    folder.chmod(0o755)  # the CA files are read by the tests, the key only by the server
    try:
        ca, wrong_ca, cert, key = write_certificates(folder)
        options = f"-c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"
        with pg.running_cluster(options, HBA) as cluster:
            yield TlsServer(cluster, ca, wrong_ca)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
