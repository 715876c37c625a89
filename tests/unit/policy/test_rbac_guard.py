"""rbac-guard: standing privilege in workload manifests is refused."""

from __future__ import annotations

from typing import Any

import pytest

from gitopsguard.policy.model import Context
from gitopsguard.policy.packs.rbac_guard import rbac_guard


def _binding(kind: str, role_kind: str, role: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": "b", "namespace": "t"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}}  # fmt: skip


def _role(kind: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": "r"}, "rules": rules}


def test_binding_cluster_admin_is_refused() -> None:
    assert [h.code for h in rbac_guard(_binding("ClusterRoleBinding", "ClusterRole", "cluster-admin"), Context())] == [
        "GG2002"
    ]


def test_roles_granting_wildcards_escalate_bind_or_impersonate_are_refused() -> None:
    for verbs in (["*"], ["escalate"], ["bind"], ["impersonate"]):
        assert [
            h.code for h in rbac_guard(_role("ClusterRole", [{"verbs": verbs, "resources": ["x"]}]), Context())
        ] == ["GG2001"]
    assert rbac_guard(_role("Role", [{"verbs": ["get", "list"], "resources": ["pods"]}]), Context()) == []


def test_binding_a_role_from_the_same_set_that_grants_too_much_is_refused() -> None:
    roles = {("Role", "t", "power"): [{"verbs": ["bind"], "resources": ["roles"]}],
             ("Role", "t", "reader"): [{"verbs": ["get"], "resources": ["pods"]}]}  # fmt: skip
    assert [h.code for h in rbac_guard(_binding("RoleBinding", "Role", "power"), Context(None, roles))] == ["GG2002"]
    assert rbac_guard(_binding("RoleBinding", "Role", "reader"), Context(None, roles)) == []


@pytest.mark.parametrize("shape", ["Pod", "Deployment", "CronJob"])
def test_required_labels_passes_labelled_workloads_and_fails_unlabelled_ones(shape: str) -> None:
    from gitopsguard.policy.packs.required_labels import required_labels
    from tests.unit.policy.workloads import SHAPES, compliant_spec

    check = required_labels(("team", "owner"))
    body = SHAPES[shape](compliant_spec())
    (hit,) = check(body, Context())
    assert hit.message == "missing required labels: team, owner" and hit.path == "metadata.labels"
    body["metadata"]["labels"] = {"team": "shop", "owner": "ana"}
    assert check(body, Context()) == []
