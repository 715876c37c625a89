"""An owner proves nothing when the tenant makes it too. Only kinds that really control Pods count as owners
(and for a ReplicaSet or Job, its Deployment or CronJob); and a child whose spec has findings its controller's
template would not produce is judged on its own. Tenant alice has edit rights in one namespace, on the real
API server (with its controllers and garbage collector running)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.rest import RawApi
from gitopsguard.policy import parse_policies
from gitopsguard.scan.scanner import Scanner
from tests.integration import test_scan_trust
from tests.integration.test_scan_trust import Tenant
from tests.kube import as_model, name_of
from tests.waiting import eventually

pytestmark = pytest.mark.integration
tenant = test_scan_trust.tenant  # alice with edit rights in a namespace of her own

BASELINE = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: baseline-delete}
spec:
  builtin: {name: pss-baseline}
  enforcement: enforce
  live: {action: delete, gracePeriod: 1s}
"""
PRIVILEGED = {"privileged": True}


def template(app: str, security: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "example/x:1"}
    if security:
        container["securityContext"] = security
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [container]}}


def owned_pod(name: str, owner: Any, app: str = "none", security: dict[str, Any] | None = PRIVILEGED) -> Any:
    ref = {"apiVersion": owner.api_version, "kind": owner.kind, "name": owner.metadata.name,
           "uid": owner.metadata.uid, "controller": True}  # fmt: skip
    body = template(app, security)
    body["metadata"] |= {"name": name, "ownerReferences": [ref]}
    body["spec"]["automountServiceAccountToken"] = False  # the namespace's token may not be made yet
    return {"apiVersion": "v1", "kind": "Pod", **body}


def controller(kind: str, name: str, pod: dict[str, Any], replicas: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": pod["metadata"]["labels"]}, "template": pod}
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def scanning(t: Tenant) -> Scanner:
    scanner = Scanner(Applier(t.admin), RawApi(t.admin), parse_policies({"p.yaml": BASELINE}), backup_dir=t.backups,
                      namespaces=frozenset({t.namespace}), announce=t.heard.extend)  # fmt: skip
    threading.Thread(target=scanner.run, args=(t.stop,), daemon=True).start()
    return scanner


def with_kind(created: Any, api_version: str, kind: str) -> Any:
    created.api_version, created.kind = api_version, kind
    return created


def test_a_privileged_pod_claiming_the_tenants_own_deployment_as_controller_is_deleted(tenant: Tenant) -> None:
    apps, core = client.AppsV1Api(tenant.alice), client.CoreV1Api(tenant.alice)
    decoy = apps.create_namespaced_deployment(
        tenant.namespace, as_model(client.V1Deployment, controller("Deployment", "decoy", template("decoy")))
    )
    core.create_namespaced_pod(tenant.namespace, owned_pod("hidden-priv", with_kind(decoy, "apps/v1", "Deployment")))
    scanning(tenant)
    eventually(lambda: not tenant.exists("Pod", "hidden-priv"), timeout=20, every=0.1)
    assert tenant.events_once_deleted("Pod", "hidden-priv") == ["violation", "deleted"]


def test_a_privileged_pod_claiming_a_configmap_as_controller_is_deleted_not_held(tenant: Tenant) -> None:
    anchor = client.CoreV1Api(tenant.alice).create_namespaced_config_map(
        tenant.namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="anchor"))
    )
    core = client.CoreV1Api(tenant.alice)
    core.create_namespaced_pod(tenant.namespace, owned_pod("held-priv", with_kind(anchor, "v1", "ConfigMap")))
    scanning(tenant)
    eventually(lambda: not tenant.exists("Pod", "held-priv"), timeout=20, every=0.1)
    assert tenant.events_once_deleted("Pod", "held-priv") == ["violation", "deleted"]


def test_a_privileged_pod_under_a_real_controller_with_a_compliant_template_is_judged_on_its_own(
    tenant: Tenant,
) -> None:
    # a DaemonSet keeps a Pod that matches its selector and is on no node: the Pod keeps its owner
    apps, core = client.AppsV1Api(tenant.alice), client.CoreV1Api(tenant.alice)
    ds = apps.create_namespaced_daemon_set(
        tenant.namespace, as_model(client.V1DaemonSet, controller("DaemonSet", "agent", template("agent")))
    )
    core.create_namespaced_pod(tenant.namespace, owned_pod("riding", with_kind(ds, "apps/v1", "DaemonSet"), "agent"))
    scanning(tenant)
    eventually(lambda: not tenant.exists("Pod", "riding"), timeout=20, every=0.1)
    assert tenant.events_once_deleted("Pod", "riding") == ["violation", "deleted"]
    assert tenant.heard_of("DaemonSet", "agent") == []


def test_pods_a_non_compliant_deployment_makes_are_judged_through_it_not_one_by_one(tenant: Tenant) -> None:
    apps = client.AppsV1Api(tenant.alice)
    loud = controller("Deployment", "loud", template("loud", PRIVILEGED), replicas=2)
    apps.create_namespaced_deployment(tenant.namespace, as_model(client.V1Deployment, loud))
    core = client.CoreV1Api(tenant.admin)
    eventually(lambda: len(core.list_namespaced_pod(tenant.namespace).items) == 2, timeout=20, every=0.1)
    scanner = scanning(tenant)
    eventually(lambda: bool(tenant.heard_of("Deployment", "loud")), timeout=20, every=0.1)
    pods = {name_of(p) for p in core.list_namespaced_pod(tenant.namespace).items}
    assert [a for a in tenant.heard if a.key.kind in ("Pod", "ReplicaSet")] == []
    assert len(pods) == 2 and scanner.evaluations >= 1


def test_a_child_judged_through_its_controller_is_judged_again_under_new_policies(tenant: Tenant) -> None:
    apps, core = client.AppsV1Api(tenant.alice), client.CoreV1Api(tenant.alice)
    ds = apps.create_namespaced_daemon_set(
        tenant.namespace, as_model(client.V1DaemonSet, controller("DaemonSet", "agent", template("agent")))
    )
    core.create_namespaced_pod(tenant.namespace, owned_pod("riding", with_kind(ds, "apps/v1", "DaemonSet"), "agent"))
    lenient = BASELINE + "  match: {kinds: [Deployment]}\n"  # no policy looks at Pods yet
    scanner = Scanner(Applier(tenant.admin), RawApi(tenant.admin), parse_policies({"p.yaml": lenient}),
                      backup_dir=tenant.backups, namespaces=frozenset({tenant.namespace}),
                      announce=tenant.heard.extend)  # fmt: skip
    scanner.scan_all()
    assert tenant.heard_of("Pod", "riding") == []
    scanner.set_policies(parse_policies({"p.yaml": BASELINE}))
    assert [e for e, _ in tenant.heard_of("Pod", "riding")] == ["violation"]


def scanning_under(t: Tenant, files: dict[str, str]) -> Scanner:
    scanner = Scanner(Applier(t.admin), RawApi(t.admin), parse_policies(files), backup_dir=t.backups,
                      namespaces=frozenset({t.namespace}), announce=t.heard.extend)  # fmt: skip
    threading.Thread(target=scanner.run, args=(t.stop,), daemon=True).start()
    return scanner


def host_template(app: str, host_path: str, caps: list[str], privileged: bool = False) -> dict[str, Any]:
    security: dict[str, Any] = {"capabilities": {"add": caps}} | ({"privileged": True} if privileged else {})
    body = template(app, security)
    body["spec"]["volumes"] = [{"name": "logs", "hostPath": {"path": host_path}}]
    return body


def test_a_pod_mounting_the_node_root_behind_an_excepted_daemonset_is_deleted(tenant: Tenant) -> None:
    exception = f"""\
apiVersion: gitopsguard.io/v1alpha1
kind: PolicyException
metadata: {{name: log-agent}}
spec:
  policies: [baseline-delete]
  match: {{kinds: [DaemonSet], names: [log-agent], namespaces: [{tenant.namespace}]}}
  reason: reads node logs
  expires: 2099-06-01T00:00:00Z
"""
    apps, core = client.AppsV1Api(tenant.alice), client.CoreV1Api(tenant.alice)
    agent = host_template("log-agent", "/var/log", ["NET_RAW"])
    ds = apps.create_namespaced_daemon_set(
        tenant.namespace, as_model(client.V1DaemonSet, controller("DaemonSet", "log-agent", agent))
    )
    pod = owned_pod("node-root", with_kind(ds, "apps/v1", "DaemonSet"), "log-agent", None)
    pod["spec"] = {**host_template("log-agent", "/", ["SYS_ADMIN", "SYS_PTRACE"])["spec"],
                   "automountServiceAccountToken": False}  # fmt: skip
    core.create_namespaced_pod(tenant.namespace, pod)
    # the agent's own Pod, as its template makes it: the exception on the DaemonSet covers it too
    own = owned_pod("agent-pod", with_kind(ds, "apps/v1", "DaemonSet"), "log-agent", None)
    own["spec"] = {**agent["spec"], "automountServiceAccountToken": False}
    core.create_namespaced_pod(tenant.namespace, own)
    scanning_under(tenant, {"p.yaml": BASELINE, "e.yaml": exception})
    eventually(lambda: not tenant.exists("Pod", "node-root"), timeout=20, every=0.1)
    assert tenant.events_once_deleted("Pod", "node-root") == ["violation", "deleted"]
    assert tenant.heard_of("DaemonSet", "log-agent") == []
    assert tenant.exists("Pod", "agent-pod") and tenant.heard_of("Pod", "agent-pod") == []


def test_a_privileged_pod_behind_a_daemonset_a_pod_only_policy_never_judges_is_deleted(tenant: Tenant) -> None:
    apps, core = client.AppsV1Api(tenant.alice), client.CoreV1Api(tenant.alice)
    loud = host_template("loud", "/", [], privileged=True)
    ds = apps.create_namespaced_daemon_set(
        tenant.namespace, as_model(client.V1DaemonSet, controller("DaemonSet", "loud", loud))
    )
    pod = owned_pod("priv-root", with_kind(ds, "apps/v1", "DaemonSet"), "loud", None)
    pod["spec"] = {**loud["spec"], "automountServiceAccountToken": False}
    core.create_namespaced_pod(tenant.namespace, pod)
    scanning_under(tenant, {"p.yaml": BASELINE + "  match: {kinds: [Pod]}\n"})
    eventually(lambda: not tenant.exists("Pod", "priv-root"), timeout=20, every=0.1)
    assert tenant.events_once_deleted("Pod", "priv-root") == ["violation", "deleted"]


def test_a_pod_excused_by_its_daemonsets_template_is_judged_again_when_the_daemonset_is_made_compliant(
    tenant: Tenant,
) -> None:
    apps, core = client.AppsV1Api(tenant.alice), client.CoreV1Api(tenant.alice)
    loud = template("agent", PRIVILEGED)
    ds = apps.create_namespaced_daemon_set(
        tenant.namespace, as_model(client.V1DaemonSet, controller("DaemonSet", "agent", loud))
    )
    core.create_namespaced_pod(tenant.namespace, owned_pod("riding", with_kind(ds, "apps/v1", "DaemonSet"), "agent"))
    lenient = BASELINE.replace("gracePeriod: 1s", "gracePeriod: 1h")  # the DaemonSet stays while it is fixed
    scanner = scanning_under(tenant, {"p.yaml": lenient})
    eventually(lambda: bool(tenant.heard_of("DaemonSet", "agent")), timeout=20, every=0.1)
    assert tenant.heard_of("Pod", "riding") == [] and scanner.evaluations >= 1  # excused: its controller's finding
    fixed = template("agent", {"privileged": False})  # a strategic merge keeps fields a patch leaves out
    apps.patch_namespaced_daemon_set("agent", tenant.namespace, {"spec": {"template": fixed}})
    eventually(lambda: bool(tenant.heard_of("Pod", "riding")), timeout=20, every=0.1)
    assert [e for e, _ in tenant.heard_of("Pod", "riding")][:1] == ["violation"]
