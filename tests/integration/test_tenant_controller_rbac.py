"""The controller's account as manifests/controller-rbac.yaml installs it, with its real token: bound in a
tenant's namespace as the manifest's example shows, it may act as that namespace's service accounts, and as no
one else: not a user, not system:masters, not an account of a namespace it is not bound in."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from gitopsguard.cluster import connect
from gitopsguard.cluster.impersonation import ServiceAccount
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ForbiddenError, ImpersonationRefusedError
from tests.integration.conftest import LiveCluster
from tests.integration.test_controller_account import account_kubeconfig
from tests.kube import as_model
from tests.kubectl import kubectl

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
PARTS = ("namespace.yaml", "crds/policyreport.yaml", "controller-rbac.yaml", "grants-rbac.yaml")


def shipped_tenant_binding(namespace: str) -> dict[str, object]:
    """The RoleBinding the manifest's comment tells operators to copy, for ``namespace``."""
    text = (ROOT / "manifests" / "controller-rbac.yaml").read_text()
    example = text.split("# For each tenant namespace (here team-a):\n# ---\n", 1)[1]
    body = yaml.safe_load("\n".join(line.removeprefix("# ") for line in example.splitlines()))
    assert isinstance(body, dict) and body["kind"] == "RoleBinding"
    body["metadata"]["namespace"] = namespace
    return body


@pytest.fixture
def controller(dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Path:
    config = account_kubeconfig(dev_cluster, admin_api, tmp_path, PARTS)
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(
        name="deployer")))  # fmt: skip
    client.RbacAuthorizationV1Api(admin_api).create_namespaced_role_binding(
        namespace, as_model(client.V1RoleBinding, shipped_tenant_binding(namespace))
    )
    return config


def as_controller(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kubectl(), "--kubeconfig", str(config), *args], capture_output=True, text=True,
                          check=False)  # fmt: skip


def eventually_allowed(raw: RawApi, path: str) -> None:
    deadline = time.monotonic() + 10  # the authorizer sees a new binding through its informer, a moment later
    while True:
        try:
            raw.get(path)
            return
        except ImpersonationRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        except ForbiddenError:
            return  # impersonation was allowed; the account itself may not list: that is its own RBAC


def test_the_controller_may_act_as_an_account_of_a_namespace_it_is_bound_in(controller: Path, namespace: str) -> None:
    raw = RawApi(connect(controller)).impersonating(ServiceAccount(namespace, "deployer"))
    eventually_allowed(raw, f"/api/v1/namespaces/{namespace}/configmaps")


def test_the_controller_cannot_act_as_a_user_system_masters_or_another_namespaces_account(
    controller: Path, namespace: str
) -> None:
    eventually_allowed(RawApi(connect(controller)).impersonating(ServiceAccount(namespace, "deployer")),
                       f"/api/v1/namespaces/{namespace}/configmaps")  # fmt: skip
    tenant = f"system:serviceaccount:{namespace}:deployer"
    attempts = {
        "a user": ("--as=admin",),
        "system:masters": (f"--as={tenant}", "--as-group=system:masters"),
        "kube-system's account": ("--as=system:serviceaccount:kube-system:namespace-controller",),
        "another namespace's account": ("--as=system:serviceaccount:default:default",),
    }
    for who, flags in attempts.items():
        answer = as_controller(controller, *flags, "get", "namespaces")
        assert answer.returncode != 0, f"the controller could act as {who}"
        assert "cannot impersonate" in answer.stderr, (who, answer.stderr)
    with pytest.raises(ImpersonationRefusedError, match="gitopsguard-impersonate-tenants"):
        RawApi(connect(controller)).impersonating(ServiceAccount("kube-system", "namespace-controller")).get(
            "/api/v1/namespaces/kube-system/configmaps"
        )
