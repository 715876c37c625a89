"""The grants service account's RBAC, generated from ``access/policies/``: it may manage bindings, and
`bind` exactly the roles some escalation policy names (``resourceNames``), nothing else. The controller's
own account may impersonate it and no one else.

    gitopsguard grants rbac access/ > manifests/grants-rbac.yaml
"""

from __future__ import annotations

from gitopsguard.grants.bindings import GRANTS_ACCOUNT
from gitopsguard.grants.model import EscalationPolicy
from gitopsguard.model import KubeObject

NAMESPACE, ACCOUNT = GRANTS_ACCOUNT.split(":")[2:]
CONTROLLER_ACCOUNT = "gitopsguard"


def grants_rbac(policies: dict[str, EscalationPolicy]) -> list[KubeObject]:
    roles = sorted({r.name for p in policies.values() for r in p.roles if r.kind == "Role"})
    cluster_roles = sorted({r.name for p in policies.values() for r in p.roles if r.kind == "ClusterRole"})
    rules: list[KubeObject] = [{"apiGroups": ["rbac.authorization.k8s.io"],
                                "resources": ["rolebindings", "clusterrolebindings"],
                                # patch: only to take finalizers off a binding it deletes (access must end)
                                "verbs": ["get", "list", "watch", "create", "delete", "patch"]}]  # fmt: skip
    if roles:
        rules.append({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["bind"],
                      "resourceNames": roles})  # fmt: skip
    if cluster_roles:
        rules.append({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
                      "resourceNames": cluster_roles})  # fmt: skip
    labels = {"app.kubernetes.io/name": "gitopsguard", "app.kubernetes.io/component": "grants"}
    ref = "rbac.authorization.k8s.io"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": ACCOUNT, "namespace": NAMESPACE, "labels": labels},
         "automountServiceAccountToken": False},
        {"apiVersion": f"{ref}/v1", "kind": "ClusterRole",
         "metadata": {"name": "gitopsguard-grants", "labels": labels}, "rules": rules},
        {"apiVersion": f"{ref}/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "gitopsguard-grants", "labels": labels},
         "roleRef": {"apiGroup": ref, "kind": "ClusterRole", "name": "gitopsguard-grants"},
         "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}]},
        {"apiVersion": f"{ref}/v1", "kind": "ClusterRole",
         "metadata": {"name": "gitopsguard-impersonate-grants", "labels": labels},
         "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"],
                    "resourceNames": [GRANTS_ACCOUNT]},
                   {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"],
                    "resourceNames": [ACCOUNT]}]},
        {"apiVersion": f"{ref}/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "gitopsguard-impersonate-grants", "labels": labels},
         "roleRef": {"apiGroup": ref, "kind": "ClusterRole", "name": "gitopsguard-impersonate-grants"},
         "subjects": [{"kind": "ServiceAccount", "name": CONTROLLER_ACCOUNT, "namespace": NAMESPACE}]},
    ]  # fmt: skip
