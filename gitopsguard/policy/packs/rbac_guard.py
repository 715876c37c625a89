"""rbac-guard: workload manifests may not carry standing privilege; that goes through temporary access.

A finding for any Role or ClusterRole granting ``*``, ``escalate``, ``bind`` or ``impersonate``, and for
any binding to ``cluster-admin`` or to such a role (one in the same set of manifests, or a well-known one).

Aggregation is judged as the power it can reach. A ClusterRole with an ``aggregationRule`` holds, on the
server, the union of the rules of every ClusterRole its selectors match (the controller-manager fills them
in), which no manifest shows: it is refused unless each selector only matches labels the policy names
(``params: {allowAggregationLabels: [...]}``). A role labelled ``rbac.authorization.k8s.io/aggregate-to-*``
lends its rules to the built-in admin, edit or view roles, which many people hold: refused too.
"""

from __future__ import annotations

from typing import Any

from gitopsguard.model import KubeObject
from gitopsguard.policy.model import Check, Context, Hit, Severity
from gitopsguard.policy.pods import dig

DANGEROUS_VERBS = frozenset({"*", "escalate", "bind", "impersonate"})
PRIVILEGED_CLUSTER_ROLES = frozenset({"cluster-admin"})
_FIX = "remove it from the workload repository; ask for these rights through a Grant under access/"
LENDING_PREFIX = "rbac.authorization.k8s.io/aggregate-to-"
_AGGREGATION_FIX = ("list the rules themselves, or allow aggregation to these labels in the rbac-guard policy "
                    "(params: {allowAggregationLabels: [...]})")  # fmt: skip


def dangerous(rules: list[Any]) -> list[tuple[int, str]]:
    """(rule index, what it grants) for each rule that grants too much."""
    found = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        verbs = sorted(DANGEROUS_VERBS & {str(v) for v in rule.get("verbs") or []})
        if verbs:
            found.append((index, f"verbs {', '.join(verbs)}"))
        elif "*" in (rule.get("resources") or []):
            found.append((index, "every resource (*)"))
    return found


def rbac_guard_allowing(labels: frozenset[str]) -> Check:
    """rbac-guard where a ClusterRole may aggregate the ClusterRoles carrying these label keys."""

    def check(body: KubeObject, ctx: Context) -> list[Hit]:
        return _judge(body, ctx, labels)

    return check


def rbac_guard(body: KubeObject, ctx: Context) -> list[Hit]:
    return _judge(body, ctx, frozenset())


def _judge(body: KubeObject, ctx: Context, aggregatable: frozenset[str]) -> list[Hit]:
    kind = body.get("kind")
    if kind in ("Role", "ClusterRole"):
        rules = body.get("rules")
        hits = [
            Hit("GG2001", f"{kind} grants {what}", f"rules[{i}]", Severity.HIGH, "Standing Privilege", fix=_FIX)
            for i, what in dangerous(rules if isinstance(rules, list) else [])
        ]
        return hits + _aggregates(body, aggregatable) + _lends(body)
    return _binding(body, ctx)


def _aggregates(body: KubeObject, aggregatable: frozenset[str]) -> list[Hit]:
    """Present at all (null or odd shapes included: fail closed), an aggregationRule must select only
    by labels the policy names; an empty or expression selector could match cluster-admin-like roles."""
    if "aggregationRule" not in body or _only_allowed(body["aggregationRule"], aggregatable):
        return []
    message = (f"{body.get('kind')} aggregates the rules of every ClusterRole its selectors match; what it grants "
               "cannot be known from the manifests (it may reach * on *)")  # fmt: skip
    return [Hit("GG2003", message, "aggregationRule", Severity.HIGH, "Standing Privilege", fix=_AGGREGATION_FIX)]


def _only_allowed(rule: Any, aggregatable: frozenset[str]) -> bool:
    selectors = rule.get("clusterRoleSelectors") if isinstance(rule, dict) else None
    if not aggregatable or not isinstance(selectors, list) or not selectors:
        return False
    for selector in selectors:
        if not isinstance(selector, dict) or set(selector) != {"matchLabels"}:
            return False
        labels = selector["matchLabels"]
        if not isinstance(labels, dict) or not labels or not set(map(str, labels)) <= aggregatable:
            return False
    return True


def _lends(body: KubeObject) -> list[Hit]:
    labels = dig(body, "metadata", "labels")
    if not isinstance(labels, dict):
        return []
    targets = sorted(str(k).removeprefix(LENDING_PREFIX) for k in labels if str(k).startswith(LENDING_PREFIX))
    if not targets:
        return []
    message = (f"{body.get('kind')} lends its rules to the built-in ClusterRole(s) {', '.join(targets)} through "
               "aggregation, and so to everyone bound to them")  # fmt: skip
    return [Hit("GG2004", message, "metadata.labels", Severity.HIGH, "Standing Privilege", fix=_FIX)]


def _binding(body: KubeObject, ctx: Context) -> list[Hit]:
    kind = body.get("kind")
    if kind not in ("RoleBinding", "ClusterRoleBinding"):
        return []
    ref_kind, ref_name = dig(body, "roleRef", "kind"), dig(body, "roleRef", "name")
    if ref_kind == "ClusterRole" and ref_name in PRIVILEGED_CLUSTER_ROLES:
        return [
            Hit("GG2002", f"{kind} binds {ref_name}", "roleRef.name", Severity.HIGH, "Standing Privilege", fix=_FIX)
        ]
    namespace = (dig(body, "metadata", "namespace") or "") if ref_kind == "Role" else ""
    rules = ctx.roles.get((str(ref_kind), namespace, str(ref_name)))
    if rules and dangerous(rules):
        return [
            Hit(
                "GG2002",
                f"{kind} binds {ref_kind} {ref_name}, which grants {dangerous(rules)[0][1]}",
                "roleRef.name",
                Severity.HIGH,
                "Standing Privilege",
                fix=_FIX,
            )
        ]
    return []
