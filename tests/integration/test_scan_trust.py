"""The live scan believes nothing a tenant can write alone: a unit label counts only when that unit's inventory
lists the object, an owner only when it exists with the referenced uid. Tenant alice has edit rights in one
namespace, on the real API server."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import Entry, Inventory, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ApplyError
from gitopsguard.model import ObjectKey
from gitopsguard.policy import parse_policies
from gitopsguard.scan.judged import Announcement
from gitopsguard.scan.scanner import Scanner
from tests.integration.conftest import LiveCluster, bind_user
from tests.kube import as_model, close, meta
from tests.policies import team_label_policy
from tests.waiting import eventually

pytestmark = pytest.mark.integration

POLICIES = team_label_policy("1s")


def deployment(name: str, labels: dict[str, str]) -> dict[str, Any]:
    pod = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "example/x:1"}]}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}}, "template": pod}}  # fmt: skip


def pod(name: str, owners: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "ownerReferences": owners},
            "spec": {"containers": [{"name": "c", "image": "example/x:1"}],
                     "automountServiceAccountToken": False}}  # fmt: skip


class Tenant:
    """Alice, with edit rights in her namespace, and a scanner watching it."""

    def __init__(self, cluster: LiveCluster, admin: client.ApiClient, namespace: str, backups: Path) -> None:
        self.admin, self.namespace, self.backups = admin, namespace, backups
        bind_user(admin, namespace, "alice-edit", "ClusterRole", "edit")
        self.alice = cluster.api("dev-alice")
        eventually(self._can_write, timeout=20, every=0.1)
        self.heard: list[Announcement] = []
        self.stop = threading.Event()

    def _can_write(self) -> bool:
        try:
            client.AppsV1Api(self.alice).list_namespaced_deployment(self.namespace)
        except ApiException:
            return False
        return True

    def scan(self) -> Scanner:
        scanner = Scanner(Applier(self.admin), RawApi(self.admin), parse_policies({"p.yaml": POLICIES}),
                          backup_dir=self.backups, namespaces=frozenset({self.namespace}),
                          announce=self.heard.extend)  # fmt: skip
        threading.Thread(target=scanner.run, args=(self.stop,), daemon=True).start()
        return scanner

    def heard_of(self, kind: str, name: str) -> list[tuple[str, str]]:
        return [(a.event, a.detail) for a in list(self.heard) if a.key.kind == kind and a.key.name == name]

    def events_once_deleted(self, kind: str, name: str) -> list[str]:
        """The events heard of a workload, once its deletion has been announced: a round announces at its
        end, so the object can be gone a moment before "deleted" is heard."""
        eventually(lambda: any(event == "deleted" for event, _ in self.heard_of(kind, name)), timeout=20, every=0.1)
        return [event for event, _ in self.heard_of(kind, name)]

    def exists(self, kind: str, name: str) -> bool:
        path = "apis/apps/v1" if kind == "Deployment" else "api/v1"
        status, _ = RawApi(self.admin).request("GET", f"/{path}/namespaces/{self.namespace}/{kind.lower()}s/{name}")
        return status == 200


@pytest.fixture
def tenant(dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Tenant]:
    core = client.CoreV1Api(admin_api)
    eventually(
        lambda: any(meta(sa).name == "default" for sa in core.list_namespaced_service_account(namespace).items),
        timeout=20,
        every=0.1,
    )
    t = Tenant(dev_cluster, admin_api, namespace, tmp_path / "backups")
    yield t
    t.stop.set()
    close(t.alice)
    try:  # the inventory a test saved for its unit (named after its namespace)
        core.delete_namespaced_config_map(f"gitopsguard-inventory-{namespace}", "gitopsguard-system")
    except ApiException as error:
        if error.status != 404:
            raise


def test_a_workload_labelled_with_a_unit_that_does_not_exist_is_deleted_after_its_grace(tenant: Tenant) -> None:
    client.AppsV1Api(tenant.alice).create_namespaced_deployment(
        tenant.namespace,
        as_model(client.V1Deployment, deployment("disguised", {"gitopsguard.io/unit": "no-such-unit"})),
    )
    tenant.scan()
    eventually(lambda: not tenant.exists("Deployment", "disguised"), timeout=20, every=0.1)
    assert tenant.events_once_deleted("Deployment", "disguised") == ["violation", "deleted"]
    ((_, why),) = [h for h in tenant.heard_of("Deployment", "disguised") if h[0] == "violation"]
    assert "no-such-unit" in why and "does not list it" in why


def test_a_workload_labelled_with_a_real_unit_that_does_not_list_it_is_deleted_but_its_own_is_held(
    tenant: Tenant,
) -> None:
    unit = tenant.namespace
    listed = ObjectKey("apps", "Deployment", tenant.namespace, "from-git")
    InventoryStore(tenant.admin).save(unit, Inventory({listed: Entry("apps/v1", "1", "d")}, "abc"))
    apps = client.AppsV1Api(tenant.alice)
    for name in ("from-git", "copied-label"):
        made = as_model(client.V1Deployment, deployment(name, {"gitopsguard.io/unit": unit}))
        apps.create_namespaced_deployment(tenant.namespace, made)
    tenant.scan()
    eventually(lambda: not tenant.exists("Deployment", "copied-label"), timeout=20, every=0.1)
    time.sleep(2)  # well past the grace period: the one the unit's inventory lists is held
    assert tenant.exists("Deployment", "from-git")
    ((event, why),) = tenant.heard_of("Deployment", "from-git")
    assert event == "violation" and "fix it with a pull request" in why


def test_a_pod_claiming_a_controller_that_does_not_exist_is_reported_and_deleted(tenant: Tenant) -> None:
    # an apiVersion the garbage collector cannot resolve, so that it does not remove the pod first
    forged = [{"apiVersion": "example.com/v1", "kind": "ReplicaSet", "name": "web", "uid": str(uuid.uuid4()),
               "controller": True}]  # fmt: skip
    client.CoreV1Api(tenant.alice).create_namespaced_pod(
        tenant.namespace, as_model(client.V1Pod, pod("ghost-child", forged))
    )
    tenant.scan()
    eventually(lambda: not tenant.exists("Pod", "ghost-child"), timeout=20, every=0.1)
    assert tenant.events_once_deleted("Pod", "ghost-child") == ["violation", "deleted"]


def test_an_owner_counts_only_when_it_exists_with_the_referenced_uid(tenant: Tenant) -> None:
    from gitopsguard.scan.trust import Trust

    apps = client.AppsV1Api(tenant.alice)
    made = deployment("web", {"team": "a"})  # a ReplicaSet of its own: Pods name ReplicaSets, not Deployments
    real = apps.create_namespaced_replica_set(
        tenant.namespace, as_model(client.V1ReplicaSet, {**made, "kind": "ReplicaSet"})
    )
    uid = meta(real).uid
    assert uid is not None
    trust = Trust(Applier(tenant.admin), RawApi(tenant.admin), InventoryStore(tenant.admin))

    def standing(api_version: str, kind: str, name: str, owner_uid: str) -> tuple[str, str]:
        ref = {"apiVersion": api_version, "kind": kind, "name": name, "uid": owner_uid, "controller": True}
        body = {**pod("p", [ref]), "metadata": {"name": "p", "namespace": tenant.namespace, "ownerReferences": [ref]}}
        found = trust.standing(body)
        return found.owner_kind, found.owner_name

    assert standing("apps/v1", "ReplicaSet", "web", uid) == ("ReplicaSet", "web")
    assert standing("apps/v1", "ReplicaSet", "web", uid) == ("ReplicaSet", "web")  # from the cache, the same
    assert standing("apps/v1", "ReplicaSet", "web", str(uuid.uuid4())) == ("", "")  # another uid
    assert standing("apps/v1", "ReplicaSet", "nothing-here", uid) == ("", "")  # the right uid, another name
    assert standing("apps/v1", "StatefulSet", "web", uid) == ("", "")  # the right name and uid, another kind
    assert standing("example.com/v1", "ReplicaSet", "web", uid) == ("", "")  # a kind the server does not serve


class CountingApplier(Applier):
    """The real Applier, counting lookups of kinds the server does not serve (each one makes the client
    discover every API group again)."""

    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(api)
        self.unknown: list[str] = []

    def resource(self, api_version: str, kind: str, where: str) -> Any:
        try:
            return super().resource(api_version, kind, where)
        except ApplyError:
            self.unknown.append(api_version)
            raise


def test_forged_owners_of_many_unknown_kinds_cost_one_discovery_not_one_each(tenant: Tenant) -> None:
    core = client.CoreV1Api(tenant.alice)
    for i in range(30):
        forged = [{"apiVersion": f"forged{i}.example.com/v1", "kind": "ReplicaSet", "name": "web",
                   "uid": str(uuid.uuid4()), "controller": True}]  # fmt: skip
        core.create_namespaced_pod(tenant.namespace, as_model(client.V1Pod, pod(f"forged-{i}", forged)))
    time.sleep(6)  # created well before the scan: a discovery made now settles every forged kind
    applier = CountingApplier(tenant.admin)
    scanner = Scanner(applier, RawApi(tenant.admin), parse_policies({"p.yaml": POLICIES.replace("1s", "1h")}),
                      backup_dir=tenant.backups, namespaces=frozenset({tenant.namespace}),
                      announce=tenant.heard.extend)  # fmt: skip
    scanner.scan_all()
    assert [v for v in applier.unknown if "forged" in v] == []  # no full discovery per forged kind
    violations = [a for a in tenant.heard if a.event == "violation" and a.key.name.startswith("forged-")]
    assert len(violations) == 30 and all(a.verdict.outcome.value == "scheduled" for a in violations)
