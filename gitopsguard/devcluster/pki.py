"""Keys and token users for the dev cluster.

The token users exist so RBAC is exercised for real: ``admin`` is in ``system:masters``; the others are
ordinary users whose groups grant nothing until a Role or RoleBinding says so.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

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
