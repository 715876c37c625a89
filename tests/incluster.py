"""gitopsguard installed the way users install it (``kubectl apply -k manifests/``), on the dev cluster's node.

``write_overlay`` writes a kustomize overlay over the shipped ``manifests/`` that changes only what a test
install must: the image (``gitopsguard:dev``, imported into the node by hand, so ``imagePullPolicy: Never``),
the repository (served by ``GitDaemon`` on the node's bridge), the trust file Secret, the commit to trust
from, and the namespace annotation that lets its Pods past the suite's node taint. Everything else (PSS
restricted security contexts, read-only root, probes, RBAC, two replicas with leader election) is as shipped.

Why ``git daemon`` on the bridge: a Pod reaches the machine's bridge address (10.244.0.1) and nothing outside,
no registry or Git host is reachable, and a hostPath repository is refused by PSS restricted. git:// needs no
credential, so the install keeps the shipped ``gitopsguard-git`` Secret optional and absent.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from gitopsguard.devcluster.node_config import BRIDGE_IP

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"
NAMESPACE = "gitopsguard-system"
IMAGE = "gitopsguard:dev"
DEFAULT_TOLERATIONS = "scheduler.alpha.kubernetes.io/defaultTolerations"


@dataclass(frozen=True)
class InstallSettings:
    repo_url: str
    path: str
    trust_file: Path
    trust_from: str
    toleration_key: str  # the suite's node taint (tests/integration/conftest.py)
    extra_args: tuple[str, ...] = ()


def write_overlay(directory: Path, settings: InstallSettings) -> Path:
    """A kustomization in ``directory`` over the shipped manifests; ``kubectl apply -k directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "trust.yaml").write_bytes(settings.trust_file.read_bytes())
    args = [f"--trust-from={settings.trust_from}", *settings.extra_args]
    deployment_patch = [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": IMAGE},
        {"op": "add", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "Never"},
        *({"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": arg} for arg in args),
    ]
    tolerations = [{"key": settings.toleration_key, "operator": "Exists", "effect": "NoSchedule"}]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(MANIFESTS, directory)],  # kustomize refuses an absolute root
        "secretGenerator": [
            {"name": "gitopsguard-trust", "namespace": NAMESPACE, "behavior": "replace", "files": ["trust.yaml"]}
        ],
        "patches": [
            _patch("apps", "v1", "Deployment", "gitopsguard", deployment_patch),
            _patch("", "v1", "ConfigMap", "gitopsguard-config", [
                {"op": "replace", "path": "/data/GITOPSGUARD_REPO", "value": settings.repo_url},
                {"op": "replace", "path": "/data/GITOPSGUARD_PATH", "value": settings.path},
            ]),
            _patch("", "v1", "Namespace", NAMESPACE, [
                {"op": "add", "path": "/metadata/annotations", "value": {DEFAULT_TOLERATIONS: json.dumps(tolerations)}}
            ]),
        ],
    }  # fmt: skip
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return directory


def _patch(
    group: str, version: str, kind: str, name: str, operations: Sequence[Mapping[str, object]]
) -> dict[str, object]:
    target = {"group": group, "version": version, "kind": kind, "name": name}
    return {"target": target, "patch": yaml.safe_dump([dict(o) for o in operations])}


@dataclass(frozen=True)
class GitDaemon:
    """``git daemon`` serving every repository under ``base`` on the bridge, pushes allowed (for backups)."""

    base: Path
    port: int

    def url(self, name: str) -> str:
        return f"git://{BRIDGE_IP}:{self.port}/{name}"


@contextmanager
def git_daemon(base: Path) -> Iterator[GitDaemon]:
    port = _free_port()
    argv = ["git", "daemon", "--reuseaddr", f"--listen={BRIDGE_IP}", f"--port={port}", f"--base-path={base}",
            "--export-all", "--enable=receive-pack", "--informative-errors", str(base)]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, process)
        yield GitDaemon(base, port)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((BRIDGE_IP, 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert process.poll() is None, f"git daemon on {BRIDGE_IP}:{port} exited with {process.returncode}"
        try:
            socket.create_connection((BRIDGE_IP, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"git daemon on {BRIDGE_IP}:{port} not listening after 10 s")
