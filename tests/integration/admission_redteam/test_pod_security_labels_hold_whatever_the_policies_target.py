"""Attack: Pod Security labels are dead letters once the applied revision's policies do not target Pods.

`gitopsguard run --admission-address` builds its WebhookSettings without ``always``
(gitopsguard/commands/admission.py, serve_admission), so the configurations' rules hold only the kinds the
policies target plus Namespace (admission/serve.py, _Keeper.once). A repository whose policies are about Jobs
only (the seed's add-ttl-jobs) never has a Pod sent to the webhook, and the namespace label
``pod-security.kubernetes.io/enforce: baseline`` is not enforced at all. The shipped tests pass only because
they register with ``always={"Pod", "Deployment", ...}``, which production never does.

Attacker: a tenant with `edit` in one namespace that the administrator labelled enforce=baseline.
"""

from __future__ import annotations

import json
import uuid

import pytest

from gitopsguard.admission.podsecurity import pod_security_seam
from gitopsguard.admission.review import Judgement
from gitopsguard.policy import DenyLevel, parse_policies
from tests.integration.conftest import bind_user
from tests.integration.test_admission import DEADLINE, OVERRIDES
from tests.waiting import eventually

from .conftest import Starter, label

pytestmark = pytest.mark.integration
POD_SPEC = {"restartPolicy": "Never", "containers": [{"name": "c", "image": "alpine"}]}
JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "probe"}, "spec": {"template": {"spec": POD_SPEC}}}


@pytest.mark.parametrize("always", [
    pytest.param(frozenset(), id="as-gitopsguard-run-registers"),
    pytest.param(frozenset({"Pod"}), id="control-with-always-pod"),  # what the shipped tests register
])  # fmt: skip
def test_the_hack_a_node_pod_is_refused_by_enforce_baseline_when_the_policies_are_about_jobs_only(
    start_hook: Starter, namespace: str, always: frozenset[str]
) -> None:  # fmt: skip
    policies = parse_policies({"policies/deadline.yaml": DEADLINE})  # a repository with one Job mutation
    hook = start_hook(Judgement(policies, DenyLevel.LOW, "abc123"), pod_security=pod_security_seam(), always=always)
    label(hook.raw, namespace, {"pod-security.kubernetes.io/enforce": "baseline"})
    bind_user(hook.cluster.api(), namespace, "alice-edit", "ClusterRole", "edit")

    def webhook_loaded() -> bool:  # our mutating webhook answers for Jobs: the API server has the configurations
        job = {**JOB, "metadata": {"name": f"probe-{uuid.uuid4().hex[:5]}", "namespace": namespace}}
        status, answer = hook.raw.request("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", body=job,
                                          query={"dryRun": "All"})  # fmt: skip
        return status == 201 and bool(answer["spec"].get("activeDeadlineSeconds") == 600)

    eventually(webhook_loaded, timeout=20)
    # the namespace really is enforce=baseline, and the webhook really does Pod Security for what it is sent
    assert hook.admission is not None and hook.admission.server.pod_security is not None
    result = hook.kubectl("run", "my-pod", "--image", "alpine", "--restart=Never",
                          f"--overrides={json.dumps(OVERRIDES)}", context="dev-alice")  # fmt: skip
    status, pod = hook.raw.request("GET", f"/api/v1/namespaces/{namespace}/pods/my-pod")
    assert result.returncode != 0 and status == 404, (
        f"hack-a-node Pod admitted in an enforce=baseline namespace: {result.stdout}{result.stderr}"
        f" hostPID={pod.get('spec', {}).get('hostPID')}"
    )
    assert "Host Namespaces" in result.stderr
