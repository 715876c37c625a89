"""github mode: the evidence for a grant is the pull request whose merge brought the file's exact blob onto
the branch. The first-parent commit that brought the blob (``History.run_start``) must be the approved pull
request's ``merge_commit_sha``; an old request brought back by an unreviewed merge, a revert or a cherry-pick
cannot borrow the pull request that once carried it (issue #15, break 4 in github mode)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gitopsguard.grants.decide import decide
from gitopsguard.grants.github import GitHubApprovals
from gitopsguard.grants.load import load_escalation_policies, load_grants
from gitopsguard.grants.model import Decision, Identity, Remembered, State
from tests.fakegithub import TOKEN, FakeGitHub, Pull
from tests.signedrepo import SignedRepo, grant

PATH = "access/grants/alice.yaml"
LOGINS = {"alice-gh": Identity("alice", frozenset({"team-shop"})), "bob-gh": Identity("bob")}
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
Setup = tuple[SignedRepo, FakeGitHub, str]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    fake = FakeGitHub()
    with fake.serving() as url:
        yield SignedRepo(tmp_path, "shop"), fake, url


def decided(repo: SignedRepo, url: str, remembered: Remembered | None = None) -> Decision:
    source = GitHubApprovals(repo.work, api_url=url, owner_repo="org/cluster-config", branch="main", token=TOKEN,
                             logins=LOGINS)  # fmt: skip
    (g,), _ = load_grants(repo.work, repo.blob_of)
    return decide(g, load_escalation_policies(repo.work), source.approval(g.path), remembered, NOW)


def approved_then_withdrawn(repo: SignedRepo, fake: FakeGitHub) -> str:
    """Pull request #7 adds alice's grant, then withdraws it, and is merged approved (so nothing was granted).
    Returns the old request commit, which the branch now holds in the pull request's history."""
    repo.git("checkout", "-q", "-b", "ask", "main", person="alice")
    repo.write(PATH, grant("alice-debug", "shop"))
    old = repo.commit("alice", "Request", signed=False)
    repo.git("rm", "-q", PATH, person="alice")
    head = repo.commit("alice", "Withdraw", signed=False)
    repo.git("checkout", "-q", "main", person="alice")
    merge = repo.merge("bob", "ask", signed=False)
    fake.pulls = [Pull(7, "alice-gh", [old, head], reviews=[("bob-gh", "APPROVED", head)], merge_commit=merge)]
    return old


def unreviewed_merge_of_the_old_commit(repo: SignedRepo, old: str) -> None:
    repo.git("checkout", "-q", old, "--", PATH, person="alice")
    tree = repo.git("write-tree", person="alice")
    repo.git("reset", "-q", "--hard", repo.git("commit-tree", tree, "-p", "main", "-p", old, "-m", "m", person="alice"))


def cherry_pick_of_the_old_commit(repo: SignedRepo, old: str) -> None:
    repo.git("cherry-pick", old, person="alice")


def revert_of_the_withdrawal(repo: SignedRepo, old: str) -> None:
    repo.git("revert", "--no-edit", "HEAD^2", person="alice")  # HEAD^2: the withdrawal, merged with #7


def test_an_old_request_brought_back_by_an_unreviewed_merge_is_refused_in_github_mode(setup: Setup) -> None:
    """The break: evidence followed `git log -1 -- path` into the unreviewed merge's second parent, found the
    old request commit, and borrowed pull request #7's approval: the grant was ACTIVE."""
    repo, fake, url = setup
    unreviewed_merge_of_the_old_commit(repo, approved_then_withdrawn(repo, fake))
    d = decided(repo, url)
    assert d.state is State.DENIED and "no merged pull request" in d.reason, d


@pytest.mark.parametrize("bring_back", [unreviewed_merge_of_the_old_commit, cherry_pick_of_the_old_commit,
                                        revert_of_the_withdrawal])  # fmt: skip
def test_a_grant_counts_only_when_the_approved_pull_requests_merge_commit_brought_its_blob(
    setup: Setup, bring_back: Callable[[SignedRepo, str], None]
) -> None:
    repo, fake, url = setup
    bring_back(repo, approved_then_withdrawn(repo, fake))
    d = decided(repo, url)
    assert d.state is State.DENIED, d


def test_a_pull_request_whose_merge_commit_is_another_commit_lends_no_approval(setup: Setup) -> None:
    """GitHub names the merge it made; a merge pushed by hand that merges the same head is not it."""
    repo, fake, url = setup
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop"), signed=False)
    head = repo.git("rev-parse", "ask")
    repo.merge("alice", "ask", signed=False)  # alice merges it herself, by push
    fake.pulls = [Pull(7, "alice-gh", [head], reviews=[("bob-gh", "APPROVED", head)], merge_commit="c" * 40)]
    d = decided(repo, url)
    assert d.state is State.DENIED and "no merged pull request" in d.reason, d


def test_the_approved_pull_requests_own_merge_activates_the_grant(setup: Setup) -> None:
    repo, fake, url = setup
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop"), signed=False)
    head = repo.git("rev-parse", "ask")
    merge = repo.merge("bob", "ask", signed=False)
    fake.pulls = [Pull(7, "alice-gh", [head], reviews=[("bob-gh", "APPROVED", head)], merge_commit=merge)]
    assert decided(repo, url).state is State.ACTIVE


@pytest.mark.parametrize("state", [State.REVOKED, State.EXPIRED])
def test_a_revoked_or_expired_blob_never_reactivates_even_through_a_new_approved_merge(
    setup: Setup, state: State
) -> None:
    repo, fake, url = setup
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop"), signed=False)
    head = repo.git("rev-parse", "ask")
    merge = repo.merge("bob", "ask", signed=False)
    fake.pulls = [Pull(7, "alice-gh", [head], reviews=[("bob-gh", "APPROVED", head)], merge_commit=merge)]
    ended = datetime(2026, 11, 24, 10, 10, tzinfo=UTC)
    d = decided(repo, url, Remembered(state, ended, ended, ended, "bob"))
    assert d.state is state, d


def test_lines_pushed_to_the_base_do_not_ride_in_on_an_approved_merge(setup: Setup) -> None:
    """alice's earlier request is on the branch (denied: pushed straight). Her pull request renames it and bob
    approves that; meanwhile she pushes, on another line, a longer duration. GitHub's merge holds both, so
    the merged file is not the file bob reviewed: it is refused."""
    repo, fake, url = setup
    repo.write(PATH, grant("alice-debug", "shop", "10m"))
    repo.commit("alice", "first try", signed=False)
    repo.request("alice", "ask", PATH, grant("alice-debug-inc7", "shop", "10m"), signed=False)
    head = repo.git("rev-parse", "ask")
    repo.write(PATH, grant("alice-debug", "shop", "2h"))
    repo.commit("alice", "longer", signed=False)
    merge = repo.merge("bob", "ask", signed=False)
    assert "duration: 2h" in repo.git("show", f"{merge}:{PATH}")  # the merge holds the pushed line
    fake.pulls = [Pull(7, "alice-gh", [head], reviews=[("bob-gh", "APPROVED", head)], merge_commit=merge)]
    d = decided(repo, url)
    assert d.state is State.DENIED and "not the file its reviewed head holds" in d.reason, d


def squash_merged(repo: SignedRepo, fake: FakeGitHub) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop"), signed=False)
    head = repo.git("rev-parse", "ask")
    repo.git("merge", "-q", "--squash", "ask", person="bob")
    squash = repo.commit("bob", "Request access (#7)", signed=False)
    fake.pulls = [Pull(7, "alice-gh", [head], reviews=[("bob-gh", "APPROVED", head)], merge_commit=squash)]


def test_a_squash_merge_counts_when_the_reviewed_head_is_in_the_clone(setup: Setup) -> None:
    repo, fake, url = setup
    squash_merged(repo, fake)
    assert decided(repo, url).state is State.ACTIVE


def branch_gone(repo: SignedRepo) -> None:
    """As in the keeper's clone of the tracked branch alone: the pull request's head commit is not there."""
    repo.git("branch", "-q", "-D", "ask")
    repo.git("reflog", "expire", "--expire=now", "--all")
    repo.git("gc", "-q", "--prune=now")


def test_a_squash_merge_whose_head_is_only_on_github_counts_when_github_shows_the_same_file(setup: Setup) -> None:
    """The head's file is asked of GitHub ("Get repository content", its blob sha) when the clone lacks it."""
    repo, fake, url = setup
    squash_merged(repo, fake)
    head = fake.pulls[0].commits[-1]
    fake.contents[(head, PATH)] = repo.git("rev-parse", f"ask:{PATH}")
    branch_gone(repo)
    assert decided(repo, url).state is State.ACTIVE


@pytest.mark.parametrize("shown", [None, "0" * 40, "symlink"])
def test_a_squash_merge_whose_head_github_shows_otherwise_is_refused(setup: Setup, shown: str | None) -> None:
    """Fail closed: the file absent from the head (404), another blob, or not a regular file."""
    repo, fake, url = setup
    squash_merged(repo, fake)
    head = fake.pulls[0].commits[-1]
    if shown == "symlink":
        fake.contents[(head, PATH)] = repo.git("rev-parse", f"ask:{PATH}")
        fake.symlinks.add((head, PATH))
    elif shown is not None:
        fake.contents[(head, PATH)] = shown
    branch_gone(repo)
    d = decided(repo, url)
    assert d.state is State.DENIED and "not the file its reviewed head holds" in d.reason, d
