"""`gitopsguard run` as a real process: it blocks a denied revision and says so on Slack (the fake), once,
and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.fakeslack import TOKEN, FakeSlack
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster
from tests.integration.test_policy_gate import POD, POLICY

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (loopback)
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_run_tells_slack_once_about_a_blocked_revision_serves_metrics_and_stops_on_sigterm(
    dev_cluster: LiveCluster, namespace: str, tmp_path: Path
) -> None:
    upstream = Upstream(tmp_path / "git")
    upstream.write("policies/p.yaml", POLICY)
    upstream.write("apps/pod.yaml", POD.format(name="shell", privileged="true"))
    upstream.commit()
    fake = FakeSlack()
    port = free_port()
    with fake.serving() as url:
        env = {**os.environ, "GITOPSGUARD_SLACK_TOKEN": TOKEN}
        process = subprocess.Popen([
            sys.executable, "-m", "gitopsguard", "run", "--repo", str(upstream.bare), "--path", "apps",
            "--unit", namespace, "--namespace", namespace, "--kubeconfig", str(dev_cluster.kubeconfig),
            "--workdir", str(tmp_path / "gg"), "--audit-log", str(tmp_path / "audit.jsonl"), "--interval", "2",
            "--slack-channel", "#platform", "--slack-api-url", f"{url}/api/", "--scan-namespace", namespace,
            "--metrics-address", f"127.0.0.1:{port}",
        ], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not fake.texts() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(5)  # two more passes over the same blocked commit: nothing more is said
            metrics = get(f"http://127.0.0.1:{port}/metrics")
            health, ready = get(f"http://127.0.0.1:{port}/healthz"), get(f"http://127.0.0.1:{port}/readyz")
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=20)
    assert [t.split("*")[1] for t in fake.texts()] == ["Revision blocked by policy"], output
    assert process.returncode == 0, output
    assert output.count("blocked by policy") == 1, output
    assert TOKEN not in output
    assert health == (200, "ok (leading)\n") and ready == (200, f"leading unit {namespace}: ready\n")
    status, text = metrics
    blocked = f'gitopsguard_reconcile_total{{result="blocked",unit="{namespace}"}}'
    assert status == 200 and blocked in text, text
    assert float(text.split(blocked)[1].split()[0]) >= 2  # every pass is counted, though Slack heard once
    assert "gitopsguard_audit_records_total" in text
