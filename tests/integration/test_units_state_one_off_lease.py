"""A one-off `gitopsguard reconcile` holds its unit's Lease (gitopsguard-system/gitopsguard-UNIT, the one
`run --leader-elect` holds) for its pass: beside a controller that keeps renewing it, it refuses and names the
holder, changing nothing; a holder that stopped renewing (a crashed controller) is waited out; the Lease is
released afterwards."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cli import main
from gitopsguard.cluster.configmaps import ensure_namespace
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from gitopsguard.cluster.lease import LeaderElector
from gitopsguard.cluster.rest import RawApi
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster
from tests.kube import as_model

pytestmark = pytest.mark.integration

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  value: '1'\n"


@pytest.fixture
def repo(tmp_path: Path) -> Upstream:
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP)
    upstream.commit()
    return upstream


@pytest.fixture
def lease(admin_api: client.ApiClient, namespace: str) -> Iterator[str]:
    """The unit's Lease name (the unit is named after the test's namespace); deleted afterwards."""
    ensure_namespace(RawApi(admin_api), CONTROLLER_NAMESPACE)
    name = f"gitopsguard-{namespace}"
    yield name
    try:
        client.CoordinationV1Api(admin_api).delete_namespaced_lease(name, CONTROLLER_NAMESPACE)
    except ApiException as error:
        if error.status != 404:
            raise


def one_off(dev_cluster: LiveCluster, repo: Upstream, namespace: str, workdir: Path) -> Result:
    return CliRunner().invoke(main, [
        "reconcile", "--repo", str(repo.bare), "--path", "apps", "--unit", namespace, "--namespace", namespace,
        "--kubeconfig", str(dev_cluster.kubeconfig), "--workdir", str(workdir / "gg"),
        "--audit-log", str(workdir / "audit.jsonl"), "--policies-path", "",
    ])  # fmt: skip


def configmap_exists(api: client.ApiClient, namespace: str) -> bool:
    try:
        client.CoreV1Api(api).read_namespaced_config_map("a", namespace)
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def holder(api: client.ApiClient, lease: str) -> str:
    spec = client.CoordinationV1Api(api).read_namespaced_lease(lease, CONTROLLER_NAMESPACE).spec
    return str((spec.holder_identity if spec else None) or "")


def test_a_one_off_pass_beside_a_controller_holding_the_unit_is_refused_and_names_the_holder(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, lease: str, repo: Upstream, tmp_path: Path
) -> None:
    controller = LeaderElector(RawApi(admin_api), CONTROLLER_NAMESPACE, lease, me="replica-7f9c_1")
    stop = threading.Event()
    assert controller.try_acquire_or_renew()
    controller.keep(stop, lambda: None)  # renews every second, as `run --leader-elect` does
    try:
        result = one_off(dev_cluster, repo, namespace, tmp_path)
    finally:
        stop.set()
    assert result.exit_code == 2, result.output
    assert f"unit {namespace}: Lease {CONTROLLER_NAMESPACE}/{lease}: held by 'replica-7f9c_1'" in result.output
    assert "stop that controller first" in result.output
    assert not configmap_exists(admin_api, namespace)
    assert holder(admin_api, lease) == "replica-7f9c_1"


def test_a_lease_whose_holder_stopped_renewing_is_waited_out_then_the_pass_runs_and_releases_it(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, lease: str, repo: Upstream, tmp_path: Path
) -> None:
    stale = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    client.CoordinationV1Api(admin_api).create_namespaced_lease(CONTROLLER_NAMESPACE, as_model(client.V1Lease, {
        "metadata": {"name": lease},
        "spec": {"holderIdentity": "crashed-replica", "leaseDurationSeconds": 3, "acquireTime": stale,
                 "renewTime": stale},
    }))  # fmt: skip
    result = one_off(dev_cluster, repo, namespace, tmp_path)
    assert result.exit_code == 0, result.output
    assert configmap_exists(admin_api, namespace)
    assert holder(admin_api, lease) == ""  # released: a controller starting now need not wait for it


def test_a_one_off_pass_with_no_lease_takes_and_releases_it(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, lease: str, repo: Upstream, tmp_path: Path
) -> None:
    result = one_off(dev_cluster, repo, namespace, tmp_path)
    assert result.exit_code == 0, result.output
    assert configmap_exists(admin_api, namespace)
    assert holder(admin_api, lease) == ""
