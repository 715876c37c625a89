"""rbac-guard and aggregation: a ClusterRole's aggregationRule collects, on the real server, the rules of
every ClusterRole its selector matches (the controller-manager's clusterrole-aggregation controller fills
them in), so what it grants cannot be read from the manifest; and a role labelled aggregate-to-admin/edit/view
lends its rules to built-in roles that many people hold. Both are judged as the power they can reach."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.errors import PolicyError
from gitopsguard.policy.load import load_policies
from gitopsguard.policy.model import Context
from gitopsguard.policy.packs import BUILTINS
from gitopsguard.policy.packs.rbac_guard import rbac_guard

ADMIN = "rbac.authorization.k8s.io/aggregate-to-admin"


def _aggregating(selectors: Any, rules: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                            "metadata": {"name": "collector"},
                            "aggregationRule": {"clusterRoleSelectors": selectors}}  # fmt: skip
    if rules is not None:
        body["rules"] = rules
    return body


def _labelled(kind: str, labels: Any, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
            "metadata": {"name": "lender", "namespace": "t", "labels": labels}, "rules": rules}  # fmt: skip


def test_a_cluster_role_aggregating_cluster_admin_like_roles_is_refused() -> None:
    """The break: this ClusterRole has no rules of its own, and on the server it held * on *."""
    hits = rbac_guard(_aggregating([{"matchLabels": {ADMIN: "true"}}], rules=[]), Context())
    assert [h.code for h in hits] == ["GG2003"]
    assert hits[0].path == "aggregationRule" and "cannot be known" in hits[0].message


@pytest.mark.parametrize("rule", [
    {"clusterRoleSelectors": [{}]},  # an empty selector matches every ClusterRole
    {"clusterRoleSelectors": [{"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}]},
    {"clusterRoleSelectors": []},
    {},
    None,
    "everything",
    [{"matchLabels": {"a": "b"}}],
])  # fmt: skip
def test_any_aggregation_rule_whatever_its_shape_is_refused_by_default(rule: Any) -> None:
    body = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "c"},
            "aggregationRule": rule}  # fmt: skip
    assert [h.code for h in rbac_guard(body, Context())] == ["GG2003"]


_keys = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
_selector = st.dictionaries(st.sampled_from(["matchLabels", "matchExpressions", "other"]),
                            st.one_of(st.dictionaries(_keys, _keys, max_size=3), st.lists(st.none()), st.none(),
                                      st.text(max_size=5)), max_size=3)  # fmt: skip


@given(st.one_of(st.lists(_selector, max_size=4), st.none(), st.integers(), st.text(max_size=5)))
@example([{"matchLabels": {ADMIN: "true"}}])
@example([{"matchLabels": {"example.com/aggregate-to-monitoring": "true"}}])
def test_every_cluster_role_with_an_aggregation_rule_is_refused_unless_allowed(selectors: Any) -> None:
    """The general rule: with no aggregation allowed, any aggregationRule at all is a finding."""
    assert "GG2003" in [h.code for h in rbac_guard(_aggregating(selectors), Context())]


def test_aggregation_to_labels_the_policy_names_is_allowed_and_nothing_else() -> None:
    check = BUILTINS["rbac-guard"]({"allowAggregationLabels": ["example.com/aggregate-to-monitoring"]})
    allowed: list[dict[str, Any]] = [{"matchLabels": {"example.com/aggregate-to-monitoring": "true"}}]
    assert check(_aggregating(allowed), Context()) == []
    refused: tuple[list[dict[str, Any]], ...] = (
        [{"matchLabels": {ADMIN: "true"}}],
        [*allowed, {"matchLabels": {ADMIN: "true"}}],  # one allowed selector does not excuse another
        [{"matchLabels": {"example.com/aggregate-to-monitoring": "true", ADMIN: "true"}}],
        [{"matchLabels": {"example.com/aggregate-to-monitoring": "true"},
          "matchExpressions": [{"key": ADMIN, "operator": "Exists"}]}],
        [{}],
        [],
    )  # fmt: skip
    for selectors in refused:
        assert [h.code for h in check(_aggregating(selectors), Context())] == ["GG2003"], selectors


@pytest.mark.parametrize("params", [{"allowAggregationLabels": "x"}, {"allowAggregationLabels": [""]},
                                    {"allowAggregationLabels": [1]}, {"other": 1}])  # fmt: skip
def test_bad_rbac_guard_parameters_are_refused_with_the_policy_file(tmp_path: Any, params: Any) -> None:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nmetadata: {name: rbac}\n"
        f"spec:\n  builtin: {{name: rbac-guard, params: {params!r}}}\n"
    )
    with pytest.raises(PolicyError, match=r"p\.yaml:\d+: built-in rbac-guard"):
        load_policies(tmp_path)


@pytest.mark.parametrize("kind", ["ClusterRole", "Role"])
@pytest.mark.parametrize("target", ["admin", "edit", "view"])
def test_a_role_that_lends_its_rules_to_a_built_in_role_is_refused(kind: str, target: str) -> None:
    """Labelled aggregate-to-view, a rule to read secrets would be held by everyone bound to view."""
    body = _labelled(kind, {f"rbac.authorization.k8s.io/aggregate-to-{target}": "true"},
                     [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}])  # fmt: skip
    hits = rbac_guard(body, Context())
    assert [h.code for h in hits] == ["GG2004"] and target in hits[0].message
    assert hits[0].path == "metadata.labels"


@given(st.text(st.characters(codec="utf-8"), max_size=20), st.sampled_from(["true", "false", "", "yes"]))
@example("admin", "false")
def test_any_aggregate_to_label_is_judged_whatever_its_target_or_value(target: str, value: str) -> None:
    body = _labelled("ClusterRole", {f"rbac.authorization.k8s.io/aggregate-to-{target}": value},
                     [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])  # fmt: skip
    assert [h.code for h in rbac_guard(body, Context())] == ["GG2004"]


@pytest.mark.parametrize("labels", [None, "aggregate", ["x"], {"team": "shop"}, {1: 2}])
def test_odd_or_harmless_labels_lend_nothing(labels: Any) -> None:
    body = _labelled("ClusterRole", labels, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
    assert rbac_guard(body, Context()) == []
