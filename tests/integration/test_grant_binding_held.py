"""Access always ends even when a binding's deletion is held: a finalizer added to a grant's binding (by
anyone who may update bindings there) kept it, and the access it gives, after the keeper deleted it at
expiry. The keeper removes the finalizers of the labelled bindings it deletes and says so."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.grants.bindings import binding_name
from gitopsguard.grants.load import load_grants
from gitopsguard.grants.model import DEFAULT_KEEPER, GRANT_LABEL, KEEPER_LABEL
from tests.integration.grantsetup import Clock, keeper_for, settles, signed, sync
from tests.kube import as_model, meta
from tests.signedrepo import SignedRepo, grant

pytestmark = pytest.mark.integration
__all__ = ["signed"]  # the fixture
HOLD = "example.com/hold"


@pytest.fixture
def held(admin_api: client.ApiClient, namespace: str) -> Iterator[list[str]]:
    """Names of bindings given a finalizer; it is taken off again whatever happened, so that the test's
    namespace can be deleted."""
    names: list[str] = []
    yield names
    rbac = client.RbacAuthorizationV1Api(admin_api)
    for name in names:
        try:
            rbac.patch_namespaced_role_binding(name, namespace, {"metadata": {"finalizers": None}})
        except ApiException as error:
            if error.status != 404:
                raise


def test_a_finalizer_on_a_grants_binding_does_not_keep_access_after_expiry(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, held: list[str]
) -> None:
    repo, clock = signed
    repo.request("alice", "ask", "access/grants/alice.yaml", grant("alice-debug", namespace, "10m"))
    repo.merge("bob", "ask")
    keeper = keeper_for(admin_api, namespace, clock)
    assert any(e.startswith("activated") for e in sync(repo, keeper))
    (g,) = load_grants(repo.work, repo.blob_of)[0]
    name = binding_name(g)
    held.append(name)
    rbac = client.RbacAuthorizationV1Api(admin_api)
    rbac.patch_namespaced_role_binding(name, namespace, {"metadata": {"finalizers": [HOLD]}})

    clock.offset = timedelta(minutes=10, seconds=1)
    assert [t.event for t in keeper.expire_due()][:1] == ["expired"]
    assert any(HOLD in p and name in p for p in keeper.problems), keeper.problems
    with pytest.raises(ApiException) as gone:
        rbac.read_namespaced_role_binding(name, namespace)
    assert gone.value.status == 404, "the binding outlived its grant, held by a finalizer"
    assert not settles(admin_api, "alice", "list", "pods", namespace)


def test_any_labelled_binding_the_sweep_deletes_is_gone_finalizers_or_not(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, held: list[str]
) -> None:
    """The general rule: whatever the sweep deletes is gone when the sweep ends."""
    repo, clock = signed
    rbac = client.RbacAuthorizationV1Api(admin_api)
    for name, finalizers in (("stray-held", [HOLD, "example.com/another"]), ("stray-plain", None)):
        held.append(name)
        rbac.create_namespaced_role_binding(namespace, as_model(client.V1RoleBinding, {
            "metadata": {"name": name, "labels": {GRANT_LABEL: "forged", KEEPER_LABEL: DEFAULT_KEEPER},
                         "finalizers": finalizers},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}]}))  # fmt: skip
    keeper = keeper_for(admin_api, namespace, clock)
    sync(repo, keeper)
    left = [meta(b).name for b in rbac.list_namespaced_role_binding(namespace).items]
    assert "stray-held" not in left and "stray-plain" not in left
    assert not settles(admin_api, "mallory", "list", "pods", namespace)
