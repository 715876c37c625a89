"""Unmanaged tracking believes no owner a tenant makes: a workload is managed when Git applies it, a unit's
inventory lists it, or a controller that really controls its kind exists and is itself managed or tracked.
Tenant alice has edit rights in one namespace, on the real API server (its controllers running)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.model import ObjectKey
from gitopsguard.plan import unmanaged as stray
from gitopsguard.plan.prepare import Desired
from gitopsguard.scan.trust import managed_check
from tests.integration import test_scan_trust
from tests.integration.test_scan_owners import controller, owned_pod, template, with_kind
from tests.integration.test_scan_trust import Tenant
from tests.kube import as_model
from tests.waiting import eventually

pytestmark = pytest.mark.integration
tenant = test_scan_trust.tenant  # alice with edit rights in a namespace of her own
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def candidates(t: Tenant, desired: list[Desired] | None = None) -> set[tuple[str, str]]:
    """(kind, name) of every workload unmanaged tracking would report in the tenant's namespace."""
    applier = Applier(t.admin)
    live = applier.list_in_namespace(stray.WORKLOAD_KINDS, t.namespace)
    policy = stray.Policy(t.namespace, True, timedelta(hours=1))
    verdicts = stray.judge(live, policy, {}, NOW, managed_check(applier, desired or []))
    return {(v.key.kind, v.key.name) for v in verdicts}


def test_a_pod_naming_a_configmap_as_controller_is_tracked_as_unmanaged(tenant: Tenant) -> None:
    anchor = client.CoreV1Api(tenant.alice).create_namespaced_config_map(
        tenant.namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="anchor"))
    )
    pod = owned_pod("handmade", with_kind(anchor, "v1", "ConfigMap"), security=None)
    client.CoreV1Api(tenant.alice).create_namespaced_pod(tenant.namespace, pod)
    assert ("Pod", "handmade") in candidates(tenant)


def test_a_pod_naming_the_tenants_own_deployment_as_controller_is_tracked_as_unmanaged(tenant: Tenant) -> None:
    apps = client.AppsV1Api(tenant.alice)
    decoy = apps.create_namespaced_deployment(
        tenant.namespace, as_model(client.V1Deployment, controller("Deployment", "decoy", template("decoy")))
    )
    pod = owned_pod("handmade", with_kind(decoy, "apps/v1", "Deployment"), security=None)
    client.CoreV1Api(tenant.alice).create_namespaced_pod(tenant.namespace, pod)
    assert {("Pod", "handmade"), ("Deployment", "decoy")} <= candidates(tenant)


def test_a_replicaset_the_tenant_made_is_tracked_itself_not_hidden_behind_its_pods(tenant: Tenant) -> None:
    apps = client.AppsV1Api(tenant.alice)
    apps.create_namespaced_replica_set(
        tenant.namespace, as_model(client.V1ReplicaSet, controller("ReplicaSet", "bare", template("bare"), 1))
    )
    core = client.CoreV1Api(tenant.admin)
    eventually(lambda: len(core.list_namespaced_pod(tenant.namespace).items) == 1, timeout=20, every=0.1)
    assert candidates(tenant) == {("ReplicaSet", "bare")}  # its Pod goes with it (background propagation)


def test_what_a_git_managed_deployment_makes_is_never_tracked(tenant: Tenant) -> None:
    body: dict[str, Any] = controller("Deployment", "from-git", template("from-git"), 2)
    client.AppsV1Api(tenant.alice).create_namespaced_deployment(tenant.namespace, as_model(client.V1Deployment, body))
    core = client.CoreV1Api(tenant.admin)
    eventually(lambda: len(core.list_namespaced_pod(tenant.namespace).items) == 2, timeout=20, every=0.1)
    key = ObjectKey("apps", "Deployment", tenant.namespace, "from-git")
    assert candidates(tenant, [Desired(key, body, "apps/x.yaml:1", "apps/v1", 2)]) == set()
