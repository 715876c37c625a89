"""The real CLI against the real API server never shows a password from the repository URL: not in its
banner, output, errors, audit log, inventory, status or Slack (issue #15, break 13)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from tests.fakeslack import TOKEN, FakeSlack
from tests.integration.conftest import LiveCluster
from tests.unit.test_credentials import URL, leaked

RAW_AT = "https://user:p@ss%2Fw0rd@127.0.0.1:1/x.git"  # the "@" left raw, the "/" encoded


@pytest.fixture
def unit(admin_api: client.ApiClient) -> Iterator[str]:
    name = f"creds-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        client.CoreV1Api(admin_api).delete_namespaced_config_map(f"gitopsguard-inventory-{name}", CONTROLLER_NAMESPACE)
    except client.ApiException as error:
        if error.status != 404:
            raise


def gitopsguard(tmp_path: Path, *args: str, stop_when: Callable[[], bool] | None = None, **env: str) -> tuple[int, str]:
    """Run the CLI; with ``stop_when``, stop it (SIGTERM) once that holds (60 s at most)."""
    environment = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path), **env}
    environment.pop("GITOPSGUARD_GIT_TOKEN", None)
    process = subprocess.Popen([sys.executable, "-m", "gitopsguard", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=environment)  # fmt: skip
    if stop_when is not None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if stop_when():
                break
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    return process.returncode, output


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def stored(admin_api: client.ApiClient, unit: str) -> str:
    inventory = client.CoreV1Api(admin_api).read_namespaced_config_map(f"gitopsguard-inventory-{unit}",
                                                                         CONTROLLER_NAMESPACE)  # fmt: skip
    return repr(inventory.data) + repr(inventory.binary_data)


@pytest.mark.parametrize("url", [URL, RAW_AT], ids=["encoded", "raw-at"])
def test_reconcile_shows_and_stores_no_password_of_the_repository_url(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, unit: str, tmp_path: Path, url: str
) -> None:
    kube = ["--kubeconfig", str(dev_cluster.kubeconfig), "--context", "dev-admin"]
    code, output = gitopsguard(tmp_path, "reconcile", "--repo", url, "--path", "apps", "--unit", unit, *kube)
    assert code == 2 and "https://***@127.0.0.1:1/x.git: git fetch failed" in output, output
    audit = (tmp_path / "state" / "gitopsguard" / "audit.jsonl").read_text()
    assert "reconcile-failed" in audit
    _, status = gitopsguard(tmp_path, "status", "--unit", unit, *kube)
    assert "https://***@127.0.0.1:1/x.git" in status, status
    assert leaked(output) == leaked(audit) == leaked(stored(admin_api, unit)) == leaked(status) == []


def test_run_banner_errors_audit_and_slack_show_no_password(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, unit: str, tmp_path: Path
) -> None:
    fake, audit = FakeSlack(), tmp_path / "state" / "gitopsguard" / "audit.jsonl"
    with fake.serving() as slack:
        _, output = gitopsguard(
            tmp_path, "run", "--repo", URL, "--path", "apps", "--unit", unit, "--kubeconfig",
            str(dev_cluster.kubeconfig), "--context", "dev-admin", "--metrics-address", "", "--no-live-scan",
            "--interval", "1", "--slack-channel", "#platform", "--slack-api-url", f"{slack}/api/",
            stop_when=lambda: bool(fake.texts()) and "reconcile-failed" in read(audit),
            GITOPSGUARD_SLACK_TOKEN=TOKEN,
        )  # fmt: skip
    assert f"reconciling apps of https://***@127.0.0.1:1/x.git (main) as unit {unit}" in output, output
    assert "git fetch failed" in output
    recorded = read(audit)
    assert "reconcile-failed" in recorded
    slack_said = "\n".join(fake.texts())
    assert "reconcile" in slack_said.lower(), slack_said
    assert leaked(output) == leaked(recorded) == leaked(stored(admin_api, unit)) == leaked(slack_said) == []
