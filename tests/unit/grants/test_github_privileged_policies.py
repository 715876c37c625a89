"""github mode: escalation policies are privileged. A change to one takes effect only through the merge of a
pull request approved (each reviewer's latest review, on its head commit, every page read) by an
administrator named in the trust file; until then the last approved version stays in force, and a policy
no administrator approved does not exist (issue #15, break 7 in github mode)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gitopsguard.grants.decide import decide
from gitopsguard.grants.github import GitHubApprovals
from gitopsguard.grants.load import load_grants
from gitopsguard.grants.model import Decision, EscalationPolicy, Identity, State
from tests.fakegithub import TOKEN, FakeGitHub, Pull
from tests.signedrepo import ESCALATION_POLICY, SignedRepo, grant

POLICY = "access/policies/debug.yaml"
PATH = "access/grants/alice.yaml"
NARROW = ESCALATION_POLICY.replace("NAMESPACE", "shop")
WIDE = NARROW.replace("maxDuration: 2h", "maxDuration: 30d")
LOGINS = {"alice-gh": Identity("alice", frozenset({"team-shop"})), "bob-gh": Identity("bob"),
          "carol-gh": Identity("carol"), "dave-gh": Identity("dave")}  # fmt: skip
ADMINS = frozenset({"carol", "dave"})
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


class Forge:
    """A repository whose narrow debug policy came in as pull request #1 (its one commit, approved by carol,
    an administrator, taken onto the branch as it is), and the fake GitHub serving its pull requests."""

    def __init__(self, root: Path, fake: FakeGitHub, url: str) -> None:
        self.repo, self.fake, self.url = SignedRepo(root, "shop"), fake, url
        first = self.repo.git("rev-parse", "HEAD")
        self.fake.pulls = [Pull(1, "bob-gh", [first], reviews=[("carol-gh", "APPROVED", first)],
                                merge_commit=first)]  # fmt: skip

    def pull_request(self, author: str, text: str, reviews: list[tuple[str, str]], *, path: str = POLICY) -> None:
        """``author`` changes ``path`` on a branch; it is merged through a pull request with these reviews,
        each on the branch's head."""
        number = len(self.fake.pulls) + 1
        self.repo.request("alice", f"change-{number}", path, text, signed=False)
        head = self.repo.git("rev-parse", f"change-{number}")
        merge = self.repo.merge("bob", f"change-{number}", signed=False)
        self.fake.pulls.append(Pull(number, author, [head], reviews=[(who, state, head) for who, state in reviews],
                                    merge_commit=merge))  # fmt: skip

    def approvals(self) -> GitHubApprovals:
        return GitHubApprovals(self.repo.work, api_url=self.url, owner_repo="org/cluster-config", branch="main",
                               token=TOKEN, logins=LOGINS, admins=ADMINS)  # fmt: skip

    def in_force(self) -> dict[str, EscalationPolicy]:
        return self.approvals().policies(self.repo.work)

    def granted(self) -> Decision:
        """alice asks for 30 days through pull request approved by bob; the decision under the policies in force."""
        self.pull_request("alice-gh", grant("alice-debug", "shop", "30d"), [("bob-gh", "APPROVED")], path=PATH)
        source = self.approvals()
        (g,), _ = load_grants(self.repo.work, self.repo.blob_of)
        return decide(g, source.policies(self.repo.work), source.approval(g.path), None, NOW)


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Forge]:
    fake = FakeGitHub()
    with fake.serving() as url:
        yield Forge(tmp_path, fake, url)


def test_an_unreviewed_push_widening_a_policy_does_not_lengthen_a_grant(forge: Forge) -> None:
    """The break: github mode read the policies from the checkout, so alice's straight push of maxDuration 30d
    gave her grant 30 days instead of the 2 hours carol approved."""
    forge.repo.write(POLICY, WIDE)
    forge.repo.commit("alice", "widen the debug policy", signed=False)
    d = forge.granted()
    assert d.state is State.ACTIVE and d.start and d.expires, d
    assert d.expires - d.start == timedelta(hours=2), d


def test_a_policy_change_approved_by_an_administrator_takes_effect(forge: Forge) -> None:
    forge.pull_request("alice-gh", WIDE, [("carol-gh", "APPROVED")])
    assert forge.in_force()["debug"].max_duration == timedelta(days=30)


def straight_push(forge: Forge) -> None:
    forge.repo.write(POLICY, WIDE)
    forge.repo.commit("alice", "widen", signed=False)


def approved_by_a_non_administrator(forge: Forge) -> None:
    forge.pull_request("alice-gh", WIDE, [("bob-gh", "APPROVED")])


def admin_approval_withdrawn_later(forge: Forge) -> None:
    forge.pull_request("alice-gh", WIDE, [("carol-gh", "APPROVED"), *[("bob-gh", "COMMENTED")] * 120,
                                          ("carol-gh", "CHANGES_REQUESTED")])  # fmt: skip


def admin_approval_on_an_earlier_commit(forge: Forge) -> None:
    forge.pull_request("alice-gh", WIDE, [])
    forge.fake.pulls[-1].reviews = [("carol-gh", "APPROVED", "a" * 40)]


def admin_approving_their_own_pull_request(forge: Forge) -> None:
    forge.pull_request("carol-gh", WIDE, [("carol-gh", "APPROVED")])


def unreviewed_merge_pushed_by_hand(forge: Forge) -> None:
    forge.repo.request("alice", "sneak", POLICY, WIDE, signed=False)
    forge.repo.merge("alice", "sneak", signed=False)


def reverted_to_an_older_approved_version(forge: Forge) -> None:
    forge.pull_request("alice-gh", WIDE, [("carol-gh", "APPROVED")])
    forge.pull_request("alice-gh", NARROW, [("carol-gh", "APPROVED")])
    straight_push(forge)


def approved_by_someone_the_trust_file_does_not_know(forge: Forge) -> None:
    forge.pull_request("alice-gh", WIDE, [("carol", "APPROVED")])  # a GitHub login "carol", not carol-gh


@pytest.mark.parametrize("change", [straight_push, approved_by_a_non_administrator, admin_approval_withdrawn_later,
                                    admin_approval_on_an_earlier_commit, admin_approving_their_own_pull_request,
                                    unreviewed_merge_pushed_by_hand, reverted_to_an_older_approved_version,
                                    approved_by_someone_the_trust_file_does_not_know])  # fmt: skip
def test_a_policy_change_no_administrator_approved_leaves_the_last_approved_version_in_force(
    forge: Forge, change: Callable[[Forge], None]
) -> None:
    change(forge)
    assert forge.in_force()["debug"].max_duration == timedelta(hours=2)


def test_a_policy_file_no_administrator_approved_does_not_exist(forge: Forge) -> None:
    forge.pull_request("alice-gh", WIDE.replace("{name: debug}", "{name: wide}"), [("bob-gh", "APPROVED")],
                       path="access/policies/wide.yaml")  # fmt: skip
    assert list(forge.in_force()) == ["debug"]


def test_an_administrators_approval_after_many_pages_of_comments_counts(forge: Forge) -> None:
    forge.pull_request("alice-gh", WIDE, [*[("bob-gh", "COMMENTED")] * 250, ("dave-gh", "APPROVED")])
    assert forge.in_force()["debug"].max_duration == timedelta(days=30)


def test_lines_pushed_to_the_base_do_not_ride_in_on_an_administrators_merge(forge: Forge) -> None:
    """carol approves a pull request that changes who may ask; meanwhile alice pushes maxDuration 30d straight
    to the branch, on another line. GitHub's merge holds both: what carol reviewed (the head) is not what was
    merged, so the merge does not approve the file, and the pushed 30 days never take effect."""
    repo = forge.repo
    repo.request("alice", "requesters", POLICY, NARROW.replace("groups: [team-shop]", "groups: [team-shop, sre]"),
                 signed=False)  # fmt: skip
    head = repo.git("rev-parse", "requesters")
    straight_push(forge)
    merge = repo.merge("bob", "requesters", signed=False)
    assert "maxDuration: 30d" in repo.git("show", f"{merge}:{POLICY}")  # the merge holds the pushed line
    forge.fake.pulls.append(Pull(2, "alice-gh", [head], reviews=[("carol-gh", "APPROVED", head)], merge_commit=merge))
    assert forge.in_force()["debug"].max_duration == timedelta(hours=2)
