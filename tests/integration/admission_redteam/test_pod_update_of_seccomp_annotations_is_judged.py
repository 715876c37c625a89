"""Attack: turn seccomp off on a running Pod by annotation, where the namespace enforces a Pod Security version
before v1.19 (which judges seccomp by annotations).

gitopsguard skips a Pod UPDATE that adds no container and changes no image (policy/podsecurity.py,
_significant_update). Kubernetes' Pod Security Admission also re-evaluates an update that changes the
`seccomp.security.alpha.kubernetes.io/pod` annotation or a container's
`container.seccomp.security.alpha.kubernetes.io/<name>` annotation (kubernetes/pod-security-admission,
admission/admission.go, isSignificantPodUpdate and isSignificantContainerUpdate: "Relevant mutable pod fields
as of 1.21 are image and seccomp annotations"). Annotations are mutable on 1.20 (only AppArmor's are
refused on update), and a 1.20 kubelet falls back to these annotations when the securityContext sets no
seccompProfile, at every container (re)start. So gitopsguard and a cluster's own PSA disagree, and the
door the version label closes at create opens at update.

Attacker: a tenant with `edit` in a namespace labelled enforce=baseline, enforce-version=v1.18.
"""

from __future__ import annotations

import pytest

from gitopsguard.admission.podsecurity import pod_security_seam
from gitopsguard.admission.review import Judgement
from gitopsguard.cluster.rest import RawApi
from gitopsguard.policy import DenyLevel, PolicySet
from tests.admissionreview import hack_a_node_pod
from tests.integration.conftest import bind_user
from tests.waiting import eventually

from .conftest import MERGE, Starter, label

pytestmark = pytest.mark.integration
UNCONFINED = {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}


def plain_pod(namespace: str, name: str, annotations: dict[str, str] | None = None) -> dict[str, object]:
    metadata = {"name": name, "namespace": namespace, **({"annotations": annotations} if annotations else {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "app", "image": "alpine"}]}}  # fmt: skip


@pytest.fixture
def alice(start_hook: Starter, namespace: str) -> RawApi:
    hook = start_hook(Judgement(PolicySet(()), DenyLevel.LOW, "abc123"), pod_security=pod_security_seam(),
                      always=frozenset({"Pod", "Namespace"}))  # fmt: skip
    label(hook.raw, namespace, {"pod-security.kubernetes.io/enforce": "baseline",
                                "pod-security.kubernetes.io/enforce-version": "v1.18"})  # fmt: skip
    bind_user(hook.cluster.api(), namespace, "alice-edit", "ClusterRole", "edit")
    as_alice = RawApi(hook.cluster.api("dev-alice"))
    pods = f"/api/v1/namespaces/{namespace}/pods"
    eventually(lambda: as_alice.request("POST", pods, body=hack_a_node_pod(namespace), query={"dryRun": "All"})[0]
               == 403, timeout=20)  # fmt: skip
    return as_alice


def test_creating_a_pod_with_an_unconfined_seccomp_annotation_is_refused_at_v1_18(
    alice: RawApi, namespace: str
) -> None:
    body = plain_pod(namespace, "at-create", UNCONFINED)
    status, answer = alice.request("POST", f"/api/v1/namespaces/{namespace}/pods", body=body, query={"dryRun": "All"})
    assert status == 403 and "seccomp" in answer.get("message", "").lower(), answer


def test_annotating_a_running_pod_unconfined_is_refused_at_v1_18(alice: RawApi, namespace: str) -> None:
    status, answer = alice.request("POST", f"/api/v1/namespaces/{namespace}/pods", body=plain_pod(namespace, "web"))
    assert status == 201, answer
    status, answer = alice.request("PATCH", f"/api/v1/namespaces/{namespace}/pods/web",
                                   body={"metadata": {"annotations": UNCONFINED}}, content_type=MERGE)  # fmt: skip
    annotations = (answer.get("metadata") or {}).get("annotations") or {}
    assert status == 403, f"admitted ({status}): the Pod now carries {annotations}"
