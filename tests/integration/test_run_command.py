"""`gitopsguard run` as a real process: it blocks a denied revision and says so on Slack (the fake), once,
and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakeslack import TOKEN, FakeSlack
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster
from tests.integration.test_policy_gate import POD, POLICY

pytestmark = pytest.mark.integration


def test_run_tells_slack_once_about_a_blocked_revision_and_stops_on_sigterm(
    dev_cluster: LiveCluster, namespace: str, tmp_path: Path
) -> None:
    upstream = Upstream(tmp_path / "git")
    upstream.write("policies/p.yaml", POLICY)
    upstream.write("apps/pod.yaml", POD.format(name="shell", privileged="true"))
    upstream.commit()
    fake = FakeSlack()
    with fake.serving() as url:
        env = {**os.environ, "GITOPSGUARD_SLACK_TOKEN": TOKEN}
        process = subprocess.Popen([
            sys.executable, "-m", "gitopsguard", "run", "--repo", str(upstream.bare), "--path", "apps",
            "--unit", namespace, "--namespace", namespace, "--kubeconfig", str(dev_cluster.kubeconfig),
            "--workdir", str(tmp_path / "gg"), "--audit-log", str(tmp_path / "audit.jsonl"), "--interval", "2",
            "--slack-channel", "#platform", "--slack-api-url", f"{url}/api/", "--scan-namespace", namespace,
        ], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not fake.texts() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(5)  # two more passes over the same blocked commit: nothing more is said
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=20)
    assert [t.split("*")[1] for t in fake.texts()] == ["Revision blocked by policy"], output
    assert process.returncode == 0, output
    assert output.count("blocked by policy") == 1, output
    assert TOKEN not in output
