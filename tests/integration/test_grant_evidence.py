"""Approval evidence on the real control plane, through the keeper: an unreviewed widening of an escalation
policy gives nothing, and a revoked grant brought back by an unreviewed merge of its old signed request
gives alice no access."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.rest import RawApi
from gitopsguard.grants.bindings import Binder, install_rbac
from gitopsguard.grants.keeper import GrantKeeper
from gitopsguard.grants.load import load_escalation_policies
from gitopsguard.grants.rbac import grants_rbac
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from gitopsguard.grants.store import GrantStore
from tests.integration.conftest import LiveCluster
from tests.integration.test_grants import alice_can_list_pods
from tests.signedrepo import SignedRepo, grant

pytestmark = pytest.mark.integration
PATH = "access/grants/alice.yaml"


def alice_access_settles(cluster: LiveCluster, namespace: str, expected: bool) -> bool:
    """Whether alice's access reaches ``expected`` within 10 s: the API server's RBAC cache follows bindings
    a moment later, longer on a busy machine."""
    deadline = time.monotonic() + 10
    while alice_can_list_pods(cluster, namespace) != expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.fixture
def setup(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[tuple[SignedRepo, GrantKeeper]]:
    repo = SignedRepo(tmp_path, namespace)
    install_rbac(admin_api, grants_rbac(load_escalation_policies(repo.work)))
    yield repo, GrantKeeper(Binder(admin_api), GrantStore(RawApi(admin_api), namespace))


def sync(repo: SignedRepo, keeper: GrantKeeper) -> list[str]:
    verifier = SignedMergeVerifier(repo.work, load_trust(repo.trust), repo.root / "state")
    return [f"{t.event}: {t.detail}" for t in keeper.sync(repo.work, verifier, repo.blob_of)]


def test_an_unreviewed_push_lengthening_a_policys_maximum_does_not_lengthen_a_grant(
    setup: tuple[SignedRepo, GrantKeeper], namespace: str
) -> None:
    repo, keeper = setup
    policy = (repo.work / "access/policies/debug.yaml").read_text()
    repo.write("access/policies/debug.yaml", policy.replace("maxDuration: 2h", "maxDuration: 30d"))
    repo.commit("alice", "widen", signed=False)  # nobody reviewed this
    repo.request("alice", "ask", PATH, grant("alice-debug", namespace, "30d"))
    repo.merge("bob", "ask")
    events = sync(repo, keeper)
    assert any(e.startswith("activated: approved by bob") for e in events), events
    (entry,) = keeper.entries.values()
    assert entry.memory.start is not None and entry.memory.expires is not None
    assert entry.memory.expires - entry.memory.start == timedelta(hours=2), entry.memory


def test_a_revoked_grant_brought_back_by_an_unreviewed_merge_gives_no_access(
    setup: tuple[SignedRepo, GrantKeeper], dev_cluster: LiveCluster, namespace: str
) -> None:
    repo, keeper = setup
    repo.request("alice", "ask", PATH, grant("alice-debug", namespace, "1h"))
    old = repo.git("rev-parse", "ask")
    repo.merge("bob", "ask")
    assert any(e.startswith("activated") for e in sync(repo, keeper))
    assert alice_access_settles(dev_cluster, namespace, True)
    repo.git("rm", "-q", PATH)
    repo.commit("carol", "revoke alice's access")
    assert any(e.startswith("revoked") for e in sync(repo, keeper))
    assert alice_access_settles(dev_cluster, namespace, False)
    repo.git("checkout", "-q", old, "--", PATH, person="alice")  # alice: an unsigned merge of her old request
    tree = repo.git("write-tree", person="alice")
    commit = repo.git("commit-tree", tree, "-p", "main", "-p", old, "-m", "Merge old work", person="alice")
    repo.git("reset", "-q", "--hard", commit, person="alice")
    events = sync(repo, keeper)
    assert not any(e.startswith("activated") for e in events), events
    time.sleep(1)  # had a binding been made, the RBAC cache would show it by now
    assert not alice_can_list_pods(dev_cluster, namespace)
