"""An approver who belongs to the grant's subject is the requester: nobody approves access for themselves,
whether the grant names them as a User or names a Group they are in (membership from the trust file)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.grants.decide import decide
from gitopsguard.grants.load import load_escalation_policies, load_grants
from gitopsguard.grants.model import Approval, EscalationPolicy, Grant, Identity, People, RoleRule, State
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from tests.signedrepo import SignedRepo, grant

PATH = "access/grants/team-shop.yaml"
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def group_grant(group: str) -> str:
    return grant("shop-debug", "shop").replace("{kind: User, name: alice}", f"{{kind: Group, name: {group}}}")


@pytest.fixture
def repo(tmp_path: Path) -> SignedRepo:
    repo = SignedRepo(tmp_path, "shop")
    trust = yaml.safe_load(repo.trust.read_text())
    for signer in trust["signers"]:
        if signer["user"] == "bob":  # bob approves debug grants, and is himself in team-shop
            signer["groups"] = ["team-payments", "team-shop"]
    repo.trust.write_text(yaml.safe_dump(trust))
    return repo


def test_a_member_of_the_group_approving_that_groups_grant_is_refused_as_self_approval(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, group_grant("team-shop"))
    repo.merge("bob", "ask")
    verifier = SignedMergeVerifier(repo.work, load_trust(repo.trust), repo.root / "state")
    (g,), _ = load_grants(repo.work, repo.blob_of)
    d = decide(g, load_escalation_policies(repo.work), verifier.approval(g.path), None, datetime.now(UTC))
    assert d.state is State.DENIED, d
    assert "bob is in the group team-shop the grant is for: approving it is approving for themselves" in d.reason


VIEW_SHOP = RoleRule("ClusterRole", "view", frozenset({"shop"}))
POLICY = EscalationPolicy("debug", "p.yaml:1", People(groups=frozenset({"team-shop"})),
                          People(users=frozenset({"bob", "dave"}), groups=frozenset({"approvers"})), 1, (VIEW_SHOP,),
                          timedelta(hours=2), False)  # fmt: skip
names = st.sampled_from(["alice", "bob", "dave", "team-shop", "approvers", "Alice", "bob "])
groups = st.frozensets(names, max_size=3)


@given(kind=st.sampled_from(["User", "Group"]), subject=names, requester=st.builds(Identity, names, groups),
       approvers=st.lists(st.builds(Identity, names, groups), min_size=1, max_size=3))  # fmt: skip
@example(kind="Group", subject="team-shop", requester=Identity("alice", frozenset({"team-shop"})),
         approvers=[Identity("bob", frozenset({"team-shop"}))])  # fmt: skip
@example(kind="User", subject="bob", requester=Identity("bob", frozenset({"team-shop"})),
         approvers=[Identity("dave"), Identity("bob", frozenset({"approvers"}))])  # fmt: skip
def test_no_grant_is_active_when_an_approver_belongs_to_its_subject(
    kind: str, subject: str, requester: Identity, approvers: list[Identity]
) -> None:
    g = Grant("g", PATH, f"{PATH}:1", "debug", kind, subject, "ClusterRole", "view", "shop", timedelta(hours=1),
              "why", "0" * 40)  # fmt: skip
    d = decide(g, {"debug": POLICY}, Approval(requester, tuple(approvers), NOW - timedelta(minutes=1)), None, NOW)
    inside = any(a.user == subject if kind == "User" else subject in a.groups for a in approvers)
    if inside:
        assert d.state is State.DENIED, d
