"""Writing a kubeconfig for the dev cluster: one context per token user, ``dev-admin`` current."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from gitopsguard.devcluster.pki import DevUser, write_private

CLUSTER_NAME = "gitopsguard-dev"


def render_kubeconfig(server: str, ca_pem: bytes, users: tuple[DevUser, ...], current: str) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode("ascii"),
                },
            }
        ],
        "users": [{"name": user.name, "user": {"token": user.token}} for user in users],
        "contexts": [{"name": user.context, "context": {"cluster": CLUSTER_NAME, "user": user.name}} for user in users],
        "current-context": current,
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_kubeconfig(path: Path, server: str, ca_cert: Path, users: tuple[DevUser, ...]) -> None:
    admin = next(user for user in users if "system:masters" in user.groups)
    write_private(path, render_kubeconfig(server, ca_cert.read_bytes(), users, admin.context))
