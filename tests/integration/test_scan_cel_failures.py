"""A tenant cannot end the live scan through a policy: an object a CEL rule cannot be evaluated on (10,000
env entries, past the runtime's iteration budget) is reported as not compliant, and the scan goes on. Tenant
alice has edit rights in one namespace, on the real API server."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.rest import RawApi
from gitopsguard.policy import parse_policies
from gitopsguard.policy.model import PolicySet, Selector
from gitopsguard.scan.scanner import Scanner
from tests.integration import test_scan_trust
from tests.integration.test_scan_trust import Tenant, deployment
from tests.kube import as_model
from tests.policies import no_plain_passwords_policy
from tests.waiting import eventually

pytestmark = pytest.mark.integration
tenant = test_scan_trust.tenant  # alice with edit rights in a namespace of her own

POLICIES = no_plain_passwords_policy("notify")


def many_env(name: str, entries: int) -> dict[str, Any]:
    body = deployment(name, {})
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": f"V{i:05d}", "value": ""} for i in range(entries)
    ]
    return body


def test_a_live_scan_over_a_deployment_too_large_for_a_cel_rule_keeps_running_and_reports_it(
    tenant: Tenant,
) -> None:
    apps = client.AppsV1Api(tenant.alice)
    apps.create_namespaced_deployment(tenant.namespace, as_model(client.V1Deployment, many_env("many-env", 10_000)))
    scanner = Scanner(Applier(tenant.admin), RawApi(tenant.admin), parse_policies({"p.yaml": POLICIES}),
                      backup_dir=tenant.backups, namespaces=frozenset({tenant.namespace}),
                      announce=tenant.heard.extend)  # fmt: skip
    scanning = threading.Thread(target=scanner.run, args=(tenant.stop,), daemon=True)
    scanning.start()
    eventually(
        lambda: bool(tenant.heard_of("Deployment", "many-env")) or not scanning.is_alive(), timeout=20, every=0.1
    )
    assert scanning.is_alive()
    ((verdict,),) = [[a.verdict for a in tenant.heard if a.key.name == "many-env" and a.event == "violation"]]
    (finding,) = verdict.findings
    assert (finding.code, finding.severity.value) == ("GG3002", "HIGH")
    assert "CEL expression failed on this object" in finding.message and "budget" in finding.message
    # the scan goes on: a Deployment made afterwards that breaks the rule is still found
    apps.create_namespaced_deployment(tenant.namespace, as_model(client.V1Deployment, many_env("later", 1)))
    leaked = deployment("leaked", {})
    leaked["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "DB_PASSWORD", "value": "x"}]
    apps.create_namespaced_deployment(tenant.namespace, as_model(client.V1Deployment, leaked))
    eventually(lambda: bool(tenant.heard_of("Deployment", "leaked")), timeout=20, every=0.1)
    assert scanning.is_alive() and tenant.heard_of("Deployment", "later") == []
    # and the namespace's PolicyReport holds it (a finding without a field path once made the write fail)
    assert scanner.drain() and [p for p in scanner.problems if "PolicyReport" in p] == []
    status, report = RawApi(tenant.admin).request(
        "GET", f"/apis/wgpolicyk8s.io/v1alpha2/namespaces/{tenant.namespace}/policyreports/gitopsguard"
    )
    assert status == 200
    assert {r["resources"][0]["name"] for r in report["results"]} == {"many-env", "leaked"}


class PoisonedSelector(Selector):
    """Matching that raises on one object: whatever an evaluation raises, the scan must survive it."""

    def matches(self, body: dict[str, Any]) -> bool:
        if (body.get("metadata") or {}).get("name") == "poison":
            raise RecursionError("maximum recursion depth exceeded")
        return super().matches(body)


def test_anything_an_evaluation_raises_is_reported_for_that_object_and_the_scan_goes_on(
    tenant: Tenant,
) -> None:
    policies = parse_policies({"p.yaml": POLICIES})
    poisoned = PolicySet((replace(policies.policies[0], match=PoisonedSelector(kinds=frozenset({"Deployment"}))),))
    apps = client.AppsV1Api(tenant.alice)
    apps.create_namespaced_deployment(tenant.namespace, as_model(client.V1Deployment, deployment("poison", {})))
    scanner = Scanner(Applier(tenant.admin), RawApi(tenant.admin), poisoned, backup_dir=tenant.backups,
                      namespaces=frozenset({tenant.namespace}), announce=tenant.heard.extend)  # fmt: skip
    scanning = threading.Thread(target=scanner.run, args=(tenant.stop,), daemon=True)
    scanning.start()
    leaked = deployment("leaked", {})
    leaked["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "DB_PASSWORD", "value": "x"}]
    apps.create_namespaced_deployment(tenant.namespace, as_model(client.V1Deployment, leaked))
    eventually(lambda: bool(tenant.heard_of("Deployment", "leaked")) or not scanning.is_alive(), timeout=20, every=0.1)
    assert scanning.is_alive()
    (problem,) = [p for p in scanner.problems if "poison" in p]
    assert problem.startswith(f"Deployment/{tenant.namespace}/poison: cannot be evaluated (RecursionError")
