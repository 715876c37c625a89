"""Two units keeping grants (two `run` processes, each with its keeper) never take each other's access away:
each keeper marks the bindings it makes with its own name and sweeps only those, and keeps its state in a
ConfigMap of its own. A binding someone else labelled as a grant is never deleted. On the real API server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cluster.rest import RawApi
from gitopsguard.grants.bindings import Binder, binding_name, install_rbac
from gitopsguard.grants.keeper import GrantKeeper
from gitopsguard.grants.load import load_escalation_policies, load_grants
from gitopsguard.grants.model import GRANT_LABEL, KEEPER_LABEL, Grant
from gitopsguard.grants.rbac import grants_rbac
from gitopsguard.grants.store import GrantStore
from tests.integration.grantsetup import Clock, sync
from tests.kube import as_model, meta
from tests.signedrepo import SignedRepo, grant

pytestmark = pytest.mark.integration
TEAM_B = "team-b-grants"


def requested(root: Path, namespace: str, name: str, duration: str) -> tuple[SignedRepo, Grant]:
    repo = SignedRepo(root, namespace)
    repo.request("alice", "ask", "access/grants/alice.yaml", grant(name, namespace, duration))
    repo.merge("bob", "ask")
    (g,) = load_grants(repo.work, repo.blob_of)[0]
    return repo, g


@pytest.fixture
def two(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[tuple[SignedRepo, ...]]:
    a, _ = requested(tmp_path / "a", namespace, "alice-a", "10m")
    b, _ = requested(tmp_path / "b", namespace, "alice-b", "1h")
    install_rbac(admin_api, grants_rbac(load_escalation_policies(a.work)))
    yield a, b


def binding_exists(api: client.ApiClient, namespace: str, name: str) -> bool:
    try:
        client.RbacAuthorizationV1Api(api).read_namespaced_role_binding(name, namespace)
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def test_two_keepers_never_sweep_each_others_bindings(
    two: tuple[SignedRepo, SignedRepo], admin_api: client.ApiClient, namespace: str
) -> None:
    """The break: every keeper swept every binding labelled as a grant, so each unit's keeper deleted the
    other's access at its next round (and the other made it again: access flapping for as long as both ran)."""
    repo_a, repo_b = two
    clock, raw = Clock(), RawApi(admin_api)
    keeper_a = GrantKeeper(Binder(admin_api), GrantStore(raw, namespace), clock=clock)
    keeper_b = GrantKeeper(Binder(admin_api, keeper=TEAM_B), GrantStore(raw, namespace, name=TEAM_B), clock=clock)
    (g_a,), (g_b,) = load_grants(repo_a.work, repo_a.blob_of)[0], load_grants(repo_b.work, repo_b.blob_of)[0]
    name_a, name_b = binding_name(g_a), binding_name(g_b, TEAM_B)
    sync(repo_a, keeper_a)
    sync(repo_b, keeper_b)
    assert binding_exists(admin_api, namespace, name_a) and binding_exists(admin_api, namespace, name_b)
    sync(repo_a, keeper_a)  # A's sweep, with B's binding in place
    assert binding_exists(admin_api, namespace, name_b)
    sync(repo_b, keeper_b)
    assert binding_exists(admin_api, namespace, name_a)
    labels = meta(client.RbacAuthorizationV1Api(admin_api).read_namespaced_role_binding(name_b, namespace)).labels
    assert (labels or {})[KEEPER_LABEL] == TEAM_B

    clock.offset = timedelta(minutes=20)  # A's grant (10 m) is over, B's (1 h) is not
    keeper_a.tend()
    keeper_b.tend()
    assert not binding_exists(admin_api, namespace, name_a)
    assert binding_exists(admin_api, namespace, name_b)
    assert {e.name for e in GrantStore(raw, namespace, name=TEAM_B).load().values()} == {"alice-b"}


def test_a_binding_someone_else_labelled_as_a_grant_is_never_deleted(
    two: tuple[SignedRepo, SignedRepo], admin_api: client.ApiClient, namespace: str
) -> None:
    repo_a, _ = two
    rbac = client.RbacAuthorizationV1Api(admin_api)
    rbac.create_namespaced_role_binding(namespace, as_model(client.V1RoleBinding, {
        "metadata": {"name": "oncall-by-hand", "labels": {GRANT_LABEL: "by-hand"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "dave", "apiGroup": "rbac.authorization.k8s.io"}],
    }))  # fmt: skip
    keeper = GrantKeeper(Binder(admin_api), GrantStore(RawApi(admin_api), namespace), clock=Clock())
    sync(repo_a, keeper)
    sync(repo_a, keeper)
    assert binding_exists(admin_api, namespace, "oncall-by-hand")
