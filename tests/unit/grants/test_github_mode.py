"""github approval mode against a local fake of GitHub's REST API: the happy path and every refusal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gitopsguard.errors import SourceError
from gitopsguard.grants.decide import decide
from gitopsguard.grants.github import GitHubApprovals
from gitopsguard.grants.load import load_escalation_policies, load_grants
from gitopsguard.grants.model import Decision, Identity, State
from tests.fakegithub import TOKEN, FakeGitHub, Pull
from tests.signedrepo import SignedRepo, grant

PATH = "access/grants/alice.yaml"
LOGINS = {"alice-gh": Identity("alice", frozenset({"team-shop"})), "bob-gh": Identity("bob"),
          "carol-gh": Identity("carol")}  # fmt: skip
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
Setup = tuple[SignedRepo, FakeGitHub, str]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[SignedRepo, FakeGitHub, str]]:
    repo = SignedRepo(tmp_path, "shop")
    fake = FakeGitHub()
    with fake.serving() as url:
        yield repo, fake, url


def request(repo: SignedRepo) -> str:
    """The request commit on a branch, merged (the forge's merge; signatures play no part in this mode)."""
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop"), signed=False)
    commit = repo.git("rev-parse", "ask")
    repo.merge("bob", "ask", signed=False)
    return commit


def merged(repo: SignedRepo) -> str:
    """The merge commit the forge made (the branch head right after the merge)."""
    return repo.git("rev-parse", "HEAD")


def decided(repo: SignedRepo, url: str, token: str = TOKEN) -> Decision:
    source = GitHubApprovals(repo.work, api_url=url, owner_repo="org/cluster-config", branch="main", token=token,
                             logins=LOGINS)  # fmt: skip
    (g,) = load_grants(repo.work, repo.blob_of)[0]
    return decide(g, load_escalation_policies(repo.work), source.approval(g.path), None, NOW)


def test_a_merged_pull_request_by_the_subject_approved_on_its_head_by_an_approver_is_active(setup: Setup) -> None:
    repo, fake, url = setup
    commit = request(repo)
    fake.pulls = [Pull(7, "alice-gh", [commit], reviews=[("bob-gh", "APPROVED", commit)], merge_commit=merged(repo))]
    d = decided(repo, url)
    assert d.state is State.ACTIVE, d.reason
    assert d.approver == "bob" and d.start == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("author", "reviews", "why"), [
    ("alice-gh", [("alice-gh", "APPROVED")], "alice approved their own grant"),
    ("alice-gh", [("carol-gh", "APPROVED")], "approved by carol, who may not approve under policy debug"),
    ("bob-gh", [("carol-gh", "APPROVED")], "requested by bob, not by the subject alice"),
    ("stranger", [("bob-gh", "APPROVED")], "opened by 'stranger'"),
    ("alice-gh", [("bob-gh", "APPROVED"), ("bob-gh", "CHANGES_REQUESTED")], "merged with 0 of 1 approvals"),
])  # fmt: skip
def test_refusals_name_the_reason(setup: Setup, author: str, reviews: list[tuple[str, str]], why: str) -> None:
    repo, fake, url = setup
    commit = request(repo)
    fake.pulls = [Pull(7, author, [commit], reviews=[(login, state, commit) for login, state in reviews],
                       merge_commit=merged(repo))]  # fmt: skip
    d = decided(repo, url)
    assert d.state is State.DENIED and why in d.reason, d.reason


def test_an_approval_on_an_earlier_commit_does_not_count_for_an_edit_made_after_it(setup: Setup) -> None:
    repo, fake, url = setup
    commit = request(repo)
    fake.pulls = [Pull(7, "alice-gh", ["a" * 40, commit], reviews=[("bob-gh", "APPROVED", "a" * 40)],
                       merge_commit=merged(repo))]  # fmt: skip
    d = decided(repo, url)
    assert d.state is State.DENIED and "an edit after approval needs a new approval" in d.reason


def test_a_grant_pushed_straight_to_the_branch_is_refused(setup: Setup) -> None:
    repo, _, url = setup
    repo.write(PATH, grant("alice-debug", "shop"))
    repo.commit("alice", "straight", signed=False)
    d = decided(repo, url)
    assert d.state is State.DENIED and "no merged pull request" in d.reason


def test_an_unmerged_pull_request_leaves_the_grant_pending_or_refused(setup: Setup) -> None:
    repo, fake, url = setup
    commit = request(repo)
    fake.pulls = [Pull(7, "alice-gh", [commit], merged_at=None, reviews=[("bob-gh", "APPROVED", commit)],
                       merge_commit=merged(repo))]  # fmt: skip
    assert decided(repo, url).state is State.DENIED  # it is on the branch, but not through a merged PR


def test_a_bad_token_is_an_error_that_never_shows_the_token(setup: Setup) -> None:
    repo, _, url = setup
    request(repo)
    with pytest.raises(SourceError) as error:
        decided(repo, url, token="ghp_wrong_secret")
    assert "HTTP 401" in str(error.value) and "ghp_" not in str(error.value)
