"""A tenant unit acts as its own service account (impersonated), on the real API server: an account that may
only touch its own namespace cannot make the controller write a ClusterRoleBinding or into another namespace,
nor prune there through a stale inventory; nothing of a refused revision is applied, because the dry run runs
as the tenant too. The platform unit (no account) is not confined."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cli import main
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.impersonation import ServiceAccount
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ForbiddenError, ImpersonationRefusedError
from gitopsguard.model import Action
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.integration.conftest import TEST_LABEL, LiveCluster
from tests.kube import as_model

pytestmark = pytest.mark.integration
RBAC = "rbac.authorization.k8s.io"

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: {namespace}
data:
  value: "1"
"""
CLUSTER_ROLE_BINDING = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {name}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}
subjects:
  - {{kind: ServiceAccount, name: deployer, namespace: {namespace}}}
"""


@dataclass
class Tenant:
    upstream: Upstream
    namespace: str  # the tenant's own
    other: str  # a namespace the tenant may not touch
    api: client.ApiClient
    workdir: Path
    account: ServiceAccount

    def run(self, *, as_tenant: bool = True) -> ReconcileResult:
        source = GitSource(SourceSpec(self.upstream.url), self.workdir)
        unit = Unit(f"tenant-{self.namespace}", "apps", default_namespace=self.namespace, policies_path=None)
        applier = Applier(self.api, acting_as=self.account if as_tenant else None)
        # the mass-prune brake released: these repositories are small, and prune is what is tested
        return reconcile(unit, source, applier, InventoryStore(self.api), brake=BrakePolicy(released=True))

    def configmap(self, name: str, namespace: str) -> None:
        self.upstream.write(f"apps/{namespace}-{name}.yaml", CONFIGMAP.format(name=name, namespace=namespace))

    def exists(self, name: str, namespace: str) -> bool:
        try:
            client.CoreV1Api(self.api).read_namespaced_config_map(name, namespace)
            return True
        except ApiException as error:
            if error.status == 404:
                return False
            raise


def make_namespace(api: client.ApiClient) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    meta = client.V1ObjectMeta(name=name, labels={TEST_LABEL: "true"})
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=meta))
    return name


def bind(api: client.ApiClient, namespace: str, name: str, subject: client.RbacV1Subject, role: str = "edit") -> None:
    client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=name), subjects=[subject],
        role_ref=client.V1RoleRef(api_group=RBAC, kind="ClusterRole", name=role)))  # fmt: skip


@pytest.fixture
def tenant(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Tenant]:
    """ServiceAccount deployer in the tenant's namespace, with `edit` there and nowhere else."""
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(
        name="deployer")))  # fmt: skip
    bind(admin_api, namespace, "deployer-edit", client.RbacV1Subject(kind="ServiceAccount", name="deployer",
                                                                     namespace=namespace))  # fmt: skip
    other = make_namespace(admin_api)
    yield Tenant(Upstream(tmp_path / "git"), namespace, other, admin_api, tmp_path / "gg",
                 ServiceAccount(namespace, "deployer"))  # fmt: skip
    core.delete_namespace(other)


def delete_cluster_role_binding(api: client.ApiClient, name: str) -> None:
    try:
        client.RbacAuthorizationV1Api(api).delete_cluster_role_binding(name)
    except ApiException as error:
        if error.status != 404:
            raise


def test_a_tenant_unit_writing_a_cluster_role_binding_is_refused_and_nothing_of_the_revision_is_applied(
    tenant: Tenant,
) -> None:
    """A contributor to a team's folder adds a ClusterRoleBinding making the team's account cluster-admin."""
    name = f"escalate-{tenant.namespace}"
    tenant.configmap("harmless", tenant.namespace)
    tenant.upstream.write("apps/escalate.yaml", CLUSTER_ROLE_BINDING.format(name=name, namespace=tenant.namespace))
    tenant.upstream.commit()
    try:
        result = tenant.run()
        assert result.error is not None
        assert f"ClusterRoleBinding/{name}" in result.error and "forbidden" in result.error
        assert f'"system:serviceaccount:{tenant.namespace}:deployer"' in result.error
        assert not tenant.exists("harmless", tenant.namespace)  # the dry run, as the tenant, refused it all
        with pytest.raises(ApiException) as absent:
            client.RbacAuthorizationV1Api(tenant.api).read_cluster_role_binding(name)
        assert absent.value.status == 404
    finally:
        delete_cluster_role_binding(tenant.api, name)


def test_a_tenant_unit_writing_into_another_namespace_is_refused_and_nothing_of_the_revision_is_applied(
    tenant: Tenant,
) -> None:
    tenant.configmap("mine", tenant.namespace)
    tenant.configmap("theirs", tenant.other)
    tenant.upstream.commit()
    result = tenant.run()
    assert result.error is not None and f"ConfigMap/{tenant.other}/theirs" in result.error
    assert not tenant.exists("mine", tenant.namespace)
    assert not tenant.exists("theirs", tenant.other)


@pytest.mark.parametrize("platform", ["no account", "a cluster-admin account"])
def test_the_platform_unit_is_not_confined(tenant: Tenant, platform: str) -> None:
    name, admin = f"escalate-{tenant.namespace}", f"platform-admin-{tenant.namespace}"
    tenant.configmap("theirs", tenant.other)
    tenant.upstream.write("apps/escalate.yaml", CLUSTER_ROLE_BINDING.format(name=name, namespace=tenant.namespace))
    tenant.upstream.commit()
    rbac = client.RbacAuthorizationV1Api(tenant.api)
    if platform == "a cluster-admin account":
        client.CoreV1Api(tenant.api).create_namespaced_service_account(
            tenant.namespace, as_model(client.V1ServiceAccount, {"metadata": {"name": "admin"}})
        )
        rbac.create_cluster_role_binding(as_model(client.V1ClusterRoleBinding, {
            "metadata": {"name": admin}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "admin", "namespace": tenant.namespace}]}))  # fmt: skip
        tenant.account = ServiceAccount(tenant.namespace, "admin")
    try:
        result = eventually_applied(tenant)
        assert result.error is None
        assert tenant.exists("theirs", tenant.other)
        rbac.read_cluster_role_binding(name)
    finally:
        delete_cluster_role_binding(tenant.api, name)
        delete_cluster_role_binding(tenant.api, admin)


def eventually_applied(tenant: Tenant) -> ReconcileResult:
    """A pass as the platform; as a new cluster-admin account, again until the authorizer has seen its binding."""
    deadline = time.monotonic() + 10
    while True:
        result = tenant.run(as_tenant=tenant.account.name == "admin")
        if result.error is None or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def test_a_stale_inventory_naming_another_namespace_cannot_make_a_tenant_prune_there(tenant: Tenant) -> None:
    """The unit was once applied as the platform (its inventory names an object in another namespace), then
    given a tenant's account: what leaves Git is pruned as the tenant, so only in the tenant's namespace."""
    tenant.configmap("mine", tenant.namespace)
    tenant.configmap("theirs", tenant.other)
    tenant.upstream.commit()
    assert tenant.run(as_tenant=False).error is None
    tenant.upstream.remove(f"apps/{tenant.namespace}-mine.yaml")
    tenant.upstream.remove(f"apps/{tenant.other}-theirs.yaml")
    tenant.configmap("kept", tenant.namespace)
    tenant.upstream.commit()
    result = tenant.run()
    pruned = {str(c.key): c for c in result.changes if c.key.name in ("mine", "theirs")}
    assert pruned[f"ConfigMap/{tenant.namespace}/mine"].action is Action.DELETED
    assert pruned[f"ConfigMap/{tenant.other}/theirs"].action is Action.FAILED
    assert "forbidden" in (pruned[f"ConfigMap/{tenant.other}/theirs"].detail or "")
    assert tenant.exists("theirs", tenant.other)
    assert not tenant.exists("mine", tenant.namespace)


@pytest.mark.parametrize("group", ["system:serviceaccounts", "system:serviceaccounts:{ns}", "system:authenticated"])
def test_an_impersonated_account_has_the_groups_of_its_real_token(tenant: Tenant, group: str) -> None:
    """Only Impersonate-User is sent; the server gives the account its token's groups itself. Each group is
    bound alone (in a namespace of its own) and grants the impersonated request what it binds."""
    room = tenant.other
    raw = RawApi(tenant.api).impersonating(tenant.account)
    with pytest.raises(ForbiddenError):  # before the binding: nothing else lets the account read there
        raw.get(f"/api/v1/namespaces/{room}/configmaps")
    subject = client.RbacV1Subject(kind="Group", api_group=RBAC, name=group.format(ns=tenant.namespace))
    bind(tenant.api, room, "by-group", subject, role="view")
    deadline = time.monotonic() + 10  # the authorizer sees a new binding through its informer, a moment later
    while True:
        try:
            assert "items" in raw.get(f"/api/v1/namespaces/{room}/configmaps")
            return
        except ForbiddenError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_without_the_right_to_impersonate_the_pass_fails_typed_naming_the_rbac(
    tenant: Tenant, dev_cluster: LiveCluster
) -> None:
    alice = dev_cluster.api("dev-alice")
    with pytest.raises(ImpersonationRefusedError, match="gitopsguard-impersonate-tenants") as refused:
        RawApi(alice).impersonating(tenant.account).get(f"/api/v1/namespaces/{tenant.namespace}/configmaps", "cms")
    assert isinstance(refused.value, ForbiddenError)
    assert str(refused.value).startswith("cms: ")


def test_reconcile_with_a_service_account_applies_as_that_account(
    tenant: Tenant, dev_cluster: LiveCluster, tmp_path: Path
) -> None:
    """The command-line seam: `reconcile --service-account NS/NAME` is confined as the tenant's unit is, and
    a name that could forge a header is refused before anything is sent."""
    tenant.configmap("mine", tenant.namespace)
    tenant.configmap("theirs", tenant.other)
    tenant.upstream.commit()

    def once(account: str) -> Result:
        return CliRunner().invoke(main, [
            "reconcile", "--repo", str(tenant.upstream.bare), "--path", "apps", "--unit", tenant.namespace,
            "--namespace", tenant.namespace, "--kubeconfig", str(dev_cluster.kubeconfig), "--workdir",
            str(tmp_path / "cli"), "--audit-log", str(tmp_path / "audit.jsonl"), "--policies-path", "",
            "--default-service-account", account,
        ])  # fmt: skip

    forged = once(f"{tenant.namespace}/deployer\r\nImpersonate-Group: system:masters")
    assert forged.exit_code == 2 and "not a Kubernetes name" in forged.output
    confined = once(f"{tenant.namespace}/deployer")
    assert confined.exit_code == 2, confined.output
    assert f"ConfigMap/{tenant.other}/theirs" in confined.output and "forbidden" in confined.output
    assert not tenant.exists("mine", tenant.namespace) and not tenant.exists("theirs", tenant.other)


def test_a_controller_that_may_not_act_as_the_account_is_refused_once_naming_the_unit_and_the_rbac(
    tenant: Tenant, dev_cluster: LiveCluster, tmp_path: Path
) -> None:
    """Run with credentials that may not impersonate (alice's): one error before the pass, not one per object."""
    tenant.configmap("mine", tenant.namespace)
    tenant.upstream.commit()
    result = CliRunner().invoke(main, [
        "reconcile", "--repo", str(tenant.upstream.bare), "--path", "apps", "--unit", "team-a",
        "--namespace", tenant.namespace, "--kubeconfig", str(dev_cluster.kubeconfig), "--context", "dev-alice",
        "--workdir", str(tmp_path / "cli"), "--audit-log", str(tmp_path / "audit.jsonl"), "--policies-path", "",
        "--service-account", f"{tenant.namespace}/deployer",
    ])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"unit team-a: acting as service account {tenant.namespace}/deployer: " in result.output
    assert "cannot impersonate" in result.output and "gitopsguard-impersonate-tenants" in result.output
    assert not tenant.exists("mine", tenant.namespace)
