"""Red team round 2 (issue 20), `github` mode: a verified commit by a login the trust file does not map counts
as written by nobody.

``GitHubApi.writers`` (gitopsguard/evidence/github.py) requires every commit of the pull request to carry a
signature GitHub verified, then keeps only the authors and committers the trust file maps; an unmapped
login is dropped. A second GitHub account costs nothing: alice (in `**: any`) adds a signing key to her
sock puppet `alice-alt`, pushes a commit committed and signed as alice-alt onto bob's pull request
(GitHub shows it "Verified"), and approves the new head herself. Her approval counts: she "wrote" nothing.
In signed-merge mode the same commit (signed by a key the trust file does not know) makes the path
unreviewable; github mode should be as strict: a verified commit whose author or committer is unmapped
makes the writers unknown.

Run (from /work/wt/redteam20b):
    PYTHONPATH=$PWD /work/main/.venv/bin/python -m pytest -q attacks/test_github_unmapped_writer.py
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitopsguard.evidence.github import GitHubApi
from gitopsguard.source.review import ReviewMode, UnreviewedRevisionError
from tests.fakegithub import TOKEN, FakeGitHub, Pull
from tests.reviewrepo import ReviewRepo, github_repo


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[ReviewRepo, FakeGitHub, str]]:
    with github_repo(tmp_path) as found:
        yield found


def _bobs_pull_with_a_commit_by(repo: ReviewRepo, fake: FakeGitHub, login: str) -> str:
    repo.git("checkout", "-q", "-b", "bobs-pr", "main", person="bob")
    repo.write("apps/readme.md", "bob's docs\n")
    bobs = repo.commit("bob", "docs")
    repo.write("apps/web.yaml", "image: evil.example/miner:latest\n")
    puppet = repo.commit("alice", "tweak", signed=False)  # GitHub's verdict is the fake's `written` below
    repo.git("checkout", "-q", "main", person="bob")
    merge = repo.merge("alice", "bobs-pr", signed=False)  # GitHub's merge button
    fake.pulls = [Pull(3, "bob-gh", [bobs, puppet], reviews=[("alice-gh", "APPROVED", puppet)], merge_commit=merge,
                       written={puppet: (login, login, True)})]  # fmt: skip
    return merge


def test_an_approver_self_approves_through_a_sock_puppet_account_commit(
    setup: tuple[ReviewRepo, FakeGitHub, str],
) -> None:
    repo, fake, url = setup
    merge = _bobs_pull_with_a_commit_by(repo, fake, "alice-alt")
    with pytest.raises(UnreviewedRevisionError):  # today: accepted, "pull request #3 approved by alice"
        repo.reviewer(ReviewMode.GITHUB, forge=GitHubApi(url, fake.slug, TOKEN)).verify(repo.work, repo.base, merge)


def test_holds_the_same_commit_verified_for_alice_herself_is_refused(setup: tuple[ReviewRepo, FakeGitHub, str]) -> None:
    repo, fake, url = setup
    merge = _bobs_pull_with_a_commit_by(repo, fake, "alice-gh")
    with pytest.raises(UnreviewedRevisionError, match="by none of its authors"):
        repo.reviewer(ReviewMode.GITHUB, forge=GitHubApi(url, fake.slug, TOKEN)).verify(repo.work, repo.base, merge)
