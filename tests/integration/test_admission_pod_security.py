"""Pod Security Admission semantics brought to a 1.20.2 API server (which has none): the namespace labels
`pod-security.kubernetes.io/enforce|warn|audit` decide at the front door, with no repository policy at all.
The attacker is a tenant with `edit` in one namespace, running the issue's hack-a-node Pod."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry

from gitopsguard.admission.configurations import WebhookSettings, remove
from gitopsguard.admission.podsecurity import pod_security_seam
from gitopsguard.admission.record import AdmissionMetrics, AdmissionRecorder
from gitopsguard.admission.review import Judgement
from gitopsguard.admission.serve import start_admission
from gitopsguard.admission.server import Settings
from gitopsguard.audit import AuditLog
from gitopsguard.cluster.events import EventRecorder
from gitopsguard.cluster.rest import RawApi
from gitopsguard.policy import DenyLevel, PolicySet
from gitopsguard.policy.podsecurity import Exemptions
from tests.admissionreview import hack_a_node_pod
from tests.integration.conftest import LiveCluster, bind_user
from tests.integration.test_admission import OVERRIDES, SCOPE_LABEL, Hook, _free_port, client_ca
from tests.waiting import eventually

pytestmark = pytest.mark.integration
MERGE = "application/merge-patch+json"


def label(hook: Hook, labels: dict[str, str | None]) -> None:
    hook.raw.request("PATCH", f"/api/v1/namespaces/{hook.namespace}", body={"metadata": {"labels": labels}},
                     content_type=MERGE)  # fmt: skip


@pytest.fixture
def hook(dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Hook]:
    scope = uuid.uuid4().hex[:12]
    raw = RawApi(admin_api)
    port = _free_port()
    settings = WebhookSettings(name=f"gitopsguard-test-{scope}", url=f"https://127.0.0.1:{port}", namespace=namespace,
                               also_match=({"key": SCOPE_LABEL, "operator": "In", "values": [scope]},),
                               always=frozenset({"Pod", "Deployment", "Namespace"}))  # fmt: skip
    audit = AuditLog(tmp_path / "audit.jsonl")
    hook = Hook(dev_cluster, raw, namespace, settings, audit, [Judgement(PolicySet(()), DenyLevel.LOW, "abc123")])
    events = EventRecorder(raw)
    recorder = AdmissionRecorder(audit, lambda body, reason, message: events.record(body, reason, message),
                                 AdmissionMetrics(CollectorRegistry()))  # fmt: skip
    label(hook, {SCOPE_LABEL: scope, "pod-security.kubernetes.io/enforce": "baseline"})
    stop = threading.Event()
    seam = pod_security_seam(Exemptions(usernames=frozenset({"carol"})))
    try:
        hook.admission = start_admission(raw, ("127.0.0.1", port), settings, lambda: hook.judgement[0], recorder, stop,
                                         label_system_namespaces=False, learn_identity=False,
                                         server_settings=Settings(timeout=4.0, client_ca=client_ca(hook.cluster)),
                                         pod_security=seam)  # fmt: skip
        probe = hack_a_node_pod(namespace, name="probe")
        eventually(lambda: hook.create(probe)[0] >= 400, timeout=20)  # the API server has loaded the configurations
        yield hook
    finally:
        stop.set()
        remove(raw, hook.settings.name)
        if hook.admission is not None:
            hook.admission.server.stop()


def run_hack_a_node(hook: Hook, context: str = "dev-alice") -> tuple[int, str]:
    result = hook.kubectl("run", f"my-pod-{uuid.uuid4().hex[:5]}", "--image", "alpine", "--restart=Never",
                          f"--overrides={json.dumps(OVERRIDES)}", context=context)  # fmt: skip
    return result.returncode, result.stderr


def test_enforce_baseline_denies_the_hack_a_node_pod_at_kubectl_run_naming_the_controls(hook: Hook) -> None:
    bind_user(hook.cluster.api(), hook.namespace, "alice-edit", "ClusterRole", "edit")
    code, stderr = run_hack_a_node(hook)
    assert code != 0 and "denied the request" in stderr, stderr
    assert "Host Namespaces" in stderr and "Privileged Containers" in stderr


def test_warn_returns_warnings_and_admits(hook: Hook) -> None:
    label(hook, {"pod-security.kubernetes.io/enforce": None, "pod-security.kubernetes.io/warn": "baseline"})
    pod = hack_a_node_pod(hook.namespace, name="warned")
    eventually(lambda: hook.create(pod)[0] == 201, timeout=20)  # the webhook reads namespace labels anew every 5 s
    dry = hook.kubectl("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(pod))
    assert dry.returncode == 0 and "Warning:" in dry.stderr and "Host Namespaces" in dry.stderr, dry.stderr


def test_a_workload_in_an_enforcing_namespace_is_admitted_with_warnings_not_denied(hook: Hook) -> None:
    template = json.loads(json.dumps(hack_a_node_pod(hook.namespace, name="x")["spec"]))
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "privileged"},
                  "spec": {"selector": {"matchLabels": {"app": "p"}},
                           "template": {"metadata": {"labels": {"app": "p"}}, "spec": template}}}  # fmt: skip
    applied = hook.kubectl("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(deployment))
    assert applied.returncode == 0, applied.stderr
    assert "Warning:" in applied.stderr and "Privileged Containers" in applied.stderr


def test_an_exempt_user_is_not_held_to_the_labels(hook: Hook) -> None:
    bind_user(hook.cluster.api(), hook.namespace, "carol-edit", "ClusterRole", "edit", user="carol")
    code, stderr = run_hack_a_node(hook, context="dev-carol")
    assert code == 0, stderr
