"""rbac-guard: workload manifests may not carry standing privilege; that goes through temporary access.

A finding for any Role or ClusterRole granting ``*``, ``escalate``, ``bind`` or ``impersonate``, and for
any binding to ``cluster-admin`` or to such a role (one in the same set of manifests, or a well-known one).
"""

from __future__ import annotations

from typing import Any

from gitopsguard.model import KubeObject
from gitopsguard.policy.model import Context, Hit, Severity
from gitopsguard.policy.pods import dig

DANGEROUS_VERBS = frozenset({"*", "escalate", "bind", "impersonate"})
PRIVILEGED_CLUSTER_ROLES = frozenset({"cluster-admin"})
_FIX = "remove it from the workload repository; ask for these rights through a Grant under access/"


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


def rbac_guard(body: KubeObject, ctx: Context) -> list[Hit]:
    kind = body.get("kind")
    if kind in ("Role", "ClusterRole"):
        return [
            Hit("GG2001", f"{kind} grants {what}", f"rules[{i}]", Severity.HIGH, "Standing Privilege", fix=_FIX)
            for i, what in dangerous(body.get("rules") or [])
        ]
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
