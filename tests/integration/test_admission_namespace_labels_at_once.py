"""A namespace's Pod Security labels count at admission as soon as the watch of every Namespace sees them
(``admission.serve.watched_namespaces``), not when a cached read of the namespace runs out (5 s).

Who would break it: a tenant who creates a privileged Pod in the moments after an operator tightened their
namespace's `enforce` level, while the webhook still judged by the level it had read just before."""

from __future__ import annotations

import threading
import time
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
from gitopsguard.admission.serve import NAMESPACE_TTL, namespace_cache, start_admission, watched_namespaces
from gitopsguard.admission.server import Settings
from gitopsguard.audit import AuditLog
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.events import EventRecorder
from gitopsguard.cluster.namespaces import NamespaceView
from gitopsguard.cluster.rest import RawApi
from gitopsguard.policy import DenyLevel, PolicySet
from gitopsguard.policy.podsecurity import Exemptions
from tests.admissionreview import hack_a_node_pod
from tests.integration.conftest import LiveCluster
from tests.integration.test_admission import SCOPE_LABEL, Hook, _free_port, client_ca
from tests.integration.test_admission_pod_security import label
from tests.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def hook(dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Hook]:
    scope, raw, port = uuid.uuid4().hex[:12], RawApi(admin_api), _free_port()
    settings = WebhookSettings(name=f"gitopsguard-test-{scope}", url=f"https://127.0.0.1:{port}", namespace=namespace,
                               also_match=({"key": SCOPE_LABEL, "operator": "In", "values": [scope]},),
                               always=frozenset({"Pod", "Namespace"}))  # fmt: skip
    audit = AuditLog(tmp_path / "audit.jsonl")
    hook = Hook(dev_cluster, raw, namespace, settings, audit, [Judgement(PolicySet(()), DenyLevel.LOW, "abc123")])
    events = EventRecorder(raw)
    recorder = AdmissionRecorder(audit, lambda body, reason, message: events.record(body, reason, message),
                                 AdmissionMetrics(CollectorRegistry()))  # fmt: skip
    label(hook, {SCOPE_LABEL: scope, "pod-security.kubernetes.io/enforce": "baseline"})
    stop = threading.Event()
    view = NamespaceView(Applier(admin_api), raw)
    view.start(stop)
    try:
        hook.admission = start_admission(raw, ("127.0.0.1", port), settings, lambda: hook.judgement[0], recorder, stop,
                                         label_system_namespaces=False, learn_identity=False,
                                         server_settings=Settings(timeout=4.0, client_ca=client_ca(hook.cluster)),
                                         pod_security=pod_security_seam(Exemptions()),
                                         namespaces=watched_namespaces(view, namespace_cache(raw)))  # fmt: skip
        eventually(lambda: hook.create(hack_a_node_pod(namespace, name="probe"))[0] >= 400, timeout=20)
        yield hook
    finally:
        stop.set()
        remove(raw, hook.settings.name)
        if hook.admission is not None:
            hook.admission.server.stop()


def test_a_tightened_enforce_level_denies_the_next_privileged_pod_at_once_not_after_the_cache(hook: Hook) -> None:
    label(hook, {"pod-security.kubernetes.io/enforce": "privileged"})
    pod = hack_a_node_pod(hook.namespace, name="hack")
    eventually(lambda: hook.create(pod)[0] == 201, timeout=20)  # admitted: the namespace's labels were just read
    label(hook, {"pod-security.kubernetes.io/enforce": "baseline"})
    tightened = time.monotonic()
    eventually(lambda: hook.create(pod)[0] >= 400, timeout=NAMESPACE_TTL, every=0.05)
    took = time.monotonic() - tightened
    assert took < 1.5, f"the tightened level counted after {took:.2f} s: judged by labels read before it"
