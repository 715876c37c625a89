"""What `gitopsguard run` over one unit imports: not the Units loop (`run --root`), whose modules held about
1 MB of a single unit's loop for nothing (bench/README.md, "Memory")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster
from tests.waiting import CONFIGMAP, eventually, value_of

pytestmark = pytest.mark.integration

UNITS_LOOP_ONLY = ("gitopsguard.fleet", "gitopsguard.fleet_retire", "gitopsguard.cluster.shardleases")


def test_a_single_unit_run_imports_none_of_the_units_loop(
    namespace: str, dev_cluster: LiveCluster, admin_api: client.ApiClient, tmp_path: Path
) -> None:
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="1"))
    upstream.commit()
    run = subprocess.Popen(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "gitopsguard",
            "run",
            "--repo",
            str(upstream.bare),
            "--path",
            "apps",
            "--unit",
            namespace,
            "--namespace",
            namespace,
            "--kubeconfig",
            str(dev_cluster.kubeconfig),
            "--workdir",
            str(tmp_path / "gg"),
            "--audit-log",
            str(tmp_path / "audit.jsonl"),
            "--metrics-address",
            "127.0.0.1:0",
            "--no-live-scan",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "stderr").open("w"),
    )  # fmt: skip  (a pipe would fill up)
    try:
        eventually(lambda: value_of(client.CoreV1Api(admin_api), "a", namespace) == "1", timeout=60, every=0.5)
    finally:
        run.kill()  # what it imported is written as it imports (-X importtime); no need to wait for a clean stop
        run.wait(30)
    errors = (tmp_path / "stderr").read_text()
    imported = {line.rpartition("|")[2].strip() for line in errors.splitlines() if line.startswith("import time:")}
    assert "gitopsguard.controller" in imported  # the single unit's loop itself
    assert sorted(set(UNITS_LOOP_ONLY) & imported) == []
