"""The real 1.20 API server accepts repo-template/ as it is, with server-side apply."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.conftest import LiveCluster
from tests.kubectl import kubectl

pytestmark = pytest.mark.integration
TEMPLATE = Path(__file__).parents[2] / "repo-template"
TEMPLATE_NAMESPACES = ("shop", "payments")


def render(overlay: str) -> str:
    path = str(TEMPLATE / "clusters" / overlay)
    return subprocess.run([kubectl(), "kustomize", path], capture_output=True, text=True, check=True).stdout


def server_side_apply(cluster: LiveCluster, manifests: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [kubectl(), "--kubeconfig", str(cluster.kubeconfig), "apply", "--server-side",
               "--field-manager", "gitopsguard-test", "--force-conflicts", *extra, "-f", "-"]  # fmt: skip
    return subprocess.run(command, input=manifests, capture_output=True, text=True, check=False)


@pytest.fixture
def template_namespaces_removed_after(admin_api: client.ApiClient) -> Iterator[None]:
    yield
    for name in TEMPLATE_NAMESPACES:
        try:
            client.CoreV1Api(admin_api).delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise


@pytest.mark.usefixtures("template_namespaces_removed_after")
def test_dev_overlay_applies_and_prod_passes_a_server_dry_run(
    dev_cluster: LiveCluster, admin_api: client.ApiClient
) -> None:
    applied = server_side_apply(dev_cluster, render("dev"))
    assert applied.returncode == 0, applied.stderr
    assert "deployment.apps/shop serverside-applied" in applied.stdout
    deployment = client.AppsV1Api(admin_api).read_namespaced_deployment("payments", "payments")
    assert deployment.spec.replicas == 1

    dry_run = server_side_apply(dev_cluster, render("prod"), "--dry-run=server")
    assert dry_run.returncode == 0, dry_run.stderr
    assert "(server dry run)" in dry_run.stdout
    assert client.AppsV1Api(admin_api).read_namespaced_deployment("payments", "payments").spec.replicas == 1
