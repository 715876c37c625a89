"""The node's processes (kube-scheduler, containerd, kube-proxy, kubelet): command lines and health checks.

Start order matters: containerd before the kubelet, and kube-proxy before the kubelet so that no Pod runs
before Service IPs are routed (the guard in ``node_net.py`` rejects them meanwhile, rather than letting them
leave the machine).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from gitopsguard.devcluster.node_config import (
    KUBE_PROXY_HEALTHZ_PORT,
    KUBELET_HEALTHZ_PORT,
    PAUSE_IMAGE,
)
from gitopsguard.devcluster.paths import CacheLayout, StateLayout
from gitopsguard.devcluster.ports import LOOPBACK
from gitopsguard.devcluster.process import ComponentSpec
from gitopsguard.errors import DevClusterError, MissingDependencyError

SCHEDULER = "kube-scheduler"
CONTAINERD = "containerd"
KUBE_PROXY = "kube-proxy"
KUBELET = "kubelet"
NODE_COMPONENTS = (SCHEDULER, CONTAINERD, KUBE_PROXY, KUBELET)


def node_name() -> str:
    """The machine's hostname, which must resolve to loopback: the API server reaches the kubelet by it
    (logs, exec, port-forward), and the kubelet listens on 127.0.0.1 only."""
    name = socket.gethostname().lower()
    try:
        address = socket.gethostbyname(name)
    except OSError as error:
        raise DevClusterError(
            f"hostname {name!r}: does not resolve ({error}); add `127.0.0.1 {name}` to /etc/hosts"
        ) from error
    if not address.startswith("127."):
        raise DevClusterError(
            f"hostname {name!r}: resolves to {address}, not loopback; the kubelet listens on 127.0.0.1 only, "
            f"so add `127.0.0.1 {name}` to /etc/hosts before `gitopsguard dev-cluster up`"
        )
    return name


def node_spec(name: str, cache: CacheLayout, state: StateLayout, scheduler_port: int, hostname: str) -> ComponentSpec:
    node = state.node
    if name == SCHEDULER:
        return ComponentSpec(SCHEDULER, (
            str(cache.binary(SCHEDULER)), "--kubeconfig", str(node.kubeconfig(SCHEDULER)), "--leader-elect=false",
            "--address", LOOPBACK, "--port", str(scheduler_port), "--secure-port", "0",
        ))  # fmt: skip
    if name == CONTAINERD:
        argv = (_system_binary(CONTAINERD, "containerd"), "--config", str(node.containerd_config))
        return ComponentSpec(CONTAINERD, argv, NO_PULLS)
    if name == KUBE_PROXY:
        return ComponentSpec(KUBE_PROXY, (str(cache.binary(KUBE_PROXY)), "--config", str(node.kube_proxy_config)))
    return ComponentSpec(KUBELET, (
        str(cache.binary(KUBELET)), "--config", str(node.kubelet_config),
        "--kubeconfig", str(node.kubeconfig(KUBELET)), "--hostname-override", hostname,
        "--container-runtime=remote", f"--container-runtime-endpoint=unix://{node.containerd_socket}",
        "--root-dir", str(node.kubelet_root), "--cert-dir", str(node.root / "kubelet-pki"),
        "--pod-infra-container-image", PAUSE_IMAGE, "--volume-plugin-dir", str(node.root / "volume-plugins"),
    ))  # fmt: skip


# No registry is reachable, and an image pull must not even try to leave the machine: every registry request
# of containerd goes to a proxy on a loopback port where nothing listens, and fails at once (no DNS either).
DEAD_PROXY = f"http://{LOOPBACK}:9"
NO_PULLS = (("HTTPS_PROXY", DEAD_PROXY), ("HTTP_PROXY", DEAD_PROXY), ("https_proxy", DEAD_PROXY),
            ("http_proxy", DEAD_PROXY), ("NO_PROXY", ""), ("no_proxy", ""))  # fmt: skip


def _system_binary(command: str, package: str) -> str:
    found = shutil.which(command)
    if found is None:
        raise MissingDependencyError(f"{command} not found on PATH; install Debian's {package}")
    return found


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a fixed http://127.0.0.1 URL)
            return int(response.status) == 200
    except (OSError, urllib.error.URLError):
        return False


def scheduler_healthy(port: int) -> bool:
    return http_ok(f"http://{LOOPBACK}:{port}/healthz")


def kube_proxy_healthy() -> bool:
    """200 once kube-proxy has written its rules at least once (it answers 503 before that)."""
    return http_ok(f"http://{LOOPBACK}:{KUBE_PROXY_HEALTHZ_PORT}/healthz")


def kubelet_healthy() -> bool:
    """Asks the kubelet itself: no node-lifecycle controller runs, so a dead kubelet's Node still says Ready."""
    return http_ok(f"http://{LOOPBACK}:{KUBELET_HEALTHZ_PORT}/healthz")


def ctr(state: StateLayout, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``ctr`` against this node's containerd, in the namespace the kubelet's containers live in."""
    command = [_system_binary("ctr", "containerd"), "--address", str(state.node.containerd_socket),
               "--namespace", "k8s.io", *args]  # fmt: skip
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise DevClusterError(f"{state.node.containerd_socket}: `ctr {' '.join(args)}` timed out") from error


def containerd_ready(state: StateLayout) -> bool:
    return state.node.containerd_socket.exists() and ctr(state, "version", timeout=5).returncode == 0


NOT_READY_TAINT = "node.kubernetes.io/not-ready"


def node_ready(body: str) -> bool:
    """Whether a Node object (JSON) is Ready=True and no longer carries the not-ready taint that admission puts
    on every new Node (until the node-lifecycle controller lifts it, nothing is scheduled there)."""
    try:
        node = json.loads(body)
        conditions = node["status"]["conditions"]
        taints = node["spec"].get("taints") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        return ready and not any(taint.get("key") == NOT_READY_TAINT for taint in taints)
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def image_archive(state: StateLayout, name: str) -> Path:
    return state.node.images_dir / f"{name}.tar"
