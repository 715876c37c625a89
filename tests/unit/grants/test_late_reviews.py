"""github mode: an ACTIVE grant stands on the evidence it was activated on (its approving merge, the merge time and
the approvers it counted). A review left on the merged pull request later, by anyone who can review, adds nothing
and takes nothing from someone else's grant; only an activating approver's own latest review can withdraw theirs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.grants.decide import decide
from gitopsguard.grants.github import GitHubApprovals
from gitopsguard.grants.load import load_escalation_policies, load_grants
from gitopsguard.grants.model import Approval, Decision, Grant, Identity, Remembered, State
from tests.fakegithub import TOKEN, FakeGitHub, Pull
from tests.signedrepo import SignedRepo, grant

PATH = "access/grants/alice.yaml"
LOGINS = {"alice-gh": Identity("alice", frozenset({"team-shop"})), "bob-gh": Identity("bob")}
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


class Merged:
    """Alice's grant, requested in pull request #7 and merged with bob-gh's approval on its head."""

    def __init__(self, tmp: Path, url: str, fake: FakeGitHub) -> None:
        self.repo, self.fake = SignedRepo(tmp, "shop"), fake
        self.repo.request("alice", "ask", PATH, grant("alice-debug", "shop"), signed=False)
        self.head = self.repo.git("rev-parse", "ask")
        merge = self.repo.merge("bob", "ask", signed=False)
        fake.pulls = [Pull(7, "alice-gh", [self.head], reviews=[("bob-gh", "APPROVED", self.head)],
                           merge_commit=merge)]  # fmt: skip
        self.source = GitHubApprovals(self.repo.work, api_url=url, owner_repo="org/cluster-config", branch="main",
                                      token=TOKEN, logins=LOGINS)  # fmt: skip

    def decide(self, remembered: Remembered | None, later: int = 0) -> Decision:
        (g,), _ = load_grants(self.repo.work, self.repo.blob_of)
        policies = load_escalation_policies(self.repo.work)
        return decide(g, policies, self.source.approval(g.path), remembered, NOW + timedelta(seconds=later))

    def review(self, login: str, state: str) -> None:
        self.fake.pulls[0].reviews.append((login, state, self.head))


@pytest.fixture
def merged(tmp_path: Path) -> Iterator[Merged]:
    fake = FakeGitHub()
    with fake.serving() as url:
        yield Merged(tmp_path, url, fake)


def remember(d: Decision) -> Remembered:
    return Remembered(d.state, NOW, d.start, d.expires, d.approver, d.reason, merge=d.merge)


@pytest.mark.parametrize("login", ["mallory-gh", "alice-gh", "bob-gh"])
def test_a_late_approval_on_the_merged_pull_request_is_refused_as_a_way_to_revoke_a_grant(
    merged: Merged, login: str
) -> None:
    """The break (red team 2, g1): mallory-gh approves the merged pull request's head after the merge; the approver
    list differed from the one remembered and alice's ACTIVE grant was revoked ("its file was removed or
    changed"). Anyone who can review could revoke anyone's grant. The requester's own late approval, or the
    activating approver approving again, must not change anything either."""
    first = merged.decide(None)
    assert first.state is State.ACTIVE and first.approver == "bob", first
    merged.review(login, "APPROVED")
    again = merged.decide(remember(first), later=60)
    assert again.state is State.ACTIVE, again.reason


@pytest.mark.parametrize("state", ["CHANGES_REQUESTED", "DISMISSED"])
def test_an_activating_approver_whose_latest_review_no_longer_approves_revokes_with_that_reason(
    merged: Merged, state: str
) -> None:
    """Each reviewer's latest review on the head decides: bob-gh requesting changes (or his approval being
    dismissed by someone with write access) withdraws the approval the grant was activated on."""
    first = merged.decide(None)
    merged.review("bob-gh", state)
    again = merged.decide(remember(first), later=60)
    assert again.state is State.REVOKED, again
    assert "bob no longer approves" in again.reason and "removed or changed" not in again.reason, again.reason


def test_a_strangers_changes_requested_on_the_merged_pull_request_revokes_nothing(merged: Merged) -> None:
    first = merged.decide(None)
    merged.review("mallory-gh", "CHANGES_REQUESTED")
    assert merged.decide(remember(first), later=60).state is State.ACTIVE


G = Grant("g", PATH, f"{PATH}:1", "debug", "User", "alice", "ClusterRole", "view", "shop", timedelta(hours=1), "why",
          "0" * 40)  # fmt: skip
USERS = st.sets(st.sampled_from(["bob", "carol", "dave", "erin", "github:mallory"]), max_size=5)


@given(activating=USERS.filter(bool), now_approving=USERS)
@example(activating={"bob"}, now_approving={"bob", "github:mallory"})  # the break: a stranger's late approval
@example(activating={"bob", "carol"}, now_approving={"bob"})  # one of two activating approvers withdrew
def test_an_active_grant_is_revoked_exactly_when_an_activating_approver_no_longer_approves(
    activating: set[str], now_approving: set[str]
) -> None:
    """The general rule over approver sets, the merge and its time unchanged: any superset of the activating
    approvers keeps the grant ACTIVE; losing any activating approver revokes it, and the reason names who."""
    start = datetime.now(UTC)
    remembered = Remembered(State.ACTIVE, start, start, start + timedelta(hours=1), ", ".join(sorted(activating)),
                            merge="a" * 40)  # fmt: skip
    approval = Approval(Identity("alice"), tuple(Identity(u) for u in sorted(now_approving)), start, merge="a" * 40)
    d = decide(G, {}, approval, remembered, start)
    if activating <= now_approving:
        assert d.state is State.ACTIVE and d.approver == remembered.approver, d
    else:
        assert d.state is State.REVOKED, d
        assert all(f"{u} " in d.reason or f"{u}," in d.reason for u in activating - now_approving), d.reason
