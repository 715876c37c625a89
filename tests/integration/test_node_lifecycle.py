"""`dev-cluster down` of a cluster with a node leaves the machine as it found it.

One machine runs one node, so this module brings up a node of its own only while no other dev cluster holds
the machine's node; conftest runs it before anything starts the session's cluster. It runs a Pod (so there
are mounts, a network namespace, cgroups and a veth), leaves a bind mount in the state directory as a
careless volume would, takes the cluster down once, and each test checks one thing that must be gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kubernetes import client

from gitopsguard.cli import main
from gitopsguard.cluster import connect
from gitopsguard.devcluster import CacheLayout, DevCluster, StateLayout
from gitopsguard.devcluster import node_teardown as teardown
from gitopsguard.devcluster.node import MACHINE_CLAIM, node_owner
from gitopsguard.devcluster.node_config import BRIDGE, PAUSE_IMAGE
from gitopsguard.devcluster.node_net import CHANGED_SYSCTLS, GUARD_CHAINS, read_sysctl
from gitopsguard.devcluster.process import is_our_process
from gitopsguard.devcluster.progress import SilentProgress
from tests.kube import as_model, pod_status

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Before:
    sysctls: dict[str, str]
    chains: set[str]


@dataclass(frozen=True)
class Downed:
    cluster: DevCluster
    before: Before
    pids: dict[str, int]
    shims: list[int]
    sentinel: Path
    status_output: str
    after_kubelet_died: str  # `status` once the kubelet was killed
    repaired: tuple[str, ...]  # what `up` restarted then


def iptables_chains() -> set[str]:
    chains = set()
    for table in ("filter", "nat", "mangle"):
        listing = subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True, check=True)
        chains |= {f"{table}/{line.split()[1]}" for line in listing.stdout.splitlines() if line.startswith("-N ")}
    return chains


def run_pause_pod(cluster: DevCluster) -> None:
    core = client.CoreV1Api(connect(cluster.state.kubeconfig))
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper"}, "spec": {
        "containers": [{"name": "pause", "image": PAUSE_IMAGE, "imagePullPolicy": "Never"}],
        "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False}}  # fmt: skip
    core.create_namespaced_pod("default", as_model(client.V1Pod, body))
    deadline = time.monotonic() + 90
    while not any(c.type == "Ready" and c.status == "True" for c in pod_status(core.read_namespaced_pod_status(
            "sleeper", "default")).conditions or []):  # fmt: skip
        assert time.monotonic() < deadline, "the pause Pod did not become Ready"
        time.sleep(0.5)


def cli(cluster: DevCluster, *args: str) -> Result:
    return CliRunner().invoke(main, ["dev-cluster", "--state-dir", str(cluster.state.root), *args])


def kill_kubelet_and_repair(cluster: DevCluster) -> tuple[str, tuple[str, ...]]:
    # No node-lifecycle controller would notice for 40 s: the Node object still says Ready.
    pid = cluster.status().components[-1].pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while is_our_process(pid, "kubelet"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    died = cli(cluster, "status").output
    return died, cluster.up().started


@pytest.fixture(scope="module")
def downed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Downed]:
    if os.geteuid() != 0:
        pytest.skip("a node needs root")
    if node_owner() is not None:
        pytest.skip(f"this machine's node is held by the dev cluster in {node_owner()}; one node per machine")
    before = Before({name: read_sysctl(name) for name in CHANGED_SYSCTLS}, iptables_chains())
    cluster = DevCluster(StateLayout(tmp_path_factory.mktemp("node-life")), CacheLayout.default(), SilentProgress())
    try:
        cluster.up(node=True)
        run_pause_pod(cluster)
        status = cli(cluster, "status")
        died, repaired = kill_kubelet_and_repair(cluster)
        pids = {c.name: c.pid for c in cluster.status().components if c.pid is not None}
        shims = teardown.shim_pids(cluster.state.node.containerd_socket)
        sentinel = tmp_path_factory.mktemp("outside") / "keep-me"
        sentinel.write_text("a host file shown in the state directory through a bind mount")
        mount_point = cluster.state.node.root / "left-behind-volume"
        mount_point.mkdir()
        subprocess.run(["mount", "--bind", str(sentinel.parent), str(mount_point)], check=True)
    finally:
        cluster.down()
    yield Downed(cluster, before, pids, shims, sentinel, status.output, died, repaired)


def test_status_shows_each_part_of_the_node(downed: Downed) -> None:
    for name in ("kube-scheduler", "containerd", "kube-proxy", "kubelet"):
        assert f"{name}" in downed.status_output
    assert "Ready" in downed.status_output.split("node ", 1)[1], downed.status_output


def test_down_stops_every_node_process_and_containerds_shims(downed: Downed) -> None:
    assert {"kubelet", "containerd", "kube-proxy", "kube-scheduler"} <= set(downed.pids)
    assert downed.shims, "a running Pod has a shim"
    assert [name for name, pid in downed.pids.items() if is_our_process(pid, name)] == []
    assert teardown.shim_pids(downed.cluster.state.node.containerd_socket) == []


def test_down_unmounts_everything_and_removes_the_state_directory(downed: Downed) -> None:
    assert teardown.mounts_under(downed.cluster.state.root) == []
    assert teardown.pod_netns() == []
    assert not downed.cluster.state.root.exists()


def test_down_never_deletes_through_a_mount_left_in_the_state_directory(downed: Downed) -> None:
    assert downed.sentinel.read_text().startswith("a host file")


def test_down_removes_the_bridge_pod_cgroups_and_the_iptables_chains_it_made(downed: Downed) -> None:
    assert not Path("/sys/class/net", BRIDGE).exists()
    assert teardown.pod_cgroups() == []
    left = iptables_chains() - downed.before.chains
    assert left == set(), f"chains the node made and left: {sorted(left)}"
    assert not any(chain.endswith(GUARD_CHAINS) for chain in iptables_chains())


def test_down_leaves_no_runtime_files_at_the_machines_fixed_paths(downed: Downed) -> None:
    assert [p for p in teardown.SHIM_SOCKETS.glob("*") if p.is_socket()] == []
    assert list(Path("/var/lib/cni/results").glob("gitopsguard-dev-*")) == []
    assert list(Path("/var/lib/cni/results").glob("cni-loopback-*")) == []
    assert [p for d in teardown.POD_LOG_DIRS for p in d.glob("*")] == []


def test_down_puts_back_the_sysctls_the_node_changed(downed: Downed) -> None:
    assert {name: read_sysctl(name) for name in CHANGED_SYSCTLS} == downed.before.sysctls


def test_down_releases_the_machines_node(downed: Downed) -> None:
    assert not MACHINE_CLAIM.exists() or node_owner() != downed.cluster.state.root


def test_killed_kubelet_is_reported_by_status_and_restarted_by_up(downed: Downed) -> None:
    assert "kubelet                  stopped" in downed.after_kubelet_died or "stale pid" in downed.after_kubelet_died
    assert "NOT ready" in downed.after_kubelet_died.split("node ", 1)[1]
    assert downed.repaired == ("kubelet",)
