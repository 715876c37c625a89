"""The webhook's TLS: a CA and a serving certificate made with ``cryptography`` (no openssl subprocess),
kept in the Secret ``gitopsguard-webhook-tls`` in the controller's namespace, so that every replica serves
with the same certificate and the configurations' ``caBundle`` trusts all of them.

Rotation happens well before expiry: the serving certificate (90 days) when under 30 days remain or when the
hosts it must name change; the CA (1 year) when under 60 days remain. The bundle keeps the previous CA
while it is valid, so replicas still serving with the old certificate are trusted during the change-over.
Replicas race through the Secret's resourceVersion: the loser of a write reads the winner's.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import AdmissionError, ClusterError, ConflictError, NotFoundError, UnreachableError

SECRET = "gitopsguard-webhook-tls"  # noqa: S105  (a Secret's name, not a password)
CA_LIFETIME, CA_RENEW = timedelta(days=365), timedelta(days=60)
SERVING_LIFETIME, SERVING_RENEW = timedelta(days=90), timedelta(days=30)
BACKDATE = timedelta(minutes=5)  # tolerate clocks a little behind ours


@dataclass(frozen=True)
class Certificates:
    ca: bytes  # PEM: the CA that signed the serving certificate
    ca_key: bytes
    cert: bytes
    key: bytes
    previous_ca: bytes = b""  # PEM: the CA before a rotation, trusted until it expires

    @property
    def bundle(self) -> bytes:
        """The caBundle for the configurations: the current CA, and the previous one while it is valid."""
        return self.ca + self.previous_ca

    def context(self) -> ssl.SSLContext:
        """A TLS 1.2+ server context with this certificate (the key passes through a private temp file that
        is deleted at once: ``ssl`` reads keys from files only)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        with tempfile.TemporaryDirectory(prefix="gitopsguard-tls-") as folder:
            path = Path(folder) / "serving.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.key + self.cert)
            context.load_cert_chain(path)
        return context


def issue(hosts: Sequence[str], now: datetime, previous: Certificates | None = None) -> Certificates:
    """Certificates for ``hosts`` (DNS names or IP addresses): the CA of ``previous`` is kept while it has
    more than CA_RENEW left, else a new one is made (and the old one kept in the bundle while valid)."""
    if previous is not None and _remaining(previous.ca, now) > CA_RENEW:
        ca_pem, ca_key_pem, old = previous.ca, previous.ca_key, previous.previous_ca
        if old and _remaining(old, now) <= timedelta(0):
            old = b""
    else:
        ca_pem, ca_key_pem = _new_ca(now)
        old = previous.ca if previous is not None and _remaining(previous.ca, now) > timedelta(0) else b""
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)  # noqa: S101  (we made it)
    key = ec.generate_private_key(ec.SECP256R1())
    names = [_name(h) for h in dict.fromkeys(hosts)]
    cert = (
        _builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64])]), key, now, SERVING_LIFETIME)
        .issuer_name(ca.subject)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Certificates(ca_pem, ca_key_pem, cert.public_bytes(serialization.Encoding.PEM), _pem(key), old)


def rotation_due(certificates: Certificates, hosts: Sequence[str], now: datetime) -> str:
    """Why these certificates must be renewed now ("" when they need not)."""
    cert = x509.load_pem_x509_certificate(certificates.cert)
    if _remaining(certificates.ca, now) <= CA_RENEW:
        return "the CA expires within 60 days"
    if cert.not_valid_after_utc - now <= SERVING_RENEW:
        return "the serving certificate expires within 30 days"
    try:
        named = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        named = set()
    if not {_name(h) for h in hosts} <= named:
        return "the serving certificate does not name every host the API server calls"
    return ""


def _remaining(ca_pem: bytes, now: datetime) -> timedelta:
    return x509.load_pem_x509_certificate(ca_pem).not_valid_after_utc - now


def _new_ca(now: datetime) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"gitopsguard-webhook-ca-{now:%Y%m%d%H%M%S}")])
    cert = (
        _builder(name, key, now, CA_LIFETIME)
        .issuer_name(name)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem(key)


def _builder(subject: x509.Name, key: ec.EllipticCurvePrivateKey, now: datetime, life: timedelta) -> Any:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + life)
    )


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


def _name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


class CertificateStore:
    """The certificates in the Secret, made or rotated when due (``ensure``)."""

    def __init__(self, raw: RawApi, namespace: str) -> None:
        self._raw, self._namespace = raw, namespace
        self._path = f"/api/v1/namespaces/{namespace}/secrets"

    def ensure(self, hosts: Sequence[str], now: datetime) -> Certificates:
        """The current certificates, renewed first when due; AdmissionError when the Secret cannot be used."""
        for _ in range(3):  # a conflict means another replica wrote first: use what it wrote
            secret = self._read()
            current = _decoded(secret) if secret is not None else None
            if current is not None and not rotation_due(current, hosts, now):
                return current
            fresh = issue(hosts, now, current)
            if self._write(fresh, secret):
                return fresh
        raise AdmissionError(f"Secret {self._namespace}/{SECRET}: kept changing under us; retry")

    def _read(self) -> dict[str, Any] | None:
        """The Secret, or None when there is none yet."""
        where = f"Secret {self._namespace}/{SECRET}"
        try:
            return self._raw.get(f"{self._path}/{SECRET}", where)
        except NotFoundError:
            return None
        except UnreachableError:
            raise
        except ClusterError as error:
            raise AdmissionError(f"{where}: cannot read it: {str(error).removeprefix(where + ': ')}") from error

    def _write(self, certificates: Certificates, old: dict[str, Any] | None) -> bool:
        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        data = {"ca.crt": b64(certificates.ca), "ca.key": b64(certificates.ca_key), "tls.crt": b64(certificates.cert),
                "tls.key": b64(certificates.key), "previous-ca.crt": b64(certificates.previous_ca)}  # fmt: skip
        metadata: dict[str, Any] = {"name": SECRET, "namespace": self._namespace,
                                    "labels": {"app.kubernetes.io/name": "gitopsguard"}}  # fmt: skip
        if old is not None:
            metadata["resourceVersion"] = old["metadata"]["resourceVersion"]
        body = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": metadata, "data": data}
        method, path = ("PUT", f"{self._path}/{SECRET}") if old is not None else ("POST", self._path)
        where = f"Secret {self._namespace}/{SECRET}"
        try:
            self._raw.call(method, path, where, body=body)
        except ConflictError:
            return False
        except UnreachableError:
            raise
        except ClusterError as error:
            raise AdmissionError(f"{where}: cannot write it: {str(error).removeprefix(where + ': ')}") from error
        return True


def _decoded(secret: dict[str, Any]) -> Certificates | None:
    """The certificates in the Secret; None when any part is missing or unreadable (they are made again)."""
    data = secret.get("data") or {}
    try:
        ca, ca_key, cert, key, previous = (base64.b64decode(data.get(k) or "") for k in
                                           ("ca.crt", "ca.key", "tls.crt", "tls.key", "previous-ca.crt"))  # fmt: skip
        certificates = Certificates(ca, ca_key, cert, key, previous)
        x509.load_pem_x509_certificate(certificates.cert)
        x509.load_pem_x509_certificate(certificates.ca)
        serialization.load_pem_private_key(certificates.ca_key, None)
        certificates.context()  # the serving key belongs to its certificate
    except (ValueError, TypeError, ssl.SSLError):
        return None
    return certificates
