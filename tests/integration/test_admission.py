"""The admission webhooks on the real API server (1.20.2), called over TLS at https://127.0.0.1:PORT with
the caBundle gitopsguard made.

The dev cluster is shared: each test's configurations have a name of their own, select only namespaces
carrying this test's own label value, and are deleted in teardown whatever happens.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry

from gitopsguard.admission.configurations import FailurePolicy, WebhookSettings, configurations, keep, remove
from gitopsguard.admission.record import AdmissionMetrics, AdmissionRecorder
from gitopsguard.admission.review import Judgement
from gitopsguard.admission.serve import Admission, start_admission
from gitopsguard.admission.server import Settings
from gitopsguard.audit import AuditLog
from gitopsguard.cluster.events import EventRecorder
from gitopsguard.cluster.rest import RawApi
from gitopsguard.devcluster import StateLayout
from gitopsguard.devcluster.pki import WEBHOOK_CLIENT_CA
from gitopsguard.policy import DenyLevel, PolicySet, parse_policies
from gitopsguard.policy.model import Enforcement, Hit, LiveAction, Policy, Selector, Severity
from tests.admissionreview import BASELINE, MAGTAPE, TEAM_LABEL, TTL, exception, hack_a_node_pod
from tests.integration.conftest import LiveCluster, bind_user
from tests.kubectl import kubectl
from tests.waiting import eventually

pytestmark = pytest.mark.integration

SCOPE_LABEL = "gitopsguard.io/admission-test"
# ttlSecondsAfterFinished is behind the TTLAfterFinished feature gate (alpha, off) on 1.20: the API server drops
# it after admission, so a default this server keeps is set too (activeDeadlineSeconds, which it does not default).
DEADLINE = TTL.replace("add-ttl-jobs", "job-deadline").replace(
    "spec.ttlSecondsAfterFinished, value: 90", "spec.activeDeadlineSeconds, value: 600"
)
POLICIES = parse_policies({"policies/pss.yaml": BASELINE, "policies/magtape.yaml": MAGTAPE, "policies/ttl.yaml": TTL,
                           "policies/deadline.yaml": DEADLINE, "policies/team.yaml": TEAM_LABEL})  # fmt: skip
OVERRIDES = {"spec": hack_a_node_pod("x")["spec"]}  # the issue's --overrides


@dataclass
class Hook:
    cluster: LiveCluster
    raw: RawApi
    namespace: str
    settings: WebhookSettings
    audit: AuditLog
    judgement: list[Judgement | None]
    clock: list[datetime] = field(default_factory=lambda: [datetime.now(UTC)])
    admission: Admission | None = None

    def configure(self, **changes: Any) -> None:
        """Rewrite both configurations with these settings changed (the caBundle stays)."""
        assert self.admission is not None
        self.settings = replace(self.settings, **changes)
        kinds = frozenset({"Pod", "Deployment", "Job", "Namespace"})
        keep(self.raw, configurations(self.settings, kinds, self.admission.certificates.bundle))

    def kubectl(self, *args: str, context: str = "dev-admin", stdin: str = "") -> subprocess.CompletedProcess[str]:
        command = [kubectl(), "--kubeconfig", str(self.cluster.kubeconfig), "--context", context, "-n", self.namespace]
        return subprocess.run([*command, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False)

    def create(self, body: dict[str, Any], *, dry_run: bool = True) -> tuple[int, dict[str, Any]]:
        """POST ``body`` into the namespace as the admin (a server dry run unless told otherwise)."""
        plural = {"Pod": "pods", "Job": "jobs", "Deployment": "deployments"}[body["kind"]]
        prefix = "/api/v1" if body["apiVersion"] == "v1" else f"/apis/{body['apiVersion']}"
        query = {"dryRun": "All"} if dry_run else {}
        return self.raw.request("POST", f"{prefix}/namespaces/{self.namespace}/{plural}", body=body, query=query)

    def records(self, event: str) -> list[Any]:
        return [r for r in self.audit.records() if r.event == event] if self.audit.path.exists() else []


def client_ca(cluster: LiveCluster) -> str:
    """The CA of the client certificate the dev cluster's API server shows webhooks; "" for a cluster made
    before it had one (it calls webhooks unauthenticated until it is made anew: `dev-cluster down`, `up`)."""
    path = StateLayout(cluster.kubeconfig.parent).pki_dir / WEBHOOK_CLIENT_CA
    return path.read_text() if path.exists() else ""


def as_api_server(cluster: LiveCluster, tls: ssl.SSLContext) -> ssl.SSLContext:
    """``tls`` showing the client certificate the dev cluster's API server shows webhooks, when it has one:
    a test speaking to the webhook directly, as the API server would."""
    pki = StateLayout(cluster.kubeconfig.parent).pki_dir
    if (pki / "webhook-client.crt").exists():
        tls.load_cert_chain(pki / "webhook-client.crt", pki / "webhook-client.key")
    return tls


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def hook(dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Hook]:
    scope = uuid.uuid4().hex[:12]
    raw = RawApi(admin_api)
    patch = {"metadata": {"labels": {SCOPE_LABEL: scope}}}
    raw.request("PATCH", f"/api/v1/namespaces/{namespace}", body=patch, content_type="application/merge-patch+json")
    port = _free_port()
    settings = WebhookSettings(name=f"gitopsguard-test-{scope}", url=f"https://127.0.0.1:{port}", namespace=namespace,
                               also_match=({"key": SCOPE_LABEL, "operator": "In", "values": [scope]},),
                               always=frozenset({"Pod", "Deployment", "Job", "Namespace"}))  # fmt: skip
    audit = AuditLog(tmp_path / "audit.jsonl")
    hook = Hook(dev_cluster, raw, namespace, settings, audit, [Judgement(POLICIES, DenyLevel.LOW, "abc123")])
    events = EventRecorder(raw)
    recorder = AdmissionRecorder(audit, lambda body, reason, message: events.record(body, reason, message),
                                 AdmissionMetrics(CollectorRegistry()))  # fmt: skip
    stop = threading.Event()
    try:
        hook.admission = start_admission(raw, ("127.0.0.1", port), settings, lambda: hook.judgement[0], recorder, stop,
                                         clock=lambda: hook.clock[0], label_system_namespaces=False,
                                         learn_identity=False,  # these tests write as the admin themselves
                                         server_settings=Settings(timeout=4.0,
                                                                  client_ca=client_ca(dev_cluster)))  # fmt: skip
        eventually(lambda: _denied(hook), timeout=20)  # the API server has loaded the configurations
        yield hook
    finally:
        stop.set()
        remove(raw, hook.settings.name)
        if hook.admission is not None:
            hook.admission.server.stop()


def _denied(hook: Hook) -> bool:
    status, answer = hook.create(hack_a_node_pod(hook.namespace, name=f"probe-{uuid.uuid4().hex[:6]}"))
    return status >= 400 and "gitopsguard" in json.dumps(answer)


def test_the_hack_a_node_pod_is_denied_at_kubectl_run_naming_the_controls_and_the_user(hook: Hook) -> None:
    bind_user(hook.cluster.api(), hook.namespace, "alice-edit", "ClusterRole", "edit")
    result = hook.kubectl("run", "my-pod", "--image", "alpine", "--restart=Never",
                          f"--overrides={json.dumps(OVERRIDES)}", context="dev-alice")  # fmt: skip
    assert result.returncode != 0
    assert "denied the request" in result.stderr, result.stderr
    assert (
        "[FAIL] HIGH - Host Namespaces: hostPID shares the node's namespace (GG1102) at spec.hostPID" in result.stderr
    )
    assert "[FAIL] HIGH - Privileged Containers" in result.stderr
    eventually(lambda: any("by alice (CREATE)" in r.detail for r in hook.records("admission-denied")), timeout=10)

    def event_names_alice() -> bool:
        events = hook.raw.request("GET", f"/api/v1/namespaces/{hook.namespace}/events")[1].get("items") or []
        return any(e.get("reason") == "AdmissionDenied" and "by alice" in e.get("message", "") for e in events)

    eventually(event_names_alice, timeout=10)


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example/web:1
        resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 64Mi}}
"""


def test_a_deployment_missing_probes_is_admitted_with_warnings_kubectl_prints(hook: Hook) -> None:
    result = hook.kubectl("create", "-f", "-", stdin=DEPLOYMENT)
    assert result.returncode == 0, result.stderr
    assert "Warning: [WARN] LOW - liveness probe missing for container 'web' (MT1001)" in result.stderr
    assert "readiness probe missing" in result.stderr
    eventually(lambda: bool(hook.records("admission-warned")), timeout=10)


def test_an_exception_admits_until_it_expires_by_the_webhooks_clock(hook: Hook) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    text = exception(hook.namespace, expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
    hook.judgement[0] = Judgement(parse_policies({"p.yaml": BASELINE, "e.yaml": text}), DenyLevel.LOW)
    pod = hack_a_node_pod(hook.namespace, name="legacy-agent")
    hook.clock[0] = expires - timedelta(seconds=1)
    assert hook.create(pod)[0] == 201
    hook.clock[0] = expires
    status, answer = hook.create(pod)
    assert status == 403 and "Host Namespaces" in answer["message"]


def test_the_mutating_webhooks_patch_is_applied_to_the_stored_object(hook: Hook) -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "labels": {"team": "shop"}},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
               {"name": "c", "image": "registry.example/c:1"}]}}}}  # fmt: skip
    status, stored = hook.create(job, dry_run=False)
    assert status == 201, stored
    assert stored["spec"]["activeDeadlineSeconds"] == 600
    assert stored["metadata"]["labels"] == {"team": "shop", "app.kubernetes.io/managed-by": "gitopsguard"}


def test_a_webhook_that_is_down_denies_under_fail_and_admits_under_ignore(hook: Hook) -> None:
    hook.configure(url=f"https://127.0.0.1:{_free_port()}")  # nothing listens there
    pod = hack_a_node_pod(hook.namespace, name="while-down")
    pod["spec"] = {"containers": [{"name": "c", "image": "registry.example/c:1"}]}

    def refused() -> bool:
        status, answer = hook.create(pod)
        return status >= 400 and "failed calling webhook" in answer.get("message", "")

    eventually(refused, timeout=20)
    hook.configure(failure_policy=FailurePolicy.IGNORE)
    eventually(lambda: hook.create(pod)[0] == 201, timeout=20)


def _slow(seconds: float) -> Policy:
    def check(body: Any, ctx: Any) -> list[Hit]:
        time.sleep(seconds)
        return []

    return Policy("slow", "GG9", Severity.HIGH, "p.yaml:1", Selector(), None, check, None, Enforcement.ENFORCE,
                  LiveAction.REPORT, timedelta(hours=1))  # fmt: skip


def test_a_slow_evaluation_never_holds_the_api_server_past_timeout_seconds(hook: Hook) -> None:
    hook.configure(timeout_seconds=2)
    pod = hack_a_node_pod(hook.namespace, name="slow")
    pod["spec"] = {"containers": [{"name": "c", "image": "registry.example/c:1"}]}
    eventually(lambda: hook.create(pod)[0] == 201, timeout=20)  # compliant: admitted quickly
    time.sleep(2)  # the API server has surely loaded timeoutSeconds: 2 by now (it loaded the url change above)
    hook.judgement[0] = Judgement(PolicySet((_slow(6.0),)), DenyLevel.LOW)
    started = time.monotonic()
    status, answer = hook.create(pod)
    took = time.monotonic() - started
    assert status >= 400, answer  # failurePolicy Fail: a webhook that does not answer in time denies
    assert took < 3.5, f"the API server waited {took:.1f}s"


def test_a_break_glass_namespace_is_not_checked_and_each_switch_is_audited_with_its_user(hook: Hook) -> None:
    label = hook.kubectl("label", "namespace", hook.namespace, "gitopsguard.io/admission=disabled")
    assert label.returncode == 0, label.stderr
    eventually(lambda: hook.create(hack_a_node_pod(hook.namespace, name="glass"))[0] == 201, timeout=20)
    hook.kubectl("label", "namespace", hook.namespace, "gitopsguard.io/admission-")
    eventually(lambda: _denied(hook), timeout=20)
    eventually(lambda: bool(hook.records("admission-break-glass-off")), timeout=10)
    on, off = hook.records("admission-break-glass-on"), hook.records("admission-break-glass-off")
    assert on and on[0].detail.startswith("by admin (UPDATE): admission turned off"), on
    assert off and off[0].detail.startswith("by admin (UPDATE): admission turned on"), off
