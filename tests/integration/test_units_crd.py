"""The Unit CRD on the real API server (1.20): it installs, bounds what it stores, takes status through the
/status subresource only, and `kubectl get units` and `kubectl wait --for=condition=Ready` read it as Flux's
Kustomizations are read."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.units import UnitStore
from gitopsguard.errors import ConflictError, InvalidError
from gitopsguard.units import PassOutcome, Phase, status_of
from tests.integration.conftest import LiveCluster
from tests.kubectl import kubectl
from tests.waiting import eventually

pytestmark = pytest.mark.integration
CRD = Path(__file__).parents[2] / "manifests" / "crds" / "unit.yaml"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/units.gitopsguard.io"
UNITS = "/apis/gitopsguard.io/v1alpha1/namespaces/{namespace}/units"


def install_unit_crd(raw: RawApi) -> None:
    """The Unit CRD as manifests/ installs it (server-side apply, so any test may run it again), Established."""
    crd = yaml.safe_load(CRD.read_text())
    raw.call("PATCH", CRD_PATH, "CRD units", query={"fieldManager": "gitopsguard-tests", "force": "true"}, body=crd,
             content_type="application/apply-patch+yaml")  # fmt: skip

    def established() -> bool:
        conditions = (raw.get(CRD_PATH).get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

    eventually(established, 30, every=0.2)


@pytest.fixture
def store(admin_api: client.ApiClient) -> Iterator[UnitStore]:
    raw = RawApi(admin_api)
    install_unit_crd(raw)  # cluster-wide and shared by tests that run at once: installed, never removed
    yield UnitStore(raw)


def make_unit(raw: RawApi, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = {"apiVersion": "gitopsguard.io/v1alpha1", "kind": "Unit", "metadata": {"name": name}, "spec": spec}
    return raw.call("POST", UNITS.format(namespace=namespace), f"Unit/{namespace}/{name}", body=body)


def run_kubectl(cluster: LiveCluster, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kubectl(), "--kubeconfig", str(cluster.kubeconfig), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def test_a_unit_is_stored_with_its_defaults(admin_api: client.ApiClient, store: UnitStore, namespace: str) -> None:
    make_unit(RawApi(admin_api), namespace, "apps", {"path": "teams/a", "dependsOn": [{"name": "infra"}]})
    unit = store.get(namespace, "apps")
    assert unit.body["spec"] == {"path": "teams/a", "dependsOn": [{"name": "infra"}], "prune": True}
    assert [u.name for u in store.list(namespace)] == ["apps"] and unit.generation == 1


@pytest.mark.parametrize(
    "spec",
    [{"path": "../other-team"}, {"path": "/etc"}, {"path": "teams/../../x"}, {"path": "teams/*"}, {},
     {"path": "a", "interval": "5 minutes"}, {"path": "a", "interval": "\u0665m"}, {"path": "a", "suspend": "true"},
     {"path": "a", "dependsOn": [{"name": f"u{i}"} for i in range(33)]}, {"path": "a", "serviceAccountName": "a:b"},
     {"path": "a", "wait": {"cel": [{"apiVersion": "v1", "kind": "Pod", "expression": "x" * 1025}]}},
     {"path": "a" * 513}],
)  # fmt: skip
def test_the_api_server_refuses_what_gitopsguard_would(
    admin_api: client.ApiClient, store: UnitStore, namespace: str, spec: dict[str, Any]
) -> None:
    """Someone with RBAC on Units writes one directly: the schema holds the same bounds as units/spec.py."""
    with pytest.raises(InvalidError, match=rf"^Unit/{namespace}/bad: "):
        make_unit(RawApi(admin_api), namespace, "bad", spec)


def test_status_is_written_through_the_status_subresource_only(
    admin_api: client.ApiClient, store: UnitStore, namespace: str
) -> None:
    raw = RawApi(admin_api)
    make_unit(raw, namespace, "apps", {"path": "teams/a"})
    forged = {"status": {"lastAppliedRevision": "forged"}}
    raw.call("PATCH", f"{UNITS.format(namespace=namespace)}/apps", body=forged,
             content_type="application/merge-patch+json")  # fmt: skip
    unit = store.get(namespace, "apps")
    assert unit.status == {}  # a write of the object itself cannot set its status
    written = store.write_status(unit, status_of(PassOutcome(Phase.SUCCEEDED, 1, "abc123", objects=4), None,
                                                 datetime.now(UTC)))  # fmt: skip
    assert written.status["lastAppliedRevision"] == "abc123" and written.status["objects"] == 4
    assert written.generation == 1  # a status write is no new spec


def test_a_status_computed_from_an_older_unit_is_refused(
    admin_api: client.ApiClient, store: UnitStore, namespace: str
) -> None:
    """Two writers (a replica that lost its lease, and the new leader): the one that read the older Unit loses."""
    make_unit(RawApi(admin_api), namespace, "apps", {"path": "teams/a"})
    old = store.get(namespace, "apps")
    store.write_status(old, status_of(PassOutcome(Phase.SUCCEEDED, 1, "new"), None, datetime.now(UTC)))
    with pytest.raises(ConflictError, match=rf"^Unit/{namespace}/apps: "):
        store.write_status(old, status_of(PassOutcome(Phase.FAILED, 1, "old", message="x"), None, datetime.now(UTC)))
    assert store.get(namespace, "apps").status["lastAppliedRevision"] == "new"


def test_kubectl_get_units_shows_ready_status_revision_objects_and_age(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, store: UnitStore, namespace: str
) -> None:
    make_unit(RawApi(admin_api), namespace, "apps", {"path": "teams/a"})
    applied = PassOutcome(Phase.SUCCEEDED, 1, "main@abc123", objects=4)
    store.write_status(store.get(namespace, "apps"), status_of(applied, None, datetime.now(UTC)))
    shown = run_kubectl(dev_cluster, "get", "gu", "-n", namespace)  # the short name
    assert shown.returncode == 0, shown.stderr
    header, row = shown.stdout.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "REVISION", "OBJECTS", "AGE"]
    assert row.split()[:7] == ["apps", "True", "Applied", "revision", "main@abc123", "main@abc123", "4"]


def test_kubectl_wait_for_ready_returns_once_ready_is_true(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, store: UnitStore, namespace: str
) -> None:
    make_unit(RawApi(admin_api), namespace, "apps", {"path": "teams/a"})
    store.write_status(store.get(namespace, "apps"), status_of(PassOutcome(Phase.PROGRESSING, 1), None,
                                                               datetime.now(UTC)))  # fmt: skip
    result: list[subprocess.CompletedProcess[str]] = []
    waiter = threading.Thread(
        target=lambda: result.append(
            run_kubectl(
                dev_cluster, "wait", "--for=condition=Ready", "unit/apps", "-n", namespace, "--timeout=60s", timeout=90
            )
        )
    )
    waiter.start()
    time.sleep(2)  # kubectl is waiting on a Unit that is not Ready yet
    assert waiter.is_alive(), result[0].stdout + result[0].stderr if result else ""
    store.write_status(store.get(namespace, "apps"), status_of(PassOutcome(Phase.SUCCEEDED, 1, "abc"), None,
                                                               datetime.now(UTC)))  # fmt: skip
    waiter.join(90)
    assert result and result[0].returncode == 0, result[0].stderr if result else "kubectl wait did not return"
    assert "condition met" in result[0].stdout


def test_an_event_is_recorded_on_the_unit(admin_api: client.ApiClient, store: UnitStore, namespace: str) -> None:
    make_unit(RawApi(admin_api), namespace, "apps", {"path": "teams/a"})
    assert store.record_event(store.get(namespace, "apps"), "ReconciliationSucceeded", "Applied revision abc") is None
    events = client.CoreV1Api(admin_api).list_namespaced_event(namespace).items
    assert [(e.involved_object.kind, e.involved_object.name, e.reason) for e in events] == [
        ("Unit", "apps", "ReconciliationSucceeded")
    ]
