"""repo-template/ renders with the real kustomize into what the README promises."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kubectl import kubectl

TEMPLATE = Path(__file__).parents[2] / "repo-template"
# What a Kubernetes 1.20 API server serves for the kinds the template uses.
SERVED_BY_1_20 = {("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Service"), ("apps/v1", "Deployment")}


def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(TEMPLATE / "clusters" / overlay)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_each_cluster_overlay_has_two_namespaces_each_with_deployment_service_and_configmap(overlay: str) -> None:
    objects = render(overlay)
    namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    assert len(namespaces) >= 2
    kinds_per_namespace = Counter(
        (o["metadata"].get("namespace"), o["kind"]) for o in objects if o["kind"] != "Namespace"
    )
    for namespace in namespaces:
        for kind in ("Deployment", "Service", "ConfigMap"):
            assert kinds_per_namespace[(namespace, kind)] >= 1, f"{overlay}: {namespace} has no {kind}"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_template_uses_only_api_versions_a_1_20_server_serves(overlay: str) -> None:
    assert {(o["apiVersion"], o["kind"]) for o in render(overlay)} <= SERVED_BY_1_20


def test_overlays_differ_in_replicas() -> None:
    def replicas(overlay: str) -> set[int]:
        return {o["spec"]["replicas"] for o in render(overlay) if o["kind"] == "Deployment"}

    assert replicas("dev") == {1}
    assert replicas("prod") == {3}


def test_every_service_port_names_its_protocol() -> None:
    # Kubernetes 1.20 rejects server-side apply of a Service port without `protocol`.
    services = [obj for obj in render("dev") if obj["kind"] == "Service"]
    assert services, "the template's dev overlay has Services to check"
    assert all("protocol" in port for s in services for port in s["spec"]["ports"])


def test_the_template_ships_policies_and_an_exception_and_its_overlays_pass_them() -> None:
    from datetime import UTC, datetime

    from gitopsguard.policy import DenyLevel, evaluate, load_policies
    from gitopsguard.render.plain import read_text

    policies = load_policies(TEMPLATE / "policies", root=TEMPLATE)
    assert {p.name for p in policies.policies} >= {"pod-security", "magtape", "rbac-guard", "trusted-registry",
                                                   "hand-made-workloads", "defaults"}  # fmt: skip
    assert [e.name for e in policies.exceptions] == ["payments-probes"]
    now = datetime(2026, 11, 24, tzinfo=UTC)
    for overlay in ("dev", "prod"):
        manifests = read_text(yaml.safe_dump_all(render(overlay)), overlay)
        result = evaluate(manifests, policies, now=now, deny_level=DenyLevel.MED)
        assert not result.blocked, [(r.key, r.findings) for r in result.blocked]
        assert any(r.excepted for r in result.results)  # the payments exception is in force
        privileged = read_text(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: debug, namespace: shop, labels: {team: shop}}\n"
            "spec: {containers: [{name: sh, image: ghcr.io/example/sh:1, securityContext: {privileged: true}}]}\n",
            "debug.yaml",
        )
        assert evaluate(privileged, policies, now=now, deny_level=DenyLevel.LOW).blocked


def test_the_template_ships_an_escalation_policy_and_a_grant_and_manifests_hold_their_generated_rbac() -> None:
    from gitopsguard.grants.load import load_escalation_policies, load_grants
    from gitopsguard.grants.rbac import grants_rbac

    policies = load_escalation_policies(TEMPLATE)
    grants, broken = load_grants(TEMPLATE, lambda path: "0" * 40)
    assert list(policies) == ["debugging"] and [g.name for g in grants] == ["alice-debug-payments"] and not broken
    shipped = list(yaml.safe_load_all((TEMPLATE.parent / "manifests" / "grants-rbac.yaml").read_text()))
    assert shipped == grants_rbac(policies), "regenerate: gitopsguard grants rbac repo-template"
    (bind,) = [r for r in shipped[1]["rules"] if r["verbs"] == ["bind"]]
    assert bind["resourceNames"] == ["edit", "view"]


def test_the_install_manifests_render_and_the_controller_itself_passes_pod_security_restricted() -> None:
    from gitopsguard.policy import DenyLevel, PolicySet, evaluate, pack_policy
    from gitopsguard.render.plain import read_text

    out = subprocess.run([kubectl(), "kustomize", str(TEMPLATE.parent / "manifests")], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    manifests = read_text(out, "manifests")
    (deployment,) = [m.body for m in manifests if m.key.kind == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "--leader-elect" in container["args"] and container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    from datetime import UTC, datetime

    result = evaluate(manifests, PolicySet((pack_policy("pss-restricted"),)), now=datetime.now(UTC),
                      deny_level=DenyLevel.HIGH)  # fmt: skip
    assert [f for r in result.results for f in r.findings] == []


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_pods_of_the_template_workloads_carry_the_labels_hand_made_workloads_requires(overlay: str) -> None:
    # Without them the live scan judged each Pod of a Git-managed Deployment as hand-made and deleted it after
    # the grace period, over and over (seen in `make demo`: every 10 s).
    policy = yaml.safe_load((TEMPLATE / "policies" / "hand-made-workloads.yaml").read_text())
    required = set(policy["spec"]["builtin"]["params"]["labels"])
    workloads = [o for o in render(overlay) if o["kind"] == "Deployment"]
    assert workloads
    for workload in workloads:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert required <= set(labels), f"{workload['metadata']}: its Pods lack {required - set(labels)}"
