"""gitopsguard installed the way users install it (``kubectl apply -k manifests/``), on the dev cluster's node.

``write_overlay`` writes a kustomize overlay over the shipped ``manifests/`` that changes only what a local
install must: the image (``gitopsguard:dev``, imported into the node by hand, so ``imagePullPolicy: Never``),
the repository (served by ``git daemon`` on the node's bridge), the trust file Secret, the commit to trust
from, extra arguments, for a root of Units ``--root`` in place of ``--path`` and the operator's files beside
the manifests (``operator/units-rbac.yaml``), and (for the test suite) the namespace annotation that lets
its Pods past the suite's node taint. Everything else (PSS restricted security contexts, read-only root,
probes, RBAC, two replicas with leader election) is as shipped. `make demo` and
``tests/integration/test_incluster_install.py`` share it.

Why ``git daemon`` on the bridge: a Pod reaches the machine's bridge address (10.244.0.1) and nothing outside,
no registry or Git host is reachable, and a hostPath repository is refused by PSS restricted. git:// needs no
credential, so the install keeps the shipped ``gitopsguard-git`` Secret optional and absent. It listens on the
bridge alone, never on the machine's other addresses: it serves without authentication.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from gitopsguard.devcluster.image import SOURCE_ROOT
from gitopsguard.devcluster.node_config import BRIDGE_IP
from gitopsguard.errors import DevClusterError

MANIFESTS = SOURCE_ROOT / "manifests"
NAMESPACE = "gitopsguard-system"
IMAGE = "gitopsguard:dev"
DEFAULT_TOLERATIONS = "scheduler.alpha.kubernetes.io/defaultTolerations"
LISTEN_WITHIN = 10.0  # seconds for git daemon to listen


@dataclass(frozen=True)
class InstallSettings:
    repo_url: str
    path: str
    trust_file: Path
    trust_from: str
    toleration_key: str = ""  # a node taint the namespace's Pods tolerate (the test suite's); "": none
    extra_args: tuple[str, ...] = ()
    config: tuple[tuple[str, str], ...] = ()  # more gitopsguard-config entries, e.g. GITOPSGUARD_APPROVAL_MODE
    readiness_period: int = 0  # seconds between readiness probes; 0: as shipped (the demo's rollout waits on them)
    root: bool = False  # ``path`` is a root of Units: `run --root` instead of the shipped `run --path`
    resources: tuple[Path, ...] = ()  # more manifests installed beside manifests/ (operator/units-rbac.yaml)


def write_overlay(directory: Path, settings: InstallSettings) -> Path:
    """A kustomization in ``directory`` over the shipped manifests; ``kubectl apply -k directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "trust.yaml").write_bytes(settings.trust_file.read_bytes())
    extra = _copy_resources(directory, settings.resources)
    args = [f"--trust-from={settings.trust_from}", *settings.extra_args]
    deployment_patch: list[Mapping[str, object]] = [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": IMAGE},
        {"op": "add", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "Never"},
        *({"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": arg} for arg in args),
    ]
    if settings.root:
        deployment_patch += _root_instead_of_path()
    if settings.readiness_period:
        deployment_patch.append({"op": "replace", "value": settings.readiness_period,
                                 "path": "/spec/template/spec/containers/0/readinessProbe/periodSeconds"})  # fmt: skip
    patches = [
        _patch("apps", "v1", "Deployment", "gitopsguard", deployment_patch),
        _patch("", "v1", "ConfigMap", "gitopsguard-config", [
            {"op": "replace", "path": "/data/GITOPSGUARD_REPO", "value": settings.repo_url},
            {"op": "replace", "path": "/data/GITOPSGUARD_PATH", "value": settings.path},
            *({"op": "add", "path": f"/data/{key}", "value": value} for key, value in settings.config),
        ]),
    ]  # fmt: skip
    if settings.toleration_key:
        tolerations = [{"key": settings.toleration_key, "operator": "Exists", "effect": "NoSchedule"}]
        annotations = {DEFAULT_TOLERATIONS: json.dumps(tolerations)}
        patches.append(_patch("", "v1", "Namespace", NAMESPACE, [
            {"op": "add", "path": "/metadata/annotations", "value": annotations}]))  # fmt: skip
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(MANIFESTS, directory), *extra],  # kustomize refuses an absolute root
        "secretGenerator": [
            {"name": "gitopsguard-trust", "namespace": NAMESPACE, "behavior": "replace", "files": ["trust.yaml"]}
        ],
        "patches": patches,
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return directory


PATH_ARG = "--path=$(GITOPSGUARD_PATH)"


def _root_instead_of_path() -> list[Mapping[str, object]]:
    """The shipped ``--path=$(GITOPSGUARD_PATH)`` argument made ``--root=...``, by its index; the patch tests the
    value first, so a manifests/ that moved the argument fails the apply rather than patching another one."""
    shipped = yaml.safe_load_all((MANIFESTS / "controller.yaml").read_text())
    deployment = next(d for d in shipped if d and d.get("kind") == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    if PATH_ARG not in args:
        raise DevClusterError(f"{MANIFESTS / 'controller.yaml'}: the controller's arguments hold no {PATH_ARG} "
                              "to serve a root of Units with; update devcluster/install.py to match")  # fmt: skip
    where = f"/spec/template/spec/containers/0/args/{args.index(PATH_ARG)}"
    return [{"op": "test", "path": where, "value": PATH_ARG},
            {"op": "replace", "path": where, "value": "--root=$(GITOPSGUARD_PATH)"}]  # fmt: skip


def _copy_resources(directory: Path, resources: Sequence[Path]) -> list[str]:
    """Each file into ``directory`` (kustomize loads nothing outside an overlay's folder), by its own name."""
    names = [source.name for source in resources]
    if len(set(names)) != len(names) or {"kustomization.yaml", "trust.yaml"} & set(names):
        raise DevClusterError(f"{directory}: resources {names} clash by file name; give each its own name")
    for source in resources:
        (directory / source.name).write_bytes(source.read_bytes())
    return names


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
    pid: int

    def url(self, name: str) -> str:
        return f"git://{BRIDGE_IP}:{self.port}/{name}"


def start_git_daemon(base: Path, *, log: Path | None = None, detached: bool = False, push: bool = True) -> GitDaemon:
    """``git daemon`` on a free port of the bridge, listening when this returns. ``detached``: in a session of
        its own, so that it outlives this process (the demo's; ``stop_git_daemon`` ends it). ``push``: pushes are
    taken (the backup repository's); without it the repositories are read-only to every Pod on the bridge."""
    port = _free_port()
    pushes = ["--enable=receive-pack"] if push else []
    argv = ["git", "daemon", "--reuseaddr", f"--listen={BRIDGE_IP}", f"--port={port}", f"--base-path={base}",
            "--export-all", *pushes, "--informative-errors", str(base)]  # fmt: skip
    output = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen(argv, stdout=output, stderr=output, stdin=subprocess.DEVNULL,
                                   start_new_session=detached)  # fmt: skip
    finally:
        if log is not None and not isinstance(output, int):
            output.close()
    try:
        _wait_listening(port, process)
    except DevClusterError:
        stop_git_daemon(process.pid)
        raise
    return GitDaemon(base, port, process.pid)


def is_git_daemon(pid: int) -> bool:
    """Whether process ``pid`` is a ``git daemon`` (a pid read from a file may have been recycled, or edited)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"daemon" in cmdline and cmdline[0].endswith(b"git")


def stop_git_daemon(pid: int) -> None:
    """End the git daemon ``pid`` if it is still one (a recycled pid is left alone), and reap it if ours."""
    if pid <= 1 or not is_git_daemon(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
        except ChildProcessError:  # not our child: another process reaps it
            pass
        time.sleep(0.05)


@contextmanager
def git_daemon(base: Path) -> Iterator[GitDaemon]:
    daemon = start_git_daemon(base)
    try:
        yield daemon
    finally:
        stop_git_daemon(daemon.pid)


def _free_port() -> int:
    with socket.socket() as probe:
        try:
            probe.bind((BRIDGE_IP, 0))
        except OSError as error:
            raise DevClusterError(f"{BRIDGE_IP}: the node's bridge address is not here ({error}); start the dev "
                                  "cluster with its node: gitopsguard dev-cluster up --node") from error  # fmt: skip
        return int(probe.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + LISTEN_WITHIN
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevClusterError(f"git daemon on {BRIDGE_IP}:{port}: exited with {process.returncode}; is git "
                                  "installed with its daemon (Debian's git package has it)?")  # fmt: skip
        try:
            socket.create_connection((BRIDGE_IP, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise DevClusterError(f"git daemon on {BRIDGE_IP}:{port}: not listening after {LISTEN_WITHIN:.0f} s")
