"""Attack (denial of service): a Pod that predates a mutating policy can no longer be updated at all.

The mutating webhook answers UPDATEs as it answers CREATEs (admission/review.py, mutate_request; JUDGED holds
both) and Pods are not spared for anyone (review.py, control_plane). A policy that fills a pod-spec default
(here `spec.automountServiceAccountToken`, which the API server does not default) therefore adds that field
to every update of an existing Pod that lacks it, and the API server refuses the update ("pod updates may not
change fields other than ..."). A label, an annotation, a finalizer removed, ownerReferences rewritten by the
garbage collector: none can be written any more, so an orphaning delete or a finalizer-guarded cleanup
hangs. The gate only mutates what it applies, so gate and webhook disagree about existing objects.

Attacker: none needed (a repository change adding a mutation); the victims are every writer of older Pods.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from gitopsguard.admission.review import Judgement
from gitopsguard.cluster.rest import RawApi
from gitopsguard.policy import DenyLevel, parse_policies
from tests.integration.conftest import bind_user
from tests.waiting import eventually

from .conftest import MERGE, Starter

pytestmark = pytest.mark.integration
NO_TOKEN = """apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: no-token}
spec:
  match: {kinds: [Pod]}
  mutate:
    setDefaults: [{kinds: [Pod], path: spec.automountServiceAccountToken, value: false}]
"""


def plain_pod(namespace: str, name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "app", "image": "alpine"}]}}  # fmt: skip


def test_a_pod_made_before_a_mutating_policy_can_still_be_labelled(
    start_hook: Starter, admin_api: client.ApiClient, namespace: str
) -> None:  # fmt: skip
    admin_pods = f"/api/v1/namespaces/{namespace}/pods"
    raw_admin = RawApi(admin_api)
    # the older Pod: made before the policy was merged (the webhook is not registered for this namespace yet)
    made: list[tuple[int, dict[str, Any]]] = []

    def created() -> bool:  # 500 until the namespace's token exists
        made.append(raw_admin.request("POST", admin_pods, body=plain_pod(namespace, "older")))
        return made[-1][0] != 500

    eventually(created, timeout=20)
    status, answer = made[-1]
    assert status == 201 and answer["spec"].get("automountServiceAccountToken") is None, answer.get("message")
    hook = start_hook(Judgement(parse_policies({"policies/no-token.yaml": NO_TOKEN}), DenyLevel.LOW, "abc123"))
    bind_user(hook.cluster.api(), namespace, "alice-edit", "ClusterRole", "edit")
    alice = RawApi(hook.cluster.api("dev-alice"))

    def mutating() -> bool:  # the API server has the configurations: a new Pod gets the default
        status, pod = raw_admin.request("POST", admin_pods, body=plain_pod(namespace, "probe"), query={"dryRun": "All"})
        return status == 201 and pod["spec"].get("automountServiceAccountToken") is False

    eventually(mutating, timeout=20)
    status, answer = alice.request("PATCH", f"{admin_pods}/older", body={"metadata": {"labels": {"tier": "web"}}},
                                   content_type=MERGE)  # fmt: skip
    assert status == 200, f"{status}: {str(answer.get('message'))[:300]}"
