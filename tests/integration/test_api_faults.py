"""Throttling, 503s and cut connections between the controller and the REAL API server, produced by a proxy
on loopback (tests/faultproxy.py): the pass converges, its result is right, and nothing is refused falsely."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import UnavailableError
from gitopsguard.model import Action
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.source import GitSource, SourceSpec
from tests.faultproxy import Fault, FaultProxy, fault_proxy
from tests.gitrepo import Upstream
from tests.kube import meta

pytestmark = pytest.mark.integration
COUNT = 12
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  n: '{i}'\n"


def dry_run(method: str, path: str) -> bool:
    return method == "PATCH" and "dryRun=All" in path


def apply(method: str, path: str) -> bool:
    return method == "PATCH" and "dryRun" not in path and "/configmaps/cm-" in path


def list_owned(method: str, path: str) -> bool:
    return method == "GET" and "labelSelector=gitopsguard.io" in path


@pytest.fixture
def proxy(admin_api: client.ApiClient, tmp_path: Path) -> Iterator[FaultProxy]:
    with fault_proxy(admin_api, tmp_path / "proxy") as running:
        yield running


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream(tmp_path / "git")
    for i in range(COUNT):
        repo.write(
            f"apps/cm-{i}.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  n: '{i}'\n"
        )
    repo.commit()
    return repo


def one_pass(proxy: FaultProxy, upstream: Upstream, namespace: str, workdir: Path) -> ReconcileResult:
    api = proxy.api()
    unit = Unit(namespace, "apps", default_namespace=namespace)
    return reconcile(unit, GitSource(SourceSpec(upstream.url), workdir), Applier(api), InventoryStore(api))


def assert_converged(result: ReconcileResult, admin_api: client.ApiClient, namespace: str) -> None:
    assert result.error is None, result.error
    assert not any("refused" in (c.detail or "") for c in result.changes), result.changes
    created = {str(c.key) for c in result.changes if c.action is Action.CREATED}
    assert created == {f"ConfigMap/{namespace}/cm-{i}" for i in range(COUNT)}
    live = client.CoreV1Api(admin_api).list_namespaced_config_map(namespace).items
    assert {meta(cm).name for cm in live} >= {f"cm-{i}" for i in range(COUNT)}


def test_a_throttled_dry_run_is_retried_and_never_reported_as_refused(
    proxy: FaultProxy, upstream: Upstream, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    throttled = proxy.add(Fault("throttle", dry_run, times=5, retry_after="1"))
    result = one_pass(proxy, upstream, namespace, tmp_path / "gg")
    assert len(throttled.hits) == 5, "the dry runs were throttled for real"
    assert_converged(result, admin_api, namespace)


def test_applies_answered_503_are_sent_again_and_the_pass_converges(
    proxy: FaultProxy, upstream: Upstream, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    failed = proxy.add(Fault("unavailable", apply, times=COUNT))  # every object's first apply
    result = one_pass(proxy, upstream, namespace, tmp_path / "gg")
    assert len(failed.hits) == COUNT
    assert_converged(result, admin_api, namespace)


def test_reset_connections_on_lists_and_dry_runs_are_survived(
    proxy: FaultProxy, upstream: Upstream, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    cut_lists = proxy.add(Fault("reset", list_owned, times=1))
    cut_dry_runs = proxy.add(Fault("reset", dry_run, times=2))
    result = one_pass(proxy, upstream, namespace, tmp_path / "gg")
    assert cut_lists.hits and len(cut_dry_runs.hits) == 2
    assert_converged(result, admin_api, namespace)


def test_a_create_answered_503_is_not_sent_twice(proxy: FaultProxy, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    failed = proxy.add(Fault("unavailable", lambda method, p: method == "POST" and p.startswith(path), times=1))
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "once"}}
    with pytest.raises(UnavailableError, match=rf"^ConfigMap/{namespace}/once: the server is currently unable"):
        RawApi(proxy.api()).call("POST", path, f"ConfigMap/{namespace}/once", body=body)
    assert len(failed.hits) == 1
    assert not any(p.startswith(f"POST {path}") for p in proxy.forwarded), "a create is never repeated"


def test_a_silent_connection_is_given_up_on_and_the_read_asked_again(proxy: FaultProxy, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    stalled = proxy.add(Fault("stall", lambda method, p: method == "GET" and p == path, times=1, stall=3.0))
    listed = RawApi(proxy.api(), timeout=1.0).get(path, f"ConfigMaps in {namespace}")
    assert listed.get("kind") == "ConfigMapList"
    assert len(stalled.hits) == 1, "the first read went silent for real"
