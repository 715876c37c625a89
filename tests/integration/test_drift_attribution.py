"""Who drifted an object is told by what a client cannot forge: the user the API server authenticated, and
the resourceVersions gitopsguard's own writes produced. A User-Agent or a field-manager name is a claim.

The attacker is a tenant (alice, who may edit her namespace) who writes as ``gitopsguard`` to have her
edit taken as the controller's own, blamed on someone else, or left unrepaired.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.audittrail import AuditTrail
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.controller import Controller
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster, bind_user
from tests.kube import data_of
from tests.waiting import eventually

pytestmark = pytest.mark.integration

CONFIGMAP = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  value: "1"\n'


def value(core: client.CoreV1Api, namespace: str) -> str | None:
    try:
        return str(data_of(core.read_namespaced_config_map("a", namespace))["value"])
    except ApiException as error:
        if error.status == 404:
            return None
        raise


@pytest.fixture
def results(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, dev_cluster: LiveCluster
) -> Iterator[list[ReconcileResult]]:
    if not dev_cluster.audit_log.exists():
        pytest.skip("the reused cluster writes no audit log")
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP)
    upstream.commit()
    seen: list[ReconcileResult] = []
    controller = Controller(
        Unit(namespace, "apps", namespace), GitSource(SourceSpec(upstream.url), tmp_path / "gg"),
        Applier(admin_api), InventoryStore(admin_api), RawApi(admin_api), interval=60, on_result=seen.append,
        trail=AuditTrail(dev_cluster.audit_log),
    )  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop, upstream.bare), daemon=True)
    thread.start()
    eventually(lambda: value(client.CoreV1Api(admin_api), namespace) == "1")
    yield seen
    stop.set()
    controller.wake()
    thread.join(10)


def patched(api: client.CoreV1Api, namespace: str, data: dict[str, str], field_manager: str | None = None) -> None:
    """Patch as a freshly bound user: the authorizer may take a moment to see the binding."""
    deadline = time.monotonic() + 10
    while True:
        try:
            api.patch_namespaced_config_map("a", namespace, {"data": data}, field_manager=field_manager)
            return
        except ApiException as error:
            if error.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def repairs(results: list[ReconcileResult]) -> list[str]:
    return [c.detail for r in results for c in r.changes if c.repaired_drift]


def test_an_edit_posing_as_gitopsguard_is_repaired_and_attributed_to_the_tenant_who_made_it(
    results: list[ReconcileResult], admin_api: client.ApiClient, namespace: str, dev_cluster: LiveCluster
) -> None:
    """Before: the audit line was skipped for its User-Agent and the field manager taken as ours, so the
    drift was put on 'a writer that left no field manager' and no user was named."""
    bind_user(admin_api, namespace, "alice-edits", "ClusterRole", "edit")
    alice = dev_cluster.api("dev-alice")
    alice.user_agent = "gitopsguard/x"
    patched(client.CoreV1Api(alice), namespace, {"value": "tenant"}, field_manager="gitopsguard")
    core = client.CoreV1Api(admin_api)
    eventually(lambda: value(core, namespace) == "1")
    eventually(lambda: bool(repairs(results)))
    repair = repairs(results)[0]
    assert "by user alice (patch with gitopsguard" in repair, repair
    assert "gitopsguard (Update)" in repair, "the field manager is reported as the claim it is"
    assert "by user admin" not in repair


def test_the_controllers_own_writes_are_never_named_as_the_writer_of_a_drift(
    results: list[ReconcileResult], admin_api: client.ApiClient, namespace: str, dev_cluster: LiveCluster
) -> None:
    """The general rule: the repair itself (written by the controller's account) lands in the audit log
    right after the edit; the writer named is the one before it, found by who is authenticated."""
    bind_user(admin_api, namespace, "alice-edits", "ClusterRole", "edit")
    alice = client.CoreV1Api(dev_cluster.api("dev-alice"))
    core = client.CoreV1Api(admin_api)

    def repaired_more_than(count: int) -> bool:
        return len(repairs(results)) > count

    for round_ in range(2):
        patched(alice, namespace, {"value": f"tenant-{round_}"})
        eventually(lambda: value(core, namespace) == "1")
        eventually(partial(repaired_more_than, round_))
    assert all("by user alice (patch with OpenAPI-Generator" in r for r in repairs(results)), repairs(results)
