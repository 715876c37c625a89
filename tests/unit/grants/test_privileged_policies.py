"""Escalation policies are privileged: a change takes effect only when an administrator named in the trust
file signed the commit that made it on the branch (their merge of the change, or their own commit). Until
then the last approved version stays in force; a policy no administrator approved does not exist."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from gitopsguard.errors import GitOpsGuardError
from gitopsguard.grants.decide import decide
from gitopsguard.grants.load import load_grants
from gitopsguard.grants.model import Decision, EscalationPolicy
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from tests.signedrepo import ESCALATION_POLICY, SignedRepo, grant

POLICY = "access/policies/debug.yaml"
PATH = "access/grants/alice.yaml"
NARROW = ESCALATION_POLICY.replace("NAMESPACE", "shop")
WIDE = NARROW.replace("namespaces: [shop]", "clusterWide: true").replace("maxDuration: 2h", "maxDuration: 30d")
CLUSTER_WIDE_GRANT = grant("alice-everywhere", "shop", "30d").replace("  namespace: shop\n", "")


@pytest.fixture
def repo(tmp_path: Path) -> SignedRepo:
    return SignedRepo(tmp_path, "shop")  # carol, an administrator, signed the narrow policy


def verifier(repo: SignedRepo) -> SignedMergeVerifier:
    return SignedMergeVerifier(repo.work, load_trust(repo.trust), repo.root / "state")


def in_force(repo: SignedRepo) -> dict[str, EscalationPolicy]:
    return verifier(repo).policies(repo.work)


def decided(repo: SignedRepo) -> Decision:
    source = verifier(repo)
    (g,), _ = load_grants(repo.work, repo.blob_of)
    return decide(g, source.policies(repo.work), source.approval(g.path), None, datetime.now(UTC))


def test_an_unreviewed_push_widening_an_escalation_policy_does_not_take_effect(repo: SignedRepo) -> None:
    repo.write(POLICY, WIDE)
    repo.commit("alice", "widen the debug policy", signed=False)
    repo.request("alice", "ask", PATH, CLUSTER_WIDE_GRANT)
    repo.merge("bob", "ask")
    d = decided(repo)
    assert d.state == "DENIED" and "does not allow ClusterRole view cluster-wide" in d.reason, d


def test_a_policy_change_merged_by_an_administrator_takes_effect(repo: SignedRepo) -> None:
    repo.request("alice", "widen", POLICY, WIDE, signed=False)
    repo.merge("carol", "widen")
    (policy,) = in_force(repo).values()
    assert policy.max_duration == timedelta(days=30) and policy.roles[0].cluster_wide


def straight_unsigned(repo: SignedRepo, text: str) -> None:
    repo.write(POLICY, text)
    repo.commit("alice", "change", signed=False)


def signed_by_a_non_administrator(repo: SignedRepo, text: str) -> None:
    repo.write(POLICY, text)
    repo.commit("bob", "change")


def merged_by_a_non_administrator(repo: SignedRepo, text: str) -> None:
    repo.request("alice", "change", POLICY, text)
    repo.merge("bob", "change")


def unsigned_merge_of_an_administrators_commit(repo: SignedRepo, text: str) -> None:
    repo.request("carol", "change", POLICY, text)  # carol signed the branch commit, but not the merge
    repo.merge("alice", "change", signed=False)


def reverted_to_an_older_approved_version(repo: SignedRepo, text: str) -> None:
    repo.write(POLICY, text)
    repo.commit("carol", "a wide policy, for a while")
    repo.write(POLICY, NARROW)
    repo.commit("carol", "narrow again")
    straight_unsigned(repo, text)


@pytest.mark.parametrize("change", [straight_unsigned, signed_by_a_non_administrator, merged_by_a_non_administrator,
                                    unsigned_merge_of_an_administrators_commit,
                                    reverted_to_an_older_approved_version])  # fmt: skip
def test_a_policy_change_not_signed_by_an_administrator_leaves_the_last_approved_version_in_force(
    repo: SignedRepo, change: Callable[[SignedRepo, str], None]
) -> None:
    change(repo, WIDE)
    (policy,) = in_force(repo).values()
    assert policy.max_duration == timedelta(hours=2) and not policy.roles[0].cluster_wide


def test_a_policy_file_no_administrator_approved_does_not_exist(repo: SignedRepo) -> None:
    repo.write("access/policies/wide.yaml", WIDE.replace("{name: debug}", "{name: wide}"))
    repo.commit("alice", "a policy of my own", signed=False)
    assert list(in_force(repo)) == ["debug"]


def test_a_broken_policy_pushed_without_approval_leaves_the_approved_version_in_force(repo: SignedRepo) -> None:
    repo.write(POLICY, "spec: [this is not a policy")
    repo.commit("alice", "oops", signed=False)
    assert list(in_force(repo)) == ["debug"]


def test_a_policy_replaced_by_a_symbolic_link_keeps_the_approved_content(repo: SignedRepo) -> None:
    repo.write("notes/wide.yaml", WIDE)
    (repo.work / POLICY).unlink()
    (repo.work / POLICY).symlink_to("../../notes/wide.yaml")
    repo.commit("alice", "link it", signed=False)
    (policy,) = in_force(repo).values()
    assert policy.max_duration == timedelta(hours=2)


def test_the_trust_file_may_only_name_signers_as_administrators(repo: SignedRepo) -> None:
    trust = yaml.safe_load(repo.trust.read_text())
    trust["administrators"] = ["carol", "mallory"]
    repo.trust.write_text(yaml.safe_dump(trust))
    with pytest.raises(GitOpsGuardError, match="administrators names mallory, who is not among the signers"):
        load_trust(repo.trust)
