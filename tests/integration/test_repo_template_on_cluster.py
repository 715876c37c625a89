"""The real 1.20 API server accepts repo-template/ as it is (server-side apply, dry run only)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import TestCluster
from tests.kubectl import kubectl

pytestmark = pytest.mark.integration
TEMPLATE = Path(__file__).parents[2] / "repo-template"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_server_accepts_each_overlay_in_a_server_side_dry_run(dev_cluster: TestCluster, overlay: str) -> None:
    rendered = subprocess.run(
        [kubectl(), "kustomize", str(TEMPLATE / "clusters" / overlay)], capture_output=True, text=True, check=True
    ).stdout
    result = subprocess.run(
        [kubectl(), "--kubeconfig", str(dev_cluster.kubeconfig), "apply", "--server-side", "--dry-run=server",
         "--field-manager", "gitopsguard-test", "-f", "-"],
        input=rendered, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "deployment.apps/shop serverside-applied (server dry run)" in result.stdout
