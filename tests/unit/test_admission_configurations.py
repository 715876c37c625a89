"""The webhook configurations: the kinds the policies target, the system namespaces always exempt, break
glass exempting objects but not the Namespace itself, fail closed by default, and how the API server calls."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gitopsguard.admission.configurations import (
    EVERY_KIND,
    FailurePolicy,
    WebhookSettings,
    configurations,
    kinds_for,
    mutated_kinds,
)
from gitopsguard.policy import parse_policies
from tests.admissionreview import BASELINE, MAGTAPE, TTL

RBAC = BASELINE.replace("pod-security", "bindings").replace("[Pod, Deployment, Job]", "[RoleBinding, MyCustomKind]")
ANY = BASELINE.replace("pod-security", "anything").replace("  match: {kinds: [Pod, Deployment, Job]}\n", "")


@pytest.mark.parametrize(("texts", "kinds", "uncovered"), [
    ({"a": BASELINE, "b": MAGTAPE}, {"Pod", "Deployment", "Job"}, set()),
    ({"a": TTL}, {"Job"}, set()),
    ({"a": RBAC}, {"RoleBinding"}, {"MyCustomKind"}),
    ({"a": ANY}, set(EVERY_KIND), set()),
])  # fmt: skip
def test_the_kinds_are_those_the_policies_target(texts: dict[str, str], kinds: set[str], uncovered: set[str]) -> None:
    assert kinds_for(parse_policies(texts)) == (frozenset(kinds), frozenset(uncovered))


def test_a_policy_for_every_kind_does_not_send_secrets_unless_one_names_them() -> None:
    assert "Secret" not in kinds_for(parse_policies({"a": ANY}))[0]
    assert "Secret" in kinds_for(parse_policies({"a": ANY}), always={"Secret"})[0]


def _hooks(settings: WebhookSettings, kinds: frozenset[str]) -> dict[str, dict[str, dict[str, Any]]]:
    return {c["kind"]: {h["name"]: h for h in c["webhooks"]} for c in configurations(settings, kinds, b"PEM")}


def test_system_namespaces_are_always_exempt_and_break_glass_spares_only_the_objects() -> None:
    hooks = _hooks(WebhookSettings(), frozenset({"Pod", "Namespace"}))
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        objects, namespaces = hooks[kind]["objects.gitopsguard.io"], hooks[kind]["namespaces.gitopsguard.io"]
        system = {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                  "values": ["gitopsguard-system", "kube-system"]}  # fmt: skip
        glass = {"key": "gitopsguard.io/admission", "operator": "NotIn", "values": ["disabled"]}
        assert objects["namespaceSelector"] == {"matchExpressions": [system, glass]}
        assert namespaces["namespaceSelector"] == {"matchExpressions": [system]}  # sees every switch of break glass
        assert objects["rules"] == [{"apiGroups": [""], "apiVersions": ["*"], "resources": ["pods"],
                                     "operations": ["CREATE", "UPDATE"], "scope": "*"}]  # fmt: skip


def test_fail_closed_by_default_with_the_documented_fields() -> None:
    hook = _hooks(WebhookSettings(), frozenset({"Pod"}))["ValidatingWebhookConfiguration"]["objects.gitopsguard.io"]
    assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None" and hook["timeoutSeconds"] == 5
    assert hook["admissionReviewVersions"] == ["v1"]
    service = {"namespace": "gitopsguard-system", "name": "gitopsguard-webhook", "path": "/validate", "port": 443}
    assert hook["clientConfig"] == {"caBundle": base64.b64encode(b"PEM").decode(), "service": service}


def test_a_url_is_called_instead_of_the_service_and_ignore_is_an_option() -> None:
    settings = WebhookSettings(url="https://127.0.0.1:9443/", failure_policy=FailurePolicy.IGNORE)
    hook = _hooks(settings, frozenset({"Pod"}))["MutatingWebhookConfiguration"]["objects.gitopsguard.io"]
    assert hook["clientConfig"]["url"] == "https://127.0.0.1:9443/mutate"
    assert hook["failurePolicy"] == "Ignore" and hook["reinvocationPolicy"] == "Never"


def test_the_mutating_webhook_covers_only_the_kinds_some_policy_mutates() -> None:
    policies = parse_policies({"a": BASELINE, "b": TTL})
    assert mutated_kinds(policies) == {"Job"}
    bodies = configurations(WebhookSettings(), kinds_for(policies)[0], b"PEM", mutated_kinds(policies))
    rules = {c["kind"]: [r["resources"] for h in c["webhooks"] for r in h["rules"]] for c in bodies}
    assert rules == {"ValidatingWebhookConfiguration": [["pods"], ["deployments"], ["jobs"]],
                     "MutatingWebhookConfiguration": [["jobs"]]}  # fmt: skip
    assert configurations(WebhookSettings(), frozenset({"Pod"}), b"PEM", frozenset())[1]["webhooks"] == []
