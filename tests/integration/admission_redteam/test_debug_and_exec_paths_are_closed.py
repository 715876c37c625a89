"""Attacks that held: `kubectl debug` (a privileged copy of a Pod, an ephemeral container) and the Pod
subresources a tenant with `edit` can reach, in a namespace labelled enforce=baseline.

- `kubectl debug --copy-to --profile=sysadmin` makes a new, privileged Pod: a CREATE, judged and refused.
- An ephemeral container needs `patch` on the `pods/ephemeralcontainers` subresource, which 1.20's `edit`
  role does not grant: refused by RBAC. Where `edit` has it (newer clusters), the webhook's rules (resources
  `pods` only) and review.py's _judged (any subresource passes) never judge it: a known gap
  (docs/threat-model.md), although policy/podsecurity.py says it is "checked like the Pod".
- `kubectl exec` is a CONNECT on pods/exec, which Pod Security Admission ignores too (not judged, by design).
"""

from __future__ import annotations

import pytest

from gitopsguard.admission.podsecurity import pod_security_seam
from gitopsguard.admission.review import Judgement
from gitopsguard.cluster.rest import RawApi
from gitopsguard.policy import DenyLevel, PolicySet
from tests.admissionreview import hack_a_node_pod
from tests.integration.conftest import bind_user
from tests.integration.test_admission import Hook
from tests.waiting import eventually

from .conftest import Starter, label

pytestmark = pytest.mark.integration


@pytest.fixture
def hook(start_hook: Starter, namespace: str) -> Hook:
    started: Hook = start_hook(Judgement(PolicySet(()), DenyLevel.LOW, "abc123"), pod_security=pod_security_seam(),
                               always=frozenset({"Pod", "Namespace"}))  # fmt: skip
    label(started.raw, namespace, {"pod-security.kubernetes.io/enforce": "baseline"})
    bind_user(started.cluster.api(), namespace, "alice-edit", "ClusterRole", "edit")
    alice = RawApi(started.cluster.api("dev-alice"))
    pods = f"/api/v1/namespaces/{namespace}/pods"
    eventually(lambda: alice.request("POST", pods, body=hack_a_node_pod(namespace), query={"dryRun": "All"})[0]
               == 403, timeout=20)  # fmt: skip
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"containers": [{"name": "app", "image": "alpine"}]}}  # fmt: skip
    assert alice.request("POST", pods, body=body)[0] == 201
    return started


def test_kubectl_debug_copy_with_the_sysadmin_profile_is_refused(hook: Hook) -> None:
    result = hook.kubectl("debug", "web", "--copy-to=web-debug", "--image=busybox", "--profile=sysadmin",
                          "--", "sleep", "1", context="dev-alice")  # fmt: skip
    assert result.returncode != 0, result.stdout
    assert "Privileged" in result.stderr, result.stderr
    assert hook.raw.request("GET", f"/api/v1/namespaces/{hook.namespace}/pods/web-debug")[0] == 404


def test_an_ephemeral_debug_container_cannot_be_added_on_this_cluster(hook: Hook) -> None:
    result = hook.kubectl("debug", "web", "--image=busybox", "--profile=sysadmin", "--", "sleep", "1",
                          context="dev-alice")  # fmt: skip
    assert result.returncode != 0, result.stdout
    assert "pods/ephemeralcontainers" in result.stderr, result.stderr  # RBAC: 1.20's edit role lacks it
    pod = hook.raw.request("GET", f"/api/v1/namespaces/{hook.namespace}/pods/web")[1]
    assert not pod["spec"].get("ephemeralContainers"), pod["spec"].get("ephemeralContainers")
