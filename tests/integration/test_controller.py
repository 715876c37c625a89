"""The continuous loop on the real API server: drift is repaired, new commits land, stop stops it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.audittrail import AuditTrail
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.controller import Controller
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster
from tests.waiting import CONFIGMAP, eventually, value_of

pytestmark = pytest.mark.integration


@pytest.fixture
def running(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, dev_cluster: LiveCluster
) -> Iterator[tuple[Upstream, list[ReconcileResult]]]:
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="1"))
    upstream.commit()
    results: list[ReconcileResult] = []
    controller = Controller(
        Unit(namespace, "apps", namespace), GitSource(SourceSpec(upstream.url), tmp_path / "gg"),
        Applier(admin_api), InventoryStore(admin_api), RawApi(admin_api), interval=60, on_result=results.append,
        trail=AuditTrail(dev_cluster.audit_log),
    )  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop, upstream.bare), daemon=True)
    thread.start()
    core = client.CoreV1Api(admin_api)
    eventually(lambda: value_of(core, "a", namespace) == "1")
    yield upstream, results
    stop.set()
    controller.wake()
    thread.join(10)
    assert not thread.is_alive(), "the loop stops when asked"


def test_edited_object_is_restored_and_the_editor_is_named(
    running: tuple[Upstream, list[ReconcileResult]],
    admin_api: client.ApiClient,
    namespace: str,
    dev_cluster: LiveCluster,
) -> None:
    _, results = running
    core = client.CoreV1Api(admin_api)
    core.patch_namespaced_config_map("a", namespace, {"data": {"value": "edited"}})
    eventually(lambda: value_of(core, "a", namespace) == "1")
    eventually(lambda: any("drift repaired: it was changed by" in c.detail for r in results for c in r.changes))
    repair = next(c.detail for r in results for c in r.changes if "drift repaired" in c.detail)
    if not dev_cluster.audit_log.exists():  # the session's own cluster audits; a reused one may not
        pytest.skip("the reused cluster writes no audit log, so the editor cannot be named")
    assert "by user admin (patch with OpenAPI-Generator at " in repair, repair  # from the audit log


def test_deleted_object_is_recreated(
    running: tuple[Upstream, list[ReconcileResult]],
    admin_api: client.ApiClient,
    namespace: str,
    dev_cluster: LiveCluster,
) -> None:
    core, (_, results) = client.CoreV1Api(admin_api), running
    core.delete_namespaced_config_map("a", namespace)
    eventually(lambda: value_of(core, "a", namespace) == "1")
    eventually(lambda: any("deleted outside Git" in c.detail for r in results for c in r.changes))
    repair = next(c.detail for r in results for c in r.changes if "deleted outside Git" in c.detail)
    if not dev_cluster.audit_log.exists():  # the session's own cluster audits; a reused one may not
        pytest.skip("the reused cluster writes no audit log, so the deleter cannot be named")
    assert "by user admin (delete with OpenAPI-Generator at " in repair, repair


def test_a_commit_to_a_local_repository_is_applied_without_waiting_for_the_interval(
    running: tuple[Upstream, list[ReconcileResult]], admin_api: client.ApiClient, namespace: str
) -> None:
    upstream, _ = running
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="2"))
    upstream.commit()  # the loop watches the repository on disk; its interval is 60 s
    eventually(lambda: value_of(client.CoreV1Api(admin_api), "a", namespace) == "2")


def test_drift_is_repaired_from_the_last_applied_commit_while_a_newer_commit_is_broken(
    running: tuple[Upstream, list[ReconcileResult]], admin_api: client.ApiClient, namespace: str
) -> None:
    upstream, results = running
    upstream.write("apps/broken.yaml", "kind: ConfigMap\nmetadata: [\n")
    upstream.commit()
    eventually(lambda: bool(results) and results[-1].error is not None and "apps/broken.yaml" in results[-1].error)
    core = client.CoreV1Api(admin_api)
    core.patch_namespaced_config_map("a", namespace, {"data": {"value": "edited"}})
    eventually(lambda: value_of(core, "a", namespace) == "1")
    # The pass reports after its writes (and after naming the editor from the audit log): wait for it.
    eventually(lambda: any("drift repaired" in c.detail for r in results for c in r.changes))
    repairing = [r for r in results if any("drift repaired" in c.detail for c in r.changes)]
    assert all(r.error for r in repairing), "the repair happened in a pass that still reports the broken commit"
    assert InventoryStore(admin_api).load(namespace).last_error.startswith("apps/broken.yaml")


def test_a_restarted_controller_repairs_drift_from_the_last_applied_commit_while_the_head_is_broken(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    from gitopsguard.reconcile import reconcile

    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="1"))
    upstream.commit()
    unit = Unit(namespace, "apps", namespace)
    parts = (Applier(admin_api), InventoryStore(admin_api))
    assert reconcile(unit, GitSource(SourceSpec(upstream.url), tmp_path / "gg"), *parts).error is None
    upstream.write("apps/broken.yaml", "kind: ConfigMap\nmetadata: [\n")
    upstream.commit()
    core = client.CoreV1Api(admin_api)
    core.patch_namespaced_config_map("a", namespace, {"data": {"value": "edited"}})
    # A new process: nothing cached in memory, only the clone on disk and the inventory in the cluster.
    result = reconcile(unit, GitSource(SourceSpec(upstream.url), tmp_path / "gg"), *parts, renders={})
    assert result.error is not None and "apps/broken.yaml" in result.error
    assert value_of(core, "a", namespace) == "1"
    assert [c.detail for c in result.changes if c.detail].pop().startswith("drift repaired")
