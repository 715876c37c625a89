"""Keys and token users for the dev cluster.

The token users exist so RBAC is exercised for real: ``admin`` is in ``system:masters``; the others are
ordinary users whose groups grant nothing until a Role or RoleBinding says so.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gitopsguard.errors import DevClusterError


@dataclass(frozen=True)
class DevUser:
    name: str
    groups: tuple[str, ...]
    token: str

    @property
    def context(self) -> str:
        return f"dev-{self.name}"


DEFAULT_USERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("admin", ("system:masters",)),
    ("alice", ("team-shop",)),
    ("bob", ("team-payments",)),
    ("carol", ("security-reviewers",)),
)


def new_users() -> tuple[DevUser, ...]:
    return tuple(DevUser(name, groups, secrets.token_hex(24)) for name, groups in DEFAULT_USERS)


def write_private(path: Path, text: str) -> None:
    """Write a file readable only by its owner, replacing any old one in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(partial, path)


def write_tokens_file(path: Path, users: tuple[DevUser, ...]) -> None:
    """kube-apiserver's ``--token-auth-file``: ``token,user,uid,"group1,group2"`` per line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    for index, user in enumerate(users, start=1):
        writer.writerow([user.token, user.name, f"uid-{index}", ",".join(user.groups)])
    write_private(path, buffer.getvalue())


def read_tokens_file(path: Path) -> tuple[DevUser, ...]:
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except OSError as error:
        raise DevClusterError(
            f"{path}: cannot read the dev cluster's token users ({error.strerror}); "
            "run `gitopsguard dev-cluster down` and `up` to recreate the cluster"
        ) from error
    return tuple(DevUser(row[1], tuple(g for g in row[3].split(",") if g), row[0]) for row in rows)


def ensure_service_account_keys(pki_dir: Path) -> tuple[Path, Path]:
    """An RSA key pair that signs service-account tokens; made once per cluster with openssl."""
    private, public = pki_dir / "sa.key", pki_dir / "sa.pub"
    if private.exists() and public.exists():
        return private, public
    pki_dir.mkdir(parents=True, exist_ok=True)
    _openssl(["genrsa", "-out", str(private), "2048"])
    private.chmod(0o600)
    _openssl(["rsa", "-in", str(private), "-pubout", "-out", str(public)])
    return private, public


def _openssl(arguments: list[str]) -> None:
    result = subprocess.run(["openssl", *arguments], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DevClusterError(f"openssl {arguments[0]} failed (exit {result.returncode}): {result.stderr.strip()}")


# The API server presents this client certificate to every admission webhook it calls (Kubernetes
# "Authenticate API servers to webhooks": an AdmissionConfiguration whose webhook plugins name a kubeconfig;
# its user entry "*" matches any webhook host). A webhook given WEBHOOK_CLIENT_CA (`gitopsguard run
# --admission-client-ca`) then serves the API server alone.
WEBHOOK_CLIENT_CA = "webhook-client-ca.crt"
WEBHOOK_CLIENT_NAME = "gitopsguard-dev-apiserver"  # the certificate's CN: `--admission-client-name` allows it
WEBHOOK_CLIENT_LIFETIME = timedelta(days=365)
ADMISSION_CONFIG = "admission-control.yaml"


def ensure_webhook_client(pki_dir: Path) -> Path:
    """The API server's ``--admission-control-config-file`` (made once per cluster, with its client certificate,
    key and kubeconfig beside it). The CA's key is never written: nothing else is ever signed by it."""
    config = pki_dir / ADMISSION_CONFIG
    if config.exists():
        return config
    pki_dir.mkdir(parents=True, exist_ok=True)
    ca, cert, key = webhook_client_certificates(datetime.now(UTC))
    (pki_dir / WEBHOOK_CLIENT_CA).write_bytes(ca)
    (pki_dir / "webhook-client.crt").write_bytes(cert)
    write_private(pki_dir / "webhook-client.key", key.decode())
    kubeconfig = pki_dir / "webhook-kubeconfig.yaml"
    write_private(kubeconfig, WEBHOOK_KUBECONFIG.format(pki=json.dumps(str(pki_dir))[1:-1]))
    write_private(config, ADMISSION_CONFIGURATION.format(kubeconfig=json.dumps(str(kubeconfig))))
    return config


def webhook_client_certificates(now: datetime, name: str = WEBHOOK_CLIENT_NAME) -> tuple[bytes, bytes, bytes]:
    """PEM: a new CA, a client certificate it signed (CN ``name``, clientAuth only), and that one's key."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"gitopsguard-dev-webhook-client-ca-{now:%Y%m%d}")])
    ca = (_certificate(ca_name, ca_name, ca_key.public_key(), now)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))  # fmt: skip
    client_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    client = (_certificate(client_name, ca_name, key.public_key(), now)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
              .sign(ca_key, hashes.SHA256()))  # fmt: skip
    pem = serialization.Encoding.PEM
    private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca.public_bytes(pem), client.public_bytes(pem), private


def _certificate(subject: x509.Name, issuer: x509.Name, key: Any, now: datetime) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key)
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + WEBHOOK_CLIENT_LIFETIME))  # fmt: skip


WEBHOOK_KUBECONFIG = """\
apiVersion: v1
kind: Config
users:
  - name: "*"
    user:
      client-certificate: "{pki}/webhook-client.crt"
      client-key: "{pki}/webhook-client.key"
"""

ADMISSION_CONFIGURATION = """\
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: ValidatingAdmissionWebhook
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: WebhookAdmissionConfiguration
      kubeConfigFile: {kubeconfig}
  - name: MutatingAdmissionWebhook
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: WebhookAdmissionConfiguration
      kubeConfigFile: {kubeconfig}
"""
