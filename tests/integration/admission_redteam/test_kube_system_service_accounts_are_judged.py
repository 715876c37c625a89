"""Attack: have any service account of kube-system write the object, and no policy judges it.

review.py's control_plane admits unjudged every kind but Pods from any user that starts with
`system:serviceaccount:kube-system:` (meant for the controller-manager's per-controller accounts, with
--use-service-account-credentials). That prefix also covers every add-on that runs in kube-system under an
account of its own or `default`: dashboards acting for their users, CI agents, old Helm tillers, DNS and
CNI agents. A ClusterRoleBinding to cluster-admin that the repository's own rbac-guard denies is admitted
when such an account writes it. The exemption is wider than the threat model's "the control plane's own
users", and the named controller accounts would do (the cronjob-, replicaset-, ... -controller ones, or the
controller-manager's group).

Attacker: whoever controls any workload or account in kube-system (or a user of an add-on acting there).
"""

from __future__ import annotations

import json
import ssl
import time
from typing import Any

import pytest

from gitopsguard.admission.review import Judgement
from gitopsguard.admission.server import AdmissionServer
from gitopsguard.policy import DenyLevel, parse_policies

RBAC_GUARD = """apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: rbac-guard}
spec:
  builtin: {name: rbac-guard}
  enforcement: enforce
"""
JUDGEMENT = Judgement(parse_policies({"policies/rbac-guard.yaml": RBAC_GUARD}), DenyLevel.LOW, "abc123")
BINDING = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "me"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
           "subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}]}  # fmt: skip


def binding_review(username: str) -> dict[str, Any]:
    group = {"group": "rbac.authorization.k8s.io", "version": "v1"}
    request = {"uid": "u-1", "kind": {**group, "kind": "ClusterRoleBinding"},
               "resource": {**group, "resource": "clusterrolebindings"}, "name": "me", "operation": "CREATE",
               "userInfo": {"username": username, "groups": ["system:serviceaccounts", "system:authenticated"]},
               "object": BINDING, "dryRun": False}  # fmt: skip
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


@pytest.fixture
def server() -> Any:
    made = AdmissionServer(("127.0.0.1", 0), ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), lambda: JUDGEMENT)
    yield made
    made.server_close()
    made.pool.shutdown(wait=False)


def allowed(server: AdmissionServer, username: str) -> bool:
    data = json.dumps(binding_review(username)).encode()
    return bool(server.judge("validate", data, time.monotonic() + 4)["response"]["allowed"])


def test_a_cluster_admin_binding_by_a_tenants_account_is_refused(server: AdmissionServer) -> None:
    assert not allowed(server, "system:serviceaccount:shop:deployer")


@pytest.mark.parametrize("account", ["default", "kubernetes-dashboard", "tiller"])
def test_a_cluster_admin_binding_by_an_add_on_in_kube_system_is_refused(server: AdmissionServer, account: str) -> None:
    assert not allowed(server, f"system:serviceaccount:kube-system:{account}")
