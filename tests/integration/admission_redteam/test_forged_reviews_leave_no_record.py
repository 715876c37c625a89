"""Attack: write the audit log, Events and Slack notices in anyone's name by posting a forged AdmissionReview
straight to the webhook's port.

Every verdict the server reaches is recorded as the API server's word (admission/record.py,
AdmissionRecorder.record: audit entries "by <userInfo.username>", an Event on the named object when ``dryRun``
is false, a Slack notice for a break-glass switch or a denial). Without a client certificate check a stranger
could put "carol turned admission off in namespace X" into the hash-chained audit log, as an Event in X and as
a notice to X's team, although carol did nothing and X never changed. With ``--admission-client-ca`` (the dev
cluster's API server shows a certificate from it) the stranger's handshake fails and nothing is judged.

Attacker: anyone with a route to the port.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.request

import pytest

from gitopsguard.admission.review import BREAK_GLASS, Judgement
from gitopsguard.policy import DenyLevel, PolicySet
from tests.admissionreview import review
from tests.integration.conftest import LiveCluster
from tests.integration.test_admission import client_ca

from .conftest import Starter

pytestmark = pytest.mark.integration


def post(port: int, body: dict[str, object]) -> dict[str, object] | None:
    """The webhook's answer; None when it would not talk to us."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the stranger needs no trust at all
    request = urllib.request.Request(f"https://127.0.0.1:{port}/validate", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")  # fmt: skip
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:  # noqa: S310 (https, loopback)
            return json.loads(answer.read())  # type: ignore[no-any-return]
    except (OSError, http.client.HTTPException):  # refused in the handshake (urllib's URLError is an OSError)
        return None


def test_a_forged_break_glass_switch_from_a_stranger_is_not_recorded_as_carols(
    start_hook: Starter, namespace: str, dev_cluster: LiveCluster
) -> None:  # fmt: skip
    if not client_ca(dev_cluster):
        pytest.skip("the dev cluster's API server shows webhooks no client certificate (made before it did): "
                    "`gitopsguard dev-cluster down` and `up` make it anew")  # fmt: skip
    hook = start_hook(Judgement(PolicySet(()), DenyLevel.LOW, "abc123"))
    assert hook.admission is not None
    metadata = {"name": namespace, "uid": "u-ns"}
    old = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
    new = {**old, "metadata": {**metadata, "labels": {BREAK_GLASS: "disabled"}}}
    forged = review(new, operation="UPDATE", username="carol", old=old)
    assert post(hook.admission.server.server_port, forged) is None  # no answer: the handshake fails
    time.sleep(2.0)  # the recorder's thread writes the audit log and the Event
    records = [f"{r.event}: {r.detail}" for r in hook.records("admission-break-glass-on")]
    events = hook.raw.request("GET", f"/api/v1/namespaces/{namespace}/events")[1].get("items") or []
    events += hook.raw.request("GET", "/api/v1/namespaces/default/events")[1].get("items") or []
    claimed = [e["message"] for e in events if e.get("reason") == "AdmissionBreakGlass"
               and (e.get("involvedObject") or {}).get("name") == namespace]  # fmt: skip
    labels = hook.raw.request("GET", f"/api/v1/namespaces/{namespace}")[1]["metadata"].get("labels") or {}
    assert BREAK_GLASS not in labels  # nothing happened in the cluster ...
    assert not records and not claimed, (records, claimed)  # ... so nothing may say carol did it
