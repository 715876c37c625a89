"""Admission judges a request by the policies that govern its namespace (issue 19): the root's, plus the own
policies of every Unit targeting that namespace as it last applied them, the very ``Governance`` the live scan
judges by; cluster-scoped objects by the root's alone. A Unit's rule never reaches another namespace, a Unit
aimed at another team's namespace only adds there, and a namespace whose Unit's policies are not read yet is
refused rather than judged by less."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gitopsguard.admission import Judgement, parse_review, response, validate
from gitopsguard.gate import RevisionBlockedError, gate, policies_at
from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.policy import DenyLevel, PolicySet, judge_object, parse_policies
from gitopsguard.policy.compose import governance, restricting
from gitopsguard.policy.model import Context
from gitopsguard.scan.governed import Governed
from tests.admissionreview import BASELINE, POLICY, hack_a_node_pod, request_of, review
from tests.gitrepo import Upstream
from tests.unit.test_units_policies_followed_everywhere import SHOP, _applied, _follower
from tests.unit.units_policies_repo import READ_ONLY_ROOT, pod, repository

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = parse_policies({"policies/pss.yaml": BASELINE})
OWNER_LABEL = (
    POLICY
    + """metadata: {name: owner-label}
spec:
  enforcement: enforce
  severity: HIGH
  match: {kinds: [Namespace, Pod]}
  builtin: {name: required-labels, params: {labels: [owner]}}
"""
)
SHOP_OWN = restricting(ROOT, parse_policies({"shop-policies/ro.yaml": READ_ONLY_ROOT}, units=True), unit=SHOP)


def _judgement(*added: tuple[str, str, PolicySet], unknown: dict[str, str] | None = None) -> Judgement:
    return Judgement(ROOT, DenyLevel.LOW, "abc", governance(ROOT, list(added), unknown))


def test_a_pod_breaking_a_units_own_rule_is_denied_in_its_namespace_naming_the_file_and_admitted_elsewhere() -> None:
    judgement = _judgement((SHOP, "shop", SHOP_OWN))
    denied = validate(request_of(pod("shop", read_only=False)), judgement, now=NOW, namespace=None)
    assert not denied.allowed and [f.policy for f in denied.denying] == [f"{SHOP}/read-only-root-pods"]
    assert denied.owners == (f"shop-policies/ro.yaml:1: policy {SHOP}/read-only-root-pods is Unit {SHOP}'s own "
                             "(its spec.policiesPath)",)  # fmt: skip
    assert validate(request_of(pod("shop", read_only=True)), judgement, now=NOW, namespace=None).allowed
    assert validate(request_of(pod("web", read_only=False)), judgement, now=NOW, namespace=None).allowed
    assert not validate(request_of(hack_a_node_pod("web")), judgement, now=NOW, namespace=None).allowed


def test_a_namespace_whose_units_policies_are_not_read_yet_is_refused_and_others_are_judged() -> None:
    judgement = _judgement(unknown={"shop": SHOP})
    refused = validate(request_of(pod("shop", read_only=True)), judgement, now=NOW, namespace=None)
    assert not refused.allowed and f"Unit {SHOP}" in refused.reason and "not read yet" in refused.reason
    status = response(refused)["response"]["status"]  # a server not ready: clients, our own dry runs too, retry
    assert (status["code"], status["reason"]) == (503, "ServiceUnavailable")
    assert validate(request_of(pod("web", read_only=False)), judgement, now=NOW, namespace=None).allowed


def test_a_judgement_pending_the_units_policies_refuses_everything_as_not_ready() -> None:
    pending = Judgement(ROOT, DenyLevel.LOW, "abc", governance(ROOT, []), pending="not read yet")
    refused = validate(request_of(pod("web", read_only=True)), pending, now=NOW, namespace=None)
    assert not refused.allowed and refused.code == 503 and "not read yet" in refused.reason


def test_cluster_scoped_objects_and_namespaces_are_judged_by_the_root_alone() -> None:
    """A Unit's rule for Namespaces (every object of its namespace, say) would otherwise judge the Namespace
    named like its target: the API server gives a Namespace's own name as the request's namespace."""
    labels = restricting(ROOT, parse_policies({"t/p.yaml": OWNER_LABEL}, units=True), unit=SHOP)
    judgement = _judgement((SHOP, "shop", labels))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    sent = review(namespace)
    sent["request"]["namespace"] = "shop"  # as the API server names /api/v1/namespaces/shop (its update, say)
    assert validate(parse_review(json.dumps(sent).encode()), judgement, now=NOW, namespace=None).allowed
    assert not validate(request_of(pod("shop", read_only=True)), judgement, now=NOW, namespace=None).allowed


def test_gate_live_scan_and_admission_give_one_object_in_one_namespace_the_same_verdict(tmp_path: Path) -> None:
    """The gate judges shop's revision by root + shop's own (``policies_at``); the live scan and admission
    judge namespace shop by the Governance the follower of the inventories made from shop's applied commit."""
    upstream = Upstream(tmp_path / "git")
    commit = repository(upstream, "shop", "web")
    follower = _follower(upstream, tmp_path)
    follower.follow_once(commit, _applied(follower.root, commit))
    checkout = follower.source.checkout_of(commit)
    gated = policies_at(checkout, "policies", own="shop-policies", unit=SHOP)
    made = follower.governed.governance(policies_at(checkout, "policies"))
    assert made is not None
    for read_only in (False, True):
        body = pod("shop", read_only=read_only)
        try:
            gate([Manifest(ObjectKey.of(body), body, "shop/pod.yaml:1")], gated, deny_level=DenyLevel.LOW, now=NOW,
                 commit=commit, namespaces={})  # fmt: skip
            by_gate = True
        except RevisionBlockedError:
            by_gate = False
        standing, _ = judge_object(body, made.for_namespace("shop"), Context(None), NOW)
        by_scan = not [f for f in standing if f.enforced and DenyLevel.LOW.blocks(f.severity)]
        judgement = Judgement(made.root, DenyLevel.LOW, commit, made)
        by_admission = validate(request_of(body), judgement, now=NOW, namespace=None).allowed
        assert by_gate == by_scan == by_admission == read_only


@given(aimed=st.lists(st.tuples(st.sampled_from(["ro", "labels"]), st.sampled_from(["a", "b", "c"])), max_size=4))
def test_units_aimed_at_any_namespace_only_ever_add_restrictions_there(aimed: list[tuple[str, str]]) -> None:
    """Whatever namespaces Units target (another team's included), every request denied by the root alone, or
    by any one of the Units targeting its namespace alone, is denied with all of them."""
    added = []
    for index, (team, namespace) in enumerate(aimed):
        own = parse_policies({f"t{index}/p.yaml": READ_ONLY_ROOT if team == "ro" else OWNER_LABEL}, units=True)
        added.append((f"u{index}.x", namespace, restricting(ROOT, own, unit=f"u{index}.x")))
    everything = Judgement(ROOT, DenyLevel.LOW, "abc", governance(ROOT, added))
    for namespace in ("a", "b", "c"):
        alone = [Judgement(ROOT, DenyLevel.LOW)] + [
            Judgement(ROOT, DenyLevel.LOW, "abc", governance(ROOT, [one])) for one in added if one[1] == namespace
        ]
        for body in (pod(namespace, read_only=False), pod(namespace, read_only=True), hack_a_node_pod(namespace)):
            verdict = validate(request_of(body), everything, now=NOW, namespace=None)
            for each in alone:
                if not validate(request_of(body), each, now=NOW, namespace=None).allowed:
                    assert not verdict.allowed


def test_the_judgement_the_follower_makes_is_the_same_object_until_something_changes() -> None:
    governed = Governed()
    governed.passed(SHOP, "shop", SHOP_OWN, failed=False, commit="abc")
    first = governed.governance(ROOT)
    governed.passed(SHOP, "shop", SHOP_OWN, failed=False, commit="abc")
    assert governed.governance(ROOT) is first
