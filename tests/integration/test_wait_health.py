"""A Unit's ``wait`` on the real control plane: ``sync.wait.wait_healthy`` reads what a pass applied until it is
healthy, one object fails, or the deadline passes, and says which object is not healthy and why.

Without a node (the shared dev cluster), Pods are never scheduled: a Deployment then never becomes available,
a Deployment whose progress deadline passes fails, a DaemonSet has nowhere to run (desired 0, Current), and
the CEL checks judge ConfigMaps and custom resources whose status the test writes. A Deployment that rolls
out and a Job that completes need the node (``node_namespace`` skips without one)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.rest import RawApi, Request
from gitopsguard.model import Action, Change, ObjectKey, Reason
from gitopsguard.plan.health import State
from gitopsguard.sync.wait import Ending, compile_checks, wait_for_unit, wait_healthy
from gitopsguard.units.identity import UnitRef
from gitopsguard.units.spec import CelCheck, UnitSpec, WaitSpec
from tests.integration.conftest import LiveCluster, has_node
from tests.integration.test_node_pods import PROBE_IMAGE, probe_image  # noqa: F401 (a fixture)
from tests.kube import as_model

pytestmark = pytest.mark.integration

MERGE = "application/merge-patch+json"
ORIGIN = "clusters/dev/units.yaml:7"


def unit(*checks: tuple[str, str, str]) -> UnitSpec:
    cel = tuple(CelCheck(*check) for check in checks)
    return UnitSpec(ref=UnitRef("platform", "shop"), origin=ORIGIN, path="apps/shop", interval=timedelta(minutes=5),
                    wait=WaitSpec(True, cel))  # fmt: skip


def deployment(name: str, replicas: int, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    pod = {"containers": [{"name": "c", "image": PROBE_IMAGE, "imagePullPolicy": "Never",
                           "args": ["serve", "8080"],
                           "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                           "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                                               "runAsUser": 65534}}],
           "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False}  # fmt: skip
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}, **spec}}  # fmt: skip


def in_(seconds: float) -> float:
    return time.monotonic() + seconds


def test_a_deployment_that_never_becomes_available_is_not_healthy_at_the_timeout_with_its_reason(
    admin_api: client.ApiClient, namespace: str
) -> None:
    # Pods in `namespace` are never scheduled: no node, or (with one) the suite's taint they do not tolerate
    client.AppsV1Api(admin_api).create_namespaced_deployment(namespace, as_model(client.V1Deployment,
                                                                                 deployment("web", 2)))  # fmt: skip
    key = ObjectKey("apps", "Deployment", namespace, "web")
    started = time.monotonic()
    # 12 s: time enough for the controller-manager, on a loaded machine, to observe it and count its replicas
    waited = wait_healthy(Applier(admin_api), [(key, "apps/v1")], (), in_(12), interval=1)
    assert waited.ending is Ending.TIMED_OUT and not waited.healthy
    assert 12 <= time.monotonic() - started < 40  # one round after the deadline, however slow the machine
    (web,) = waited.not_healthy
    assert web.health.state is State.IN_PROGRESS
    assert waited.message.startswith(f"1 of 1 objects not healthy after 12s: Deployment/{namespace}/web: 0 of 2 "
                                     "replicas available: Deployment does not have minimum availability.")  # fmt: skip


def test_a_deployment_past_its_progress_deadline_fails_the_wait_before_the_timeout(
    admin_api: client.ApiClient, namespace: str
) -> None:
    body = deployment("web", 1, progressDeadlineSeconds=1)
    client.AppsV1Api(admin_api).create_namespaced_deployment(namespace, as_model(client.V1Deployment, body))
    key = ObjectKey("apps", "Deployment", namespace, "web")
    waited = wait_healthy(Applier(admin_api), [(key, "apps/v1")], (), in_(90), interval=1)
    assert waited.ending is Ending.FAILED and waited.seconds < 60
    assert waited.not_healthy[0].health.state is State.FAILED
    assert f"Deployment/{namespace}/web: progress deadline exceeded: " in waited.message


def test_a_deployment_of_zero_replicas_is_healthy_once_its_controller_has_rolled_it_out(
    admin_api: client.ApiClient, namespace: str
) -> None:
    # kube-controller-manager 1.20 writes Available and Progressing (NewReplicaSetAvailable) with no Pod at all
    client.AppsV1Api(admin_api).create_namespaced_deployment(namespace, as_model(client.V1Deployment,
                                                                                 deployment("idle", 0)))  # fmt: skip
    key = ObjectKey("apps", "Deployment", namespace, "idle")
    waited = wait_healthy(Applier(admin_api), [(key, "apps/v1")], (), in_(30), interval=0.5)
    assert waited.healthy, waited.message
    assert waited.objects[0].health.reason == "0 of 0 replicas available"


def stateful_set(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    pod = {"containers": [{"name": "c", "image": PROBE_IMAGE, "imagePullPolicy": "Never", "args": ["serve", "8080"]}]}
    template = {"metadata": {"labels": labels}, "spec": pod}
    spec = {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": labels}, "template": template}
    return {"metadata": {"name": name}, "spec": spec}


def test_a_stateful_set_whose_pods_never_run_is_not_healthy_and_one_of_zero_replicas_is(
    admin_api: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(admin_api)
    for name, replicas in (("db", 1), ("spare", 0)):
        apps.create_namespaced_stateful_set(namespace, as_model(client.V1StatefulSet, stateful_set(name, replicas)))
    db, spare = (ObjectKey("apps", "StatefulSet", namespace, n) for n in ("db", "spare"))
    waited = wait_healthy(Applier(admin_api), [(db, "apps/v1"), (spare, "apps/v1")], (), in_(5), interval=0.5)
    assert waited.ending is Ending.TIMED_OUT
    assert [o.health.reason for o in waited.objects] == ["0 of 1 replicas ready", "0 of 0 replicas ready"]
    assert waited.message == f"1 of 2 objects not healthy after 5s: StatefulSet/{namespace}/db: 0 of 1 replicas ready"


def test_a_job_whose_pod_never_runs_is_not_healthy_with_its_counts(admin_api: client.ApiClient, namespace: str) -> None:
    pod = {"restartPolicy": "Never", "containers": [{"name": "c", "image": PROBE_IMAGE, "imagePullPolicy": "Never"}]}
    body = {"metadata": {"name": "once"}, "spec": {"template": {"spec": pod}}}
    client.BatchV1Api(admin_api).create_namespaced_job(namespace, as_model(client.V1Job, body))
    key = ObjectKey("batch", "Job", namespace, "once")
    waited = wait_healthy(Applier(admin_api), [(key, "batch/v1")], (), in_(4), interval=0.5)
    assert waited.ending is Ending.TIMED_OUT
    assert waited.message.endswith(f"Job/{namespace}/once: not complete: 0 of 1 succeeded, 1 active, 0 failed")


def test_a_daemonset_on_a_cluster_without_nodes_is_current(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str
) -> None:
    if has_node(dev_cluster):
        pytest.skip("a DaemonSet wants 0 pods only on a cluster without nodes")
    labels = {"app": "agent"}
    body = {"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": labels}, "template": {
        "metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": PROBE_IMAGE}]}}}}  # fmt: skip
    client.AppsV1Api(admin_api).create_namespaced_daemon_set(namespace, as_model(client.V1DaemonSet, body))
    key = ObjectKey("apps", "DaemonSet", namespace, "agent")
    waited = wait_healthy(Applier(admin_api), [(key, "apps/v1")], (), in_(30), interval=0.5)
    assert waited.ending is Ending.HEALTHY, waited.message
    assert waited.objects[0].health.reason == "0 of 0 pods ready"


def test_a_cel_check_on_a_configmap_waits_until_it_holds(admin_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_config_map(namespace, as_model(client.V1ConfigMap, {"metadata": {"name": "flag"},
                                                                                "data": {"ready": "no"}}))  # fmt: skip
    checks = compile_checks(unit(("v1", "ConfigMap", "self.data.ready == 'yes'")))
    target = [(ObjectKey("", "ConfigMap", namespace, "flag"), "v1")]
    early = wait_healthy(Applier(admin_api), target, checks, in_(1), interval=0.5)
    assert early.ending is Ending.TIMED_OUT
    assert early.message.endswith(f"ConfigMap/{namespace}/flag: {ORIGIN}: Unit/platform/shop: spec.wait.cel[0]: "
                                  "self.data.ready == 'yes': is false")  # fmt: skip
    core.patch_namespaced_config_map("flag", namespace, {"data": {"ready": "yes"}})
    assert wait_healthy(Applier(admin_api), target, checks, in_(10), interval=0.5).healthy


def _create_gadget(raw: RawApi, group: str, namespace: str) -> str:
    path = f"/apis/{group}/v1/namespaces/{namespace}/gadgets"
    body = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"size": 1}}
    deadline = in_(30)
    while (status := raw.request("POST", path, body=body)[0]) == 404:  # the CRD is not served yet
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status == 201
    return f"{path}/g"


def test_a_cel_check_on_a_custom_resource_reads_the_status_its_controller_writes(
    admin_api: client.ApiClient, namespace: str, gadgets: str
) -> None:
    raw = RawApi(admin_api)
    path = _create_gadget(raw, gadgets, namespace)
    ready = "self.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')"
    checks = compile_checks(unit((f"{gadgets}/v1", "Gadget", ready)))
    target = [(ObjectKey(gadgets, "Gadget", namespace, "g"), f"{gadgets}/v1")]
    unwritten = wait_healthy(Applier(admin_api), target, checks, in_(1), interval=0.5)
    assert unwritten.ending is Ending.TIMED_OUT  # no status yet: waited for, not failed
    assert "spec.wait.cel[0]: " + ready + ": NOT_FOUND" in unwritten.message
    raw.call("PATCH", f"{path}/status", content_type=MERGE,
             body={"status": {"conditions": [{"type": "Ready", "status": "True"}]}})  # fmt: skip
    assert wait_healthy(Applier(admin_api), target, checks, in_(10), interval=0.5).healthy


def test_an_expression_that_fails_on_the_object_fails_the_wait_at_once_naming_the_units_file(
    admin_api: client.ApiClient, namespace: str, gadgets: str
) -> None:
    raw = RawApi(admin_api)
    path = _create_gadget(raw, gadgets, namespace)
    raw.call("PATCH", f"{path}/status", content_type=MERGE, body={"status": {"phase": "Running"}})
    checks = compile_checks(unit((f"{gadgets}/v1", "Gadget", "self.status.phase > 3")))
    target = [(ObjectKey(gadgets, "Gadget", namespace, "g"), f"{gadgets}/v1")]
    waited = wait_healthy(Applier(admin_api), target, checks, in_(60), interval=0.5)
    assert waited.ending is Ending.FAILED and waited.seconds < 5
    expected = f"Gadget/{namespace}/g: {ORIGIN}: Unit/platform/shop: spec.wait.cel[0]: self.status.phase > 3: "
    assert waited.message.startswith(f"1 of 1 objects failed: {expected}cannot be evaluated on it: ")


def test_an_object_gone_after_its_apply_is_not_healthy_and_named(admin_api: client.ApiClient, namespace: str) -> None:
    target = [(ObjectKey("", "ConfigMap", namespace, "never-made"), "v1")]
    waited = wait_healthy(Applier(admin_api), target, (), in_(1), interval=0.5)
    assert waited.ending is Ending.TIMED_OUT
    assert waited.objects[0].health.state is State.UNKNOWN
    assert f"ConfigMap/{namespace}/never-made: not found" in waited.message


def test_a_stop_ends_the_wait_after_one_round(admin_api: client.ApiClient, namespace: str) -> None:
    client.AppsV1Api(admin_api).create_namespaced_deployment(namespace, as_model(client.V1Deployment,
                                                                                 deployment("web", 1)))  # fmt: skip
    key = ObjectKey("apps", "Deployment", namespace, "web")
    waited = wait_healthy(Applier(admin_api), [(key, "apps/v1")], (), in_(600), sleep=lambda _: True)
    assert waited.ending is Ending.STOPPED and waited.seconds < 5
    assert waited.message.startswith("1 of 1 objects not healthy when the wait was stopped: ")


# -- on a node -------------------------------------------------------------------------------------------------


def test_a_deployment_that_rolls_out_is_healthy(
    admin_api: client.ApiClient,
    node_namespace: str,
    probe_image: str,  # noqa: F811 (a fixture)
) -> None:
    body = deployment("web", 2)
    client.AppsV1Api(admin_api).create_namespaced_deployment(node_namespace, as_model(client.V1Deployment, body))
    key = ObjectKey("apps", "Deployment", node_namespace, "web")
    waited = wait_healthy(Applier(admin_api), [(key, "apps/v1")], (), in_(120), interval=1)
    assert waited.healthy, waited.message
    assert waited.objects[0].health.reason == "2 of 2 replicas available"


def test_a_job_is_healthy_once_complete(
    admin_api: client.ApiClient,
    node_namespace: str,
    probe_image: str,  # noqa: F811 (a fixture)
) -> None:
    pod = {"restartPolicy": "Never", "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0,
           "containers": [{"name": "c", "image": probe_image, "imagePullPolicy": "Never",
                           "args": ["closed", "127.0.0.1", "9"]}]}  # fmt: skip
    body = {"metadata": {"name": "once"}, "spec": {"backoffLimit": 0, "template": {"spec": pod}}}
    client.BatchV1Api(admin_api).create_namespaced_job(node_namespace, as_model(client.V1Job, body))
    key = ObjectKey("batch", "Job", node_namespace, "once")
    waited = wait_healthy(Applier(admin_api), [(key, "batch/v1")], (), in_(120), interval=1)
    assert waited.healthy, waited.message
    assert waited.objects[0].health.reason == "complete: 1 succeeded"


def test_an_object_nested_past_what_the_client_parses_is_unknown_and_the_wait_goes_on(
    admin_api: client.ApiClient, namespace: str, gadgets: str
) -> None:
    # whoever may write a custom resource can nest it 1,500 deep: the server stores it, Python's json raises
    # RecursionError (not ValueError) reading it; the edge (rest.answer_object) makes that a ClusterError
    raw = RawApi(admin_api)
    _create_gadget(raw, gadgets, namespace)
    deep = "[" * 1500 + "]" * 1500
    body = f'{{"apiVersion": "{gadgets}/v1", "kind": "Gadget", "metadata": {{"name": "deep"}}, "spec": {deep}}}'
    request = Request("POST", f"/apis/{gadgets}/v1/namespaces/{namespace}/gadgets", {}, body.encode())
    (answer,) = raw.send_all([request], 1)  # the raw answer, unparsed: our client cannot parse it
    assert answer.status == 201
    target = [(ObjectKey(gadgets, "Gadget", namespace, "deep"), f"{gadgets}/v1"),
              (ObjectKey(gadgets, "Gadget", namespace, "g"), f"{gadgets}/v1")]  # fmt: skip
    waited = wait_healthy(Applier(admin_api), target, (), in_(1), interval=0.5)
    assert waited.ending is Ending.TIMED_OUT
    assert [o.health.state for o in waited.objects] == [State.UNKNOWN, State.CURRENT]
    assert waited.message.startswith(f"1 of 2 objects not healthy after 1s: Gadget/{namespace}/deep: could not be "
                                     "read: the answer is nested deeper than this client reads")  # fmt: skip


def test_a_unit_waits_for_what_its_pass_applied_by_its_own_checks(admin_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(admin_api)
    for name, ready in (("flag", "yes"), ("pruned", "no")):
        body = {"metadata": {"name": name}, "data": {"ready": ready}}
        core.create_namespaced_config_map(namespace, as_model(client.V1ConfigMap, body))
    flag, pruned = (ObjectKey("", "ConfigMap", namespace, name) for name in ("flag", "pruned"))
    changes = [Change(flag, "v1", Action.CREATED, Reason.APPLIED), Change(pruned, "v1", Action.DELETED, Reason.PRUNED)]
    waited = wait_for_unit(unit(("v1", "ConfigMap", "self.data.ready == 'yes'")), changes, Applier(admin_api), in_(10))
    assert waited is not None and waited.healthy  # the pruned one is not waited for
    assert [str(o.key) for o in waited.objects] == [f"ConfigMap/{namespace}/flag"]
