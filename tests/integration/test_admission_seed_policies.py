"""The five seed policies of repo-template/policies/ at admission, through the real API server (1.20.2) calling
gitopsguard's webhooks over TLS: the template's own policy files, loaded as the controller loads them.

The webhooks are the admission tests' (``hook`` from test_admission.py): configurations of their own name,
selecting only namespaces that carry the test's scope label, deleted in teardown whatever happens.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import uuid
from pathlib import Path
from typing import Any

import pytest

from gitopsguard.admission.review import Judgement
from gitopsguard.policy import DenyLevel, load_policies
from tests.admissionreview import review
from tests.integration.test_admission import SCOPE_LABEL, Hook, as_api_server, hook  # noqa: F401  (hook: the fixture)
from tests.unit.policy.workloads import compliant_spec
from tests.waiting import eventually

pytestmark = pytest.mark.integration
TEMPLATE = Path(__file__).parents[2] / "repo-template"
ENFORCE = "pod-security.kubernetes.io/enforce"
RESOURCES_WARNING = (
    "Warning: [WARN] MED - every container needs resources.requests and resources.limits for cpu and memory (GG3004)"
)


@pytest.fixture
def seeded(hook: Hook) -> Hook:  # noqa: F811  (the imported fixture)
    """The hook judging by repo-template/policies/, once the API server sends Namespaces to both webhooks."""
    hook.judgement[0] = Judgement(load_policies(TEMPLATE / "policies", root=TEMPLATE), DenyLevel.LOW, "template")
    eventually(lambda: ENFORCE in _namespace_dry_run(hook, {})[1].get("metadata", {}).get("labels", {}), timeout=20)
    return hook


def _scope(webhooks: Hook) -> str:
    return str(webhooks.settings.also_match[0]["values"][0])


def _namespace_dry_run(webhooks: Hook, labels: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """A dry-run create of a new Namespace the test's webhooks judge (it carries the scope label)."""
    metadata = {"name": f"seed-{uuid.uuid4().hex[:8]}", "labels": {SCOPE_LABEL: _scope(webhooks), **labels}}
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
    return webhooks.raw.request("POST", "/api/v1/namespaces", body=body, query={"dryRun": "All"})


def test_a_new_namespace_without_an_enforce_label_is_created_with_enforce_restricted(seeded: Hook) -> None:
    status, created = _namespace_dry_run(seeded, {"team": "a"})
    assert status == 201, created
    assert created["metadata"]["labels"][ENFORCE] == "restricted"
    status, created = _namespace_dry_run(seeded, {ENFORCE: "baseline"})
    assert status == 201 and created["metadata"]["labels"][ENFORCE] == "baseline", created


def test_a_namespace_labelled_enforce_privileged_is_denied_on_create_and_on_relabel(seeded: Hook) -> None:
    status, answer = _namespace_dry_run(seeded, {ENFORCE: "privileged"})
    assert status == 403, answer
    assert "(GG3003) at metadata.labels.pod-security.kubernetes.io/enforce" in answer["message"]
    relabel = seeded.kubectl("label", "namespace", seeded.namespace, f"{ENFORCE}=privileged", context="dev-admin")
    assert relabel.returncode != 0 and "GG3003" in relabel.stderr, relabel.stderr
    live = seeded.raw.request("GET", f"/api/v1/namespaces/{seeded.namespace}")[1]
    assert live["metadata"]["labels"].get(ENFORCE) != "privileged"
    assert seeded.kubectl("label", "namespace", seeded.namespace, f"{ENFORCE}=baseline", "--overwrite").returncode == 0


def test_break_glass_spares_the_namespaces_objects_but_never_lets_it_be_labelled_privileged(seeded: Hook) -> None:
    # whoever may label the namespace turns admission off inside it first, then tries the downgrade
    glass = seeded.kubectl("label", "namespace", seeded.namespace, "gitopsguard.io/admission=disabled")
    assert glass.returncode == 0, glass.stderr
    relabel = seeded.kubectl("label", "namespace", seeded.namespace, f"{ENFORCE}=privileged", "--overwrite")
    assert relabel.returncode != 0 and "GG3003" in relabel.stderr, relabel.stderr
    live = seeded.raw.request("GET", f"/api/v1/namespaces/{seeded.namespace}")[1]["metadata"]["labels"]
    assert live["gitopsguard.io/admission"] == "disabled" and live.get(ENFORCE) != "privileged"


def _job(name: str) -> dict[str, Any]:
    spec = {"restartPolicy": "Never", **compliant_spec()}
    spec["containers"][0]["image"] = "ghcr.io/example/once:1"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"metadata": {"labels": {"team": "a"}}, "spec": spec}}}  # fmt: skip


def _mutate_over_tls(webhooks: Hook, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON Patch the running webhook answers for ``body``, asked as the API server asks (TLS, the caBundle)."""
    admission = webhooks.admission
    assert admission is not None
    tls = as_api_server(webhooks.cluster, ssl.create_default_context(cadata=admission.certificates.bundle.decode()))
    connection = http.client.HTTPSConnection("127.0.0.1", admission.server.server_port, context=tls, timeout=10)
    try:
        payload = json.dumps(review(body, namespace=webhooks.namespace, username="alice"))
        connection.request("POST", "/mutate", body=payload, headers={"Content-Type": "application/json"})
        answer = json.loads(connection.getresponse().read())["response"]
    finally:
        connection.close()
    assert answer["allowed"] is True
    return list(json.loads(base64.b64decode(answer["patch"]))) if "patch" in answer else []


def test_a_job_without_ttl_gets_90_seconds_which_a_1_20_api_server_then_drops(seeded: Hook) -> None:
    patch = _mutate_over_tls(seeded, _job("probe"))
    assert {"op": "add", "path": "/spec/ttlSecondsAfterFinished", "value": 90} in patch
    assert _mutate_over_tls(seeded, {**_job("own"), "spec": {**_job("own")["spec"], "ttlSecondsAfterFinished": 5}}) == [
        {"op": "add", "path": "/metadata/labels", "value": {"app.kubernetes.io/managed-by": "gitopsguard"}}
    ]
    status, stored = seeded.create(_job("once"), dry_run=False)
    assert status == 201, stored
    # the same patch reached the API server: the label it adds is stored ...
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gitopsguard"
    # ... and the TTL is kept only where the TTLAfterFinished feature is on: 1.21 and later (alpha, off, in 1.20)
    minor = int(seeded.raw.request("GET", "/version")[1]["minor"].rstrip("+"))
    assert stored["spec"].get("ttlSecondsAfterFinished") == (90 if minor >= 21 else None)


def test_a_pod_without_requests_and_limits_is_admitted_with_a_warning_and_audited(seeded: Hook) -> None:
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "greedy"},
           "spec": {"containers": [{"name": "c", "image": "ghcr.io/example/c:1"}]}}  # fmt: skip
    result = seeded.kubectl("create", "-f", "-", stdin=json.dumps(pod))
    assert result.returncode == 0, result.stderr
    assert RESOURCES_WARNING in result.stderr
    eventually(lambda: any("GG3004" in r.detail and "greedy" in r.subject for r in seeded.records("admission-warned")),
               timeout=10)  # fmt: skip
    fine = {**pod, "metadata": {"name": "sized"}, "spec": {"containers": [{**pod["spec"]["containers"][0],
            "resources": compliant_spec()["containers"][0]["resources"]}]}}  # fmt: skip
    result = seeded.kubectl("create", "-f", "-", stdin=json.dumps(fine))
    assert result.returncode == 0 and "GG3004" not in result.stderr, result.stderr


def test_a_deployment_without_spread_constraints_is_stored_with_one_selecting_its_own_pods(seeded: Hook) -> None:
    spec = compliant_spec()
    spec["containers"][0]["image"] = "ghcr.io/example/web:1"
    selector = {"matchLabels": {"app": "web", "team": "a"}}
    deployment: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                                  "spec": {"replicas": 0, "selector": selector,
                                           "template": {"metadata": {"labels": selector["matchLabels"]},
                                                        "spec": spec}}}  # fmt: skip
    status, stored = seeded.create(deployment, dry_run=False)
    assert status == 201, stored
    assert stored["spec"]["template"]["spec"]["topologySpreadConstraints"] == [
        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
         "labelSelector": selector}
    ]  # fmt: skip
    own = [{"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": selector}]  # fmt: skip
    deployment["metadata"]["name"] = "web-own"
    deployment["spec"]["template"]["spec"]["topologySpreadConstraints"] = own
    status, stored = seeded.create(deployment, dry_run=False)
    assert status == 201 and stored["spec"]["template"]["spec"]["topologySpreadConstraints"] == own, stored
