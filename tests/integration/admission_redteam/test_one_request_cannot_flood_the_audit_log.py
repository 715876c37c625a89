"""Attack: fill the controller's disk through the audit log, one dry-run request at a time.

A denied request is recorded with every finding's line, joined without bound (admission/record.py,
entries_for: `"; ".join(lines)`), although the answer to the API server is bounded (text.py). A Pod of 500
containers, each with 40 host ports and an added capability, is about 0.8 MB (under the API server's 3 MiB)
and has 20,000 findings under pss-baseline: its audit record is about 3.5 MB (measured here), for a dry run
that the tenant can repeat as fast as the API server takes it (dry runs are recorded, and make no Event to
rate-limit).
The hash-chained log only grows; `audit verify` reads all of it.

Attacker: a tenant with `edit` in any namespace the webhook covers.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from gitopsguard.admission.review import Judgement
from gitopsguard.cluster.rest import RawApi
from gitopsguard.policy import DenyLevel, parse_policies
from tests.admissionreview import BASELINE, hack_a_node_pod
from tests.integration.conftest import bind_user
from tests.waiting import eventually

from .conftest import Starter

pytestmark = pytest.mark.integration
BOUND = 256 * 1024  # bytes one request may add to the audit log: generous against a 8 KiB answer


def many_findings(namespace: str, containers: int = 500, ports: int = 40) -> dict[str, Any]:
    spec = [
        {
            "name": f"c{i}",
            "image": "alpine",
            "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
            "ports": [{"containerPort": i * ports + k + 1, "hostPort": i * ports + k + 1} for k in range(ports)],
        }
        for i in range(containers)
    ]  # fmt: skip  (host ports unique, or the API server refuses it first)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wide", "namespace": namespace},
            "spec": {"containers": spec}}  # fmt: skip


def test_one_denied_dry_run_adds_a_bounded_record_to_the_audit_log(start_hook: Starter, namespace: str) -> None:
    hook = start_hook(Judgement(parse_policies({"policies/pss.yaml": BASELINE}), DenyLevel.LOW, "abc123"))
    bind_user(hook.cluster.api(), namespace, "alice-edit", "ClusterRole", "edit")
    alice = RawApi(hook.cluster.api("dev-alice"), timeout=30)
    pods = f"/api/v1/namespaces/{namespace}/pods"
    eventually(lambda: alice.request("POST", pods, body=hack_a_node_pod(namespace), query={"dryRun": "All"})[0]
               == 403, timeout=20)  # fmt: skip
    eventually(lambda: hook.audit.path.exists() and bool(hook.records("admission-denied")), timeout=10)
    time.sleep(1.0)
    before = hook.audit.path.stat().st_size
    status, answer = alice.request("POST", pods, body=many_findings(namespace), query={"dryRun": "All"})
    assert status == 403, str(answer)[:300]
    time.sleep(3.0)  # the recorder's thread
    grown = hook.audit.path.stat().st_size - before
    assert grown <= BOUND, f"one dry run by alice added {grown:,} bytes to the audit log"
