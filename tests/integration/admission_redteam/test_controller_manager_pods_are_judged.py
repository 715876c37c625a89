"""Attack: wrap the hack-a-node Pod in a Deployment where the controller-manager runs as the same user as
gitopsguard.

The webhook admits the controller's own writes unjudged once its WHOAMI probe has named its user
(admission/server.py, AdmissionServer._own), and that check comes before the rule that Pods are judged
whoever creates them (review.py, control_plane). Where gitopsguard and the kube-controller-manager
authenticate as the same user, as on the dev cluster and in `make demo` (both use the admin kubeconfig;
tests/integration/test_admission_run.py says "the admin is who the controller runs as here"), every Pod the
ReplicaSet controller makes for a tenant is "our own write": the tenant's Deployment is only warned about
(Pod Security enforces Pods, not templates), and its privileged, host-PID Pod is created.

Attacker: a tenant with `edit` in a namespace labelled pod-security.kubernetes.io/enforce=baseline.
"""

from __future__ import annotations

import uuid

import pytest

from gitopsguard.admission.podsecurity import pod_security_seam
from gitopsguard.admission.review import Judgement
from gitopsguard.cluster.rest import RawApi
from gitopsguard.policy import DenyLevel, PolicySet
from tests.admissionreview import hack_a_node_pod
from tests.integration.conftest import bind_user
from tests.waiting import eventually

from .conftest import Starter, label

pytestmark = pytest.mark.integration


def deployment(namespace: str) -> dict[str, object]:
    template = {"metadata": {"labels": {"app": "node-shell"}}, "spec": hack_a_node_pod(namespace)["spec"]}
    spec = {"replicas": 1, "selector": {"matchLabels": {"app": "node-shell"}}, "template": template}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "node-shell", "namespace": namespace},
            "spec": spec}  # fmt: skip


@pytest.mark.parametrize("learn_identity", [
    pytest.param(True, id="as-gitopsguard-run-learns-its-user"),
    pytest.param(False, id="control-without-the-probe"),
])  # fmt: skip
def test_a_privileged_pod_made_by_the_replicaset_controller_is_refused_in_an_enforce_baseline_namespace(
    start_hook: Starter, namespace: str, learn_identity: bool
) -> None:  # fmt: skip
    hook = start_hook(Judgement(PolicySet(()), DenyLevel.LOW, "abc123"), pod_security=pod_security_seam(),
                      always=frozenset({"Pod", "Deployment", "Namespace"}), learn_identity=learn_identity)  # fmt: skip
    label(hook.raw, namespace, {"pod-security.kubernetes.io/enforce": "baseline"})
    bind_user(hook.cluster.api(), namespace, "alice-edit", "ClusterRole", "edit")
    assert hook.admission is not None
    server = hook.admission.server
    alice = hook.cluster.api("dev-alice")
    as_alice = RawApi(alice)
    pods = f"/api/v1/namespaces/{namespace}/pods"

    def pods_refused() -> bool:  # the API server has loaded the configurations
        probe = hack_a_node_pod(namespace, name=f"probe-{uuid.uuid4().hex[:5]}")
        return as_alice.request("POST", pods, body=probe, query={"dryRun": "All"})[0] == 403

    eventually(pods_refused, timeout=20)
    if learn_identity:
        eventually(lambda: server.me is not None, timeout=20)
    status, answer = as_alice.request("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments",
                                      body=deployment(namespace))  # fmt: skip
    assert status == 201, answer  # a workload is warned about, as Pod Security Admission does

    def replicaset_tried() -> bool:  # the ReplicaSet controller has made its Pod, or been refused
        found = hook.raw.request("GET", pods)[1].get("items") or []
        events = hook.raw.request("GET", f"/api/v1/namespaces/{namespace}/events")[1].get("items") or []
        return bool(found) or any(e.get("reason") == "FailedCreate" for e in events)

    try:
        eventually(replicaset_tried, timeout=30)
    except AssertionError:
        events = hook.raw.request("GET", f"/api/v1/namespaces/{namespace}/events")[1].get("items") or []
        raise AssertionError([(e.get("reason"), e.get("message")) for e in events]) from None
    found = hook.raw.request("GET", pods)[1].get("items") or []
    assert not found, (f"{[p['metadata']['name'] for p in found]} admitted with hostPID="
                       f"{found[0]['spec'].get('hostPID')} (webhook's own user: {server.me!r})")  # fmt: skip
