"""Health endpoints from process start, on every replica: two `gitopsguard run --leader-elect` processes on
the real control plane. The standby answers /healthz (so a liveness probe never restarts it) and is not
ready; the leader is ready once its loop works; when the leader is killed, the standby takes over and
becomes ready. A replica started while the API server is away is live, not ready, and waits."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster
from tests.integration.test_leader_election import holder
from tests.integration.test_run_command import free_port, get

pytestmark = pytest.mark.integration
CONFIGMAP = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  value: "1"\n'


def start(kubeconfig: Path, upstream: Upstream, namespace: str, workdir: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen([
        sys.executable, "-m", "gitopsguard", "run", "--leader-elect", "--repo", upstream.url, "--path", "apps",
        "--unit", namespace, "--namespace", namespace, "--kubeconfig", str(kubeconfig),
        "--workdir", str(workdir / "gg"), "--audit-log", str(workdir / "audit.jsonl"),
        "--interval", "1", "--no-live-scan", "--metrics-address", f"127.0.0.1:{port}",
    ], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def answer(port: int, path: str) -> tuple[int, str]:
    """The endpoint's status and body; 0 while nothing listens."""
    try:
        return get(f"http://127.0.0.1:{port}{path}")
    except OSError:
        return 0, ""


def until(condition: object, seconds: float) -> float:
    """Seconds until ``condition()`` held (it is asserted by the caller); polls every 0.1 s."""
    began = time.monotonic()
    while time.monotonic() - began < seconds and not condition():  # type: ignore[operator]
        time.sleep(0.1)
    return time.monotonic() - began


def stopped(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=30)[0]


def test_the_standby_is_live_and_not_ready_from_its_start_and_ready_once_it_leads(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP)
    upstream.commit()
    first_port, second_port = free_port(), free_port()
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = start(dev_cluster.kubeconfig, upstream, namespace, tmp_path / "first", first_port)
    second: subprocess.Popen[str] | None = None
    try:
        until(lambda: answer(first_port, "/readyz")[0] == 200, 60)
        status, body = answer(first_port, "/readyz")
        assert status == 200 and f"leading unit {namespace}" in body, body
        second = start(dev_cluster.kubeconfig, upstream, namespace, tmp_path / "second", second_port)
        live_after = until(lambda: answer(second_port, "/healthz")[0] == 200, 30)
        assert answer(second_port, "/healthz")[0] == 200, "live from its start (a probe never restarts it)"
        # live while it starts ("ok (starting)"; seen in a loaded CI run), then as the lease's standby
        until(lambda: answer(second_port, "/healthz") == (200, "ok (standby)\n"), 30)
        assert answer(second_port, "/healthz") == (200, "ok (standby)\n")
        print(f"standby live {live_after:.1f} s after its start")
        time.sleep(3)  # well past its first attempts at the lease
        assert holder(admin_api, namespace).endswith(f"_{first.pid}")
        status, body = answer(second_port, "/readyz")
        assert (status, body) == (503, f"standby for unit {namespace}, waiting for its lease\n")
        assert answer(second_port, "/healthz")[0] == 200 and second.poll() is None
        first.send_signal(signal.SIGKILL)
        took = until(lambda: answer(second_port, "/readyz")[0] == 200, 40)
        status, body = answer(second_port, "/readyz")
        assert status == 200 and f"leading unit {namespace}: ready" in body, body
        assert holder(admin_api, namespace).endswith(f"_{second.pid}")
        print(f"standby ready {took:.1f} s after the leader was killed")
    finally:
        stopped(first)
        output = stopped(second) if second is not None else ""
    assert second is not None and second.returncode == 0, output


def test_a_replica_started_while_the_api_server_is_away_is_live_not_ready_and_waits(
    dev_cluster: LiveCluster, namespace: str, tmp_path: Path
) -> None:
    config = yaml.safe_load(dev_cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    away = tmp_path / "away.kubeconfig"
    away.write_text(yaml.safe_dump(config))
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP)
    upstream.commit()
    port = free_port()
    process = start(away, upstream, namespace, tmp_path, port)
    try:
        until(lambda: answer(port, "/healthz")[0] == 200, 30)
        time.sleep(8)  # past the retries of a single request
        assert process.poll() is None, process.communicate()[0]
        assert answer(port, "/healthz") == (200, "ok (standby)\n")
        assert answer(port, "/readyz") == (503, f"standby for unit {namespace}, waiting for its lease\n")
    finally:
        output = stopped(process)
    assert process.returncode == 0, output
    assert "waiting for the API server" in output
