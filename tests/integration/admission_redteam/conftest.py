"""Fixtures for the red team's attacks on the admission webhooks (issue 16): the integration fixtures, and a
webhook started the way production starts it, scoped to one test namespace by a label value of its own and
removed in teardown whatever happens (the dev cluster is shared: a leftover Fail webhook breaks everyone)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry

from gitopsguard.admission.configurations import FailurePolicy, WebhookSettings, remove
from gitopsguard.admission.record import AdmissionMetrics, AdmissionRecorder
from gitopsguard.admission.review import Judgement, PodSecurity
from gitopsguard.admission.serve import start_admission
from gitopsguard.admission.server import Settings
from gitopsguard.audit import AuditLog
from gitopsguard.cluster.events import EventRecorder
from gitopsguard.cluster.rest import RawApi
from tests.integration.conftest import LiveCluster
from tests.integration.test_admission import SCOPE_LABEL, Hook, _free_port, client_ca

MERGE = "application/merge-patch+json"


class Starter(Protocol):
    """The ``start_hook`` fixture: a webhook on this test's namespace only."""

    def __call__(
        self,
        judgement: Judgement | None,
        *,
        always: frozenset[str] = frozenset(),
        learn_identity: bool = False,
        pod_security: PodSecurity | None = None,
        settings: Settings | None = None,
    ) -> Hook: ...


def label(raw: RawApi, name: str, labels: dict[str, str | None]) -> None:
    status, answer = raw.request("PATCH", f"/api/v1/namespaces/{name}", body={"metadata": {"labels": labels}},
                                 content_type=MERGE)  # fmt: skip
    assert status == 200, answer


@pytest.fixture
def start_hook(
    dev_cluster: LiveCluster,
    admin_api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Starter]:
    """``start(judgement, *, always=frozenset(), learn_identity=False, pod_security=None, settings=Settings())``:
    a webhook on this test's namespace only (``start_admission`` adds Pods and workloads to ``always`` when the
    Pod Security seam is given)."""
    raw = RawApi(admin_api)
    ca = client_ca(dev_cluster)

    def authenticated(settings: Settings) -> Settings:  # as an operator runs it: only the API server may call
        return replace(settings, client_ca=settings.client_ca or ca)

    stops: list[tuple[threading.Event, Hook]] = []

    def start(judgement: Judgement | None, *, always: frozenset[str] = frozenset(), learn_identity: bool = False,
              pod_security: PodSecurity | None = None, settings: Settings | None = None) -> Hook:  # fmt: skip
        scope = uuid.uuid4().hex[:12]
        label(raw, namespace, {SCOPE_LABEL: scope})
        port = _free_port()
        webhook = WebhookSettings(name=f"gitopsguard-redteam16-{scope}", url=f"https://127.0.0.1:{port}",
                                  namespace=namespace, failure_policy=FailurePolicy.FAIL,
                                  also_match=({"key": SCOPE_LABEL, "operator": "In", "values": [scope]},),
                                  always=always)  # fmt: skip
        audit = AuditLog(tmp_path / f"audit-{scope}.jsonl")
        hook = Hook(dev_cluster, raw, namespace, webhook, audit, [judgement])
        events = EventRecorder(raw)
        recorder = AdmissionRecorder(audit, lambda body, reason, message: events.record(body, reason, message),
                                     AdmissionMetrics(CollectorRegistry()))  # fmt: skip
        stop = threading.Event()
        stops.append((stop, hook))
        hook.admission = start_admission(raw, ("127.0.0.1", port), webhook, lambda: hook.judgement[0], recorder,
                                         stop, label_system_namespaces=False, learn_identity=learn_identity,
                                         server_settings=authenticated(settings or Settings(timeout=4.0)),
                                         pod_security=pod_security)  # fmt: skip
        return hook

    try:
        yield start
    finally:
        for stop, hook in stops:
            stop.set()
            remove(raw, hook.settings.name)
            if hook.admission is not None:
                hook.admission.server.stop()
