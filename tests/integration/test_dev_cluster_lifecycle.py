"""`dev-cluster up | status | down` on a second, throw-away cluster: idempotence, recovery, clean removal.

These use the binaries the session's cluster already cached, so each start takes seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kubernetes import client

from gitopsguard.cli import main
from gitopsguard.cluster import connect
from gitopsguard.devcluster import CacheLayout, DevCluster, StateLayout
from gitopsguard.devcluster.cluster import ComponentState
from gitopsguard.devcluster.process import is_our_process
from gitopsguard.devcluster.progress import SilentProgress
from tests.integration.conftest import LiveCluster
from tests.kube import meta

pytestmark = pytest.mark.integration


def cli(cluster: DevCluster, *args: str) -> Result:
    return CliRunner().invoke(main, ["dev-cluster", "--state-dir", str(cluster.state.root), *args])


def pids(cluster: DevCluster) -> dict[str, int | None]:
    return {c.name: c.pid for c in cluster.status().components}


def configmap_api(cluster: DevCluster) -> client.CoreV1Api:
    return client.CoreV1Api(connect(cluster.state.kubeconfig))


def test_second_up_says_already_up_and_starts_nothing(spare: DevCluster) -> None:
    before = pids(spare)
    result = cli(spare, "up")
    assert result.exit_code == 0, result.output
    assert "already up" in result.output
    assert f"export KUBECONFIG={spare.state.kubeconfig}" in result.output
    assert pids(spare) == before


def test_status_lists_every_component_running_and_the_server_ready(spare: DevCluster) -> None:
    result = cli(spare, "status")
    assert result.exit_code == 0, result.output
    for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
        assert f"{name}" in result.output
    assert "ready, v1.20.2" in result.output


def test_killed_etcd_is_detected_and_restarted_with_its_data(spare: DevCluster) -> None:
    core = configmap_api(spare)
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="survivor")))
    etcd_pid = pids(spare)["etcd"]
    assert etcd_pid is not None
    os.kill(etcd_pid, signal.SIGKILL)
    _wait_dead(etcd_pid, "etcd")

    down = cli(spare, "status")
    assert down.exit_code == 1
    assert "etcd                     stopped" in down.output or "stale pid file" in down.output
    assert "Repair it with: gitopsguard dev-cluster up" in down.output

    result = cli(spare, "up")
    assert result.exit_code == 0, result.output
    assert "Recovered" in result.output and "etcd" in result.output
    assert spare.status().all_running and spare.status().ready
    assert meta(core.read_namespaced_config_map("survivor", "default")).name == "survivor"


def test_stale_pid_files_after_a_crash_are_recovered_without_touching_the_pid_owner(spare: DevCluster) -> None:
    # Simulate a reboot: every component dies, and the apiserver's old pid now belongs to another program.
    for name, pid in pids(spare).items():
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        _wait_dead(pid, name)
    impostor = subprocess.Popen([shutil.which("sleep") or "/bin/sleep", "120"])
    try:
        spare.state.pid_file("kube-apiserver").write_text(f"{impostor.pid}\n")
        states = {c.name: c.state for c in spare.status().components}
        assert states["kube-apiserver"] is ComponentState.STALE_PID

        result = spare.up()
        assert result.recovered
        assert set(result.started) == {"etcd", "kube-apiserver", "kube-controller-manager"}
        assert impostor.poll() is None, "up must never signal a process that is not ours"
        assert spare.status().ready
    finally:
        impostor.kill()
        impostor.wait()


def test_down_stops_every_process_and_removes_state(dev_cluster: LiveCluster, tmp_path: Path) -> None:
    cluster = DevCluster(StateLayout(tmp_path / "short-lived"), CacheLayout.default(), SilentProgress())
    cluster.up()
    started = {name: pid for name, pid in pids(cluster).items() if pid is not None}
    assert len(started) == 3
    result = cli(cluster, "down")
    assert result.exit_code == 0, result.output
    assert all(not is_our_process(pid, name) for name, pid in started.items())
    assert not cluster.state.root.exists()
    assert "No dev cluster" in cli(cluster, "status").output


def _wait_dead(pid: int, name: str) -> None:
    deadline = time.monotonic() + 10
    while is_our_process(pid, name):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our own child: reap it
        assert time.monotonic() < deadline, f"{name} (pid {pid}) did not die"
        time.sleep(0.05)


def test_component_that_exits_during_a_fresh_start_is_reported_and_nothing_is_left_behind(
    dev_cluster: LiveCluster, tmp_path: Path
) -> None:
    # A kube-apiserver that fails the way a bad flag does; the cache manifest vouches for its size.
    cache = CacheLayout(tmp_path / "cache")
    shutil.copytree(CacheLayout.default().bin_dir, cache.bin_dir)
    broken = cache.binary("kube-apiserver")
    broken.write_text("#!/bin/sh\necho 'Error: unknown flag: --frobnicate' >&2\nexit 3\n")
    manifest = json.loads(cache.manifest.read_text())
    manifest["binaries"]["kube-apiserver"]["size"] = broken.stat().st_size
    cache.manifest.write_text(json.dumps(manifest))

    cluster = DevCluster(StateLayout(tmp_path / "state"), cache, SilentProgress())
    result = CliRunner().invoke(
        main, ["dev-cluster", "--state-dir", str(cluster.state.root), "--cache-dir", str(cache.root), "up", "--no-node"]
    )
    assert result.exit_code == 2
    assert "kube-apiserver exited with code 3 while starting" in result.output
    assert "unknown flag: --frobnicate" in result.output
    assert not cluster.state.root.exists()
    leftover = subprocess.run(["pgrep", "-f", str(cluster.state.root)], capture_output=True, text=True)
    assert leftover.stdout == "", "etcd started for the failed cluster must be stopped"
