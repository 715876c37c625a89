"""Attack: switch break glass on without it reaching the webhook, through the Namespace's `status` or
`finalize` subresource.

On 1.20 (and later) both subresources take the whole Namespace, and their strategies keep what the body says
about labels (checked here: a PUT to /status or /finalize sets `gitopsguard.io/admission: disabled`). The
webhook configurations register `namespaces` only (admission/configurations.py, _webhook: resources without
subresources), and review.py's _judged passes any subresource unjudged anyway, so the switch is neither
audited, nor announced, nor marked by an Event, against docs/threat-model.md "both switches reach the webhook
and are audited with the user". The same path rewrites `pod-security.kubernetes.io/enforce` past any
Namespace policy (the seed's validate-pss-labels).

Attacker: whoever may update namespaces/status or namespaces/finalize (a narrower grant than namespaces:
the namespace controller's role has it, and so do operators given it); here the admin stands in.
"""

from __future__ import annotations

import time

import pytest

from gitopsguard.admission.review import BREAK_GLASS, Judgement
from gitopsguard.policy import DenyLevel, PolicySet
from tests.waiting import eventually

from .conftest import MERGE, Starter

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("subresource", [
    pytest.param("", id="control-main-resource"),
    pytest.param("/status", id="status"),
    pytest.param("/finalize", id="finalize"),
])  # fmt: skip
def test_turning_break_glass_on_is_audited_whichever_endpoint_sets_the_label(
    start_hook: Starter, namespace: str, subresource: str
) -> None:  # fmt: skip
    hook = start_hook(Judgement(PolicySet(()), DenyLevel.LOW, "abc123"))
    path = f"/api/v1/namespaces/{namespace}"
    # the webhook is live: a plain label change reaches it (a no-op switch off, audited as nothing)
    eventually(lambda: hook.raw.request("PATCH", path, body={"metadata": {"labels": {"probe": str(time.time())}}},
                                        content_type=MERGE)[0] == 200, timeout=20)  # fmt: skip
    time.sleep(1.0)  # the API server has the configurations (as the shipped tests wait)
    body = hook.raw.request("GET", path)[1]
    body["metadata"]["labels"] = {**body["metadata"].get("labels", {}), BREAK_GLASS: "disabled"}
    status, answer = hook.raw.request("PUT", path + subresource, body=body)
    assert status == 200, answer
    switched = (hook.raw.request("GET", path)[1]["metadata"].get("labels") or {}).get(BREAK_GLASS) == "disabled"
    assert switched  # the switch really happened
    time.sleep(2.0)  # the recorder's thread
    records = [r.detail for r in hook.records("admission-break-glass-on")]  # (not the hook: its repr holds a key)
    assert records, "break glass turned on, and no audit record says who did it"
