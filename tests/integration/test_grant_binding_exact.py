"""Only the right binding exists: the sweep keeps a labelled binding only when its kind, namespace, name,
subjects and roleRef are exactly what an active grant makes. Anything else carrying the label (a forged
binding with the name of alice's, alice's binding with a subject added, ...) is deleted and the right one
made again. On the real API server and its authorizer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.grants.bindings import binding_name
from gitopsguard.grants.keeper import GrantKeeper
from gitopsguard.grants.load import load_grants
from gitopsguard.grants.model import GRANT_LABEL, Grant
from tests.integration.grantsetup import Clock, keeper_for, settles, signed, sync
from tests.kube import meta
from tests.signedrepo import SignedRepo, grant

pytestmark = pytest.mark.integration
__all__ = ["signed"]  # the fixture
RBAC = "rbac.authorization.k8s.io"
Made = list[tuple[str, str, str]]  # (kind, namespace, name) to delete after the test, whatever happened


@pytest.fixture
def made(admin_api: client.ApiClient) -> Iterator[Made]:
    """Forged bindings are cleaned up even when the keeper failed to remove them (cluster-admin must not
    outlive a failing test on a shared cluster)."""
    objects: Made = []
    yield objects
    rbac = client.RbacAuthorizationV1Api(admin_api)
    for kind, namespace, name in objects:
        try:
            if kind == "ClusterRoleBinding":
                rbac.delete_cluster_role_binding(name)
            else:
                rbac.delete_namespaced_role_binding(name, namespace)
        except ApiException as error:
            if error.status != 404:
                raise


def active(repo: SignedRepo, namespace: str, admin_api: client.ApiClient, clock: Clock) -> tuple[GrantKeeper, Grant]:
    repo.request("alice", "ask", "access/grants/alice.yaml", grant("alice-debug", namespace, "10m"))
    repo.merge("bob", "ask")
    keeper = keeper_for(admin_api, namespace, clock)
    assert any(e.startswith("activated") for e in sync(repo, keeper))
    (g,) = load_grants(repo.work, repo.blob_of)[0]
    return keeper, g


def body(kind: str, name: str, label: str, role: tuple[str, str], users: list[str], namespace: str = "") -> Any:
    metadata: dict[str, Any] = {"name": name, "labels": {GRANT_LABEL: label}}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": metadata,
            "roleRef": {"apiGroup": RBAC, "kind": role[0], "name": role[1]},
            "subjects": [{"kind": "User", "name": u, "apiGroup": RBAC} for u in users]}  # fmt: skip


def create(api: client.ApiClient, made: Made, forged: Any) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    namespace = forged["metadata"].get("namespace", "")
    made.append((forged["kind"], namespace, forged["metadata"]["name"]))
    if forged["kind"] == "ClusterRoleBinding":
        rbac.create_cluster_role_binding(forged)
    else:
        rbac.create_namespaced_role_binding(namespace, forged)


def only_the_grants_binding_remains(api: client.ApiClient, g: Grant) -> None:
    """Exactly one binding of that name anywhere, and it is the RoleBinding the grant makes."""
    rbac = client.RbacAuthorizationV1Api(api)
    name = binding_name(g)
    everywhere = [b for b in rbac.list_role_binding_for_all_namespaces().items if meta(b).name == name]
    clusterwide = [b for b in rbac.list_cluster_role_binding().items if meta(b).name == name]
    assert clusterwide == []
    assert [meta(b).namespace for b in everywhere] == [g.namespace]
    (kept,) = everywhere
    assert (kept.role_ref.kind, kept.role_ref.name) == ("ClusterRole", "view")
    assert kept.subjects is not None, "the binding has no subjects"
    assert [(s.kind, s.name) for s in kept.subjects] == [("User", "alice")]


def test_a_forged_cluster_admin_binding_with_the_name_and_label_of_alices_is_swept(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, made: Made
) -> None:
    """The break: mallory's ClusterRoleBinding to cluster-admin, named and labelled like alice's active
    binding, was kept because the sweep compared names and labels only."""
    repo, clock = signed
    keeper, g = active(repo, namespace, admin_api, clock)
    forged = body("ClusterRoleBinding", binding_name(g), g.content[:12], ("ClusterRole", "cluster-admin"), ["mallory"])
    create(admin_api, made, forged)
    assert settles(admin_api, "mallory", "delete", "nodes")  # the forgery works on the real server
    sync(repo, keeper)
    assert not settles(admin_api, "mallory", "delete", "nodes")
    only_the_grants_binding_remains(admin_api, g)
    assert settles(admin_api, "alice", "list", "pods", namespace)


def _add_mallory(api: client.ApiClient, g: Grant, made: Made) -> None:
    subjects = [{"kind": "User", "name": who, "apiGroup": RBAC} for who in ("alice", "mallory")]
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.patch_namespaced_role_binding(binding_name(g), g.namespace, {"subjects": subjects})


def _swap_role(api: client.ApiClient, g: Grant, made: Made) -> None:
    client.RbacAuthorizationV1Api(api).delete_namespaced_role_binding(binding_name(g), g.namespace)
    create(api, made, body("RoleBinding", binding_name(g), g.content[:12], ("ClusterRole", "admin"), ["alice"],
                           g.namespace))  # fmt: skip


def _other_namespace(api: client.ApiClient, g: Grant, made: Made) -> None:
    create(api, made, body("RoleBinding", binding_name(g), g.content[:12], ("ClusterRole", "view"), ["alice"],
                           "default"))  # fmt: skip


def _cluster_wide_copy(api: client.ApiClient, g: Grant, made: Made) -> None:
    create(api, made, body("ClusterRoleBinding", binding_name(g), g.content[:12], ("ClusterRole", "view"), ["alice"]))


def _group_subject(api: client.ApiClient, g: Grant, made: Made) -> None:
    client.RbacAuthorizationV1Api(api).patch_namespaced_role_binding(binding_name(g), g.namespace, {"subjects": [
        {"kind": "Group", "name": "system:authenticated", "apiGroup": RBAC}]})  # fmt: skip


@pytest.mark.parametrize("tamper", [_add_mallory, _swap_role, _other_namespace, _cluster_wide_copy, _group_subject])
def test_any_labelled_binding_that_is_not_exactly_what_an_active_grant_makes_is_replaced(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, made: Made,
    tamper: Callable[[client.ApiClient, Grant, Made], None],
) -> None:  # fmt: skip
    """The general rule: subjects, roleRef, kind and namespace must all equal the grant's own binding."""
    repo, clock = signed
    keeper, g = active(repo, namespace, admin_api, clock)
    tamper(admin_api, g, made)
    sync(repo, keeper)
    assert keeper.problems == []
    only_the_grants_binding_remains(admin_api, g)
    assert not settles(admin_api, "mallory", "list", "pods", namespace)
    assert not settles(admin_api, "carol", "list", "pods", namespace)
    assert not settles(admin_api, "alice", "delete", "pods", namespace)
    assert settles(admin_api, "alice", "list", "pods", namespace)


def test_an_unlabelled_binding_squatting_the_grants_name_is_not_taken_for_the_grants_binding(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, made: Made
) -> None:
    """Made before the grant activates, without the label, the sweep never lists it; creating the real one
    then answered 409 Conflict, which the keeper took for 'already in place'."""
    repo, clock = signed
    repo.request("alice", "ask", "access/grants/alice.yaml", grant("alice-debug", namespace, "10m"))
    repo.merge("bob", "ask")
    (g,) = load_grants(repo.work, repo.blob_of)[0]
    squatter = body("RoleBinding", binding_name(g), "", ("ClusterRole", "edit"), ["mallory"], namespace)
    del squatter["metadata"]["labels"]
    create(admin_api, made, squatter)
    keeper = keeper_for(admin_api, namespace, clock)
    sync(repo, keeper)
    only_the_grants_binding_remains(admin_api, g)
    assert not settles(admin_api, "mallory", "list", "pods", namespace)
