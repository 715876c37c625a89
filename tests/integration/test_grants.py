"""Temporary access on the real control plane, in signed-merge mode: a signed request and a signed merge
give alice real rights, which vanish at expiry; the grants account can bind nothing else; stray labelled
bindings are swept."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cluster.rest import RawApi
from gitopsguard.grants.bindings import Binder, binding_name, install_rbac
from gitopsguard.grants.keeper import GrantKeeper
from gitopsguard.grants.load import load_escalation_policies, load_grants
from gitopsguard.grants.model import DEFAULT_KEEPER, GRANT_LABEL, KEEPER_LABEL
from gitopsguard.grants.rbac import grants_rbac
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from gitopsguard.grants.store import GrantStore
from tests.integration.conftest import LiveCluster
from tests.kube import as_model, close
from tests.signedrepo import SignedRepo, grant

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def alice_can_list_pods(cluster: LiveCluster, namespace: str) -> bool:
    api = cluster.api("dev-alice")
    try:
        client.CoreV1Api(api).list_namespaced_pod(namespace)
    except ApiException as error:
        assert error.status == 403
        return False
    finally:
        close(api)
    return True


@pytest.fixture
def setup(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> Iterator[tuple[SignedRepo, GrantKeeper, Clock]]:
    repo = SignedRepo(tmp_path, namespace)
    install_rbac(admin_api, grants_rbac(load_escalation_policies(repo.work)))
    clock = Clock()
    keeper = GrantKeeper(Binder(admin_api), GrantStore(RawApi(admin_api), namespace), clock=clock)
    yield repo, keeper, clock


def sync(repo: SignedRepo, keeper: GrantKeeper) -> list[str]:
    verifier = SignedMergeVerifier(repo.work, load_trust(repo.trust), repo.root / "state")
    return [f"{t.event}: {t.detail}" for t in keeper.sync(repo.work, verifier, repo.blob_of)]


def test_signed_request_and_signed_merge_give_real_access_until_expiry(
    setup: tuple[SignedRepo, GrantKeeper, Clock], dev_cluster: LiveCluster, namespace: str,
    admin_api: client.ApiClient,
) -> None:  # fmt: skip
    repo, keeper, clock = setup
    assert not alice_can_list_pods(dev_cluster, namespace)
    repo.request("alice", "ask", "access/grants/alice.yaml", grant("alice-debug", namespace, "10m"))
    repo.merge("bob", "ask")
    events = sync(repo, keeper)
    assert any(e.startswith("activated: approved by bob") for e in events), events
    assert keeper.problems == []
    assert alice_can_list_pods(dev_cluster, namespace)

    clock.offset = timedelta(minutes=10, seconds=1)  # the controller's clock passes the expiry
    expired = keeper.expire_due()
    assert [t.event for t in expired][:1] == ["expired"]
    assert not alice_can_list_pods(dev_cluster, namespace)
    (entry,) = keeper.entries.values()
    assert entry.memory.state == "EXPIRED"
    assert sync(repo, keeper) == []  # the file is still in Git: it stays expired, nothing comes back


def test_the_grants_account_cannot_bind_a_role_no_policy_names(
    setup: tuple[SignedRepo, GrantKeeper, Clock], admin_api: client.ApiClient, namespace: str
) -> None:
    repo, _, _ = setup
    repo.request("alice", "ask", "access/grants/alice.yaml", grant("alice-debug", namespace))
    repo.merge("bob", "ask")
    (admin_grant,) = load_grants(repo.work, repo.blob_of)[0]
    admin_grant = replace(admin_grant, role="cluster-admin")
    problem = Binder(admin_api).bind(admin_grant, datetime.now(UTC) + timedelta(hours=1))
    assert problem is not None and "forbidden" in problem.lower(), problem
    rbac = client.RbacAuthorizationV1Api(admin_api)
    with pytest.raises(ApiException) as missing:
        rbac.read_namespaced_role_binding(binding_name(admin_grant), namespace)
    assert missing.value.status == 404


def test_a_binding_marked_as_the_keepers_that_no_active_grant_backs_is_swept(
    setup: tuple[SignedRepo, GrantKeeper, Clock], admin_api: client.ApiClient, namespace: str
) -> None:
    repo, keeper, _ = setup
    rbac = client.RbacAuthorizationV1Api(admin_api)
    stray = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "hand-made", "labels": {GRANT_LABEL: "forged", KEEPER_LABEL: DEFAULT_KEEPER}},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
             "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]}  # fmt: skip
    rbac.create_namespaced_role_binding(namespace, as_model(client.V1RoleBinding, stray))
    events = sync(repo, keeper)
    assert "unbound: no active grant backs it" in events
    with pytest.raises(ApiException):
        rbac.read_namespaced_role_binding("hand-made", namespace)
