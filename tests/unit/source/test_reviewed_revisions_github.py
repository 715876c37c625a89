"""Only reviewed revisions reach the cluster, `github` mode: the pull request GitHub recorded as merging
each step, approved on its head by people the trust file maps (not its author), every page of reviews read.
GitHub is the local fake speaking its REST wire format; the repository and its merges are real."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitopsguard.source.review import UnreviewedRevisionError
from tests.fakegithub import FakeGitHub, Pull
from tests.reviewrepo import ReviewRepo, github_repo, github_reviewer

DEPLOY = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[ReviewRepo, FakeGitHub, str]]:
    with github_repo(tmp_path) as found:
        yield found


reviewer = github_reviewer


def pull_request(repo: ReviewRepo, files: dict[str, str], *, author: str = "alice") -> tuple[str, str]:
    """(the branch head, the merge commit) of a branch merged into main, as GitHub's merge button makes it."""
    repo.change(author, "feature", files)
    head = repo.git("rev-parse", "feature")
    merge = repo.merge("carol", "feature", signed=False)  # github mode reads GitHub's record, not signatures
    repo.git("branch", "-q", "-D", "feature")
    return head, merge


def test_a_pull_request_approved_on_its_head_is_accepted(setup: tuple[ReviewRepo, FakeGitHub, str]) -> None:
    repo, fake, url = setup
    head, merge = pull_request(repo, {"apps/web.yaml": DEPLOY})
    fake.pulls = [Pull(7, "alice-gh", [head], reviews=[("carol-gh", "APPROVED", head)], merge_commit=merge)]
    review = reviewer(repo, url, fake).verify(repo.work, repo.base, merge)
    assert [a.how for a in review.approved] == ["pull request #7 approved by carol"]


def test_an_approval_on_an_older_commit_of_the_pull_request_counts_for_nothing(
    setup: tuple[ReviewRepo, FakeGitHub, str],
) -> None:
    repo, fake, url = setup
    head, merge = pull_request(repo, {"apps/web.yaml": DEPLOY})
    fake.pulls = [Pull(7, "alice-gh", ["a" * 40, head], reviews=[("carol-gh", "APPROVED", "a" * 40)],
                       merge_commit=merge)]  # fmt: skip
    with pytest.raises(UnreviewedRevisionError, match=r"apps/web\.yaml needs approval by any approver"):
        reviewer(repo, url, fake).verify(repo.work, repo.base, merge)


def test_every_page_of_reviews_is_read_and_each_reviewer_latest_decides(
    setup: tuple[ReviewRepo, FakeGitHub, str],
) -> None:
    repo, fake, url = setup
    head, merge = pull_request(repo, {"apps/web.yaml": DEPLOY})
    noise = [(f"user{n}", "COMMENTED", head) for n in range(150)]
    fake.pulls = [Pull(7, "alice-gh", [head], reviews=[*noise, ("carol-gh", "APPROVED", head)], merge_commit=merge)]
    assert reviewer(repo, url, fake).verify(repo.work, repo.base, merge).approved[0].paths == 1
    fake.pulls[0].reviews = [("carol-gh", "APPROVED", head), *noise, ("carol-gh", "CHANGES_REQUESTED", head)]
    with pytest.raises(UnreviewedRevisionError):
        reviewer(repo, url, fake).verify(repo.work, repo.base, merge)


def test_a_pull_request_merged_into_another_branch_reviews_nothing_here(
    setup: tuple[ReviewRepo, FakeGitHub, str],
) -> None:
    repo, fake, url = setup
    head, merge = pull_request(repo, {"apps/web.yaml": DEPLOY})
    fake.pulls = [Pull(7, "alice-gh", [head], base="release", reviews=[("carol-gh", "APPROVED", head)],
                       merge_commit=merge)]  # fmt: skip
    with pytest.raises(UnreviewedRevisionError, match="pushed straight"):
        reviewer(repo, url, fake).verify(repo.work, repo.base, merge)


def test_the_author_approving_their_own_pull_request_is_refused(setup: tuple[ReviewRepo, FakeGitHub, str]) -> None:
    repo, fake, url = setup
    head, merge = pull_request(repo, {"apps/web.yaml": DEPLOY}, author="carol")
    fake.pulls = [Pull(7, "carol-gh", [head], reviews=[("carol-gh", "APPROVED", head)], merge_commit=merge)]
    with pytest.raises(UnreviewedRevisionError, match="by none of its authors"):
        reviewer(repo, url, fake).verify(repo.work, repo.base, merge)


def test_a_policy_change_needs_a_security_reviewer_approval_on_github_too(
    setup: tuple[ReviewRepo, FakeGitHub, str],
) -> None:
    repo, fake, url = setup
    head, merge = pull_request(repo, {"policies/pss.yaml": "enforcement: audit\n"})
    fake.pulls = [Pull(7, "alice-gh", [head], reviews=[("bob-gh", "APPROVED", head)], merge_commit=merge)]
    with pytest.raises(UnreviewedRevisionError, match="group security-reviewers"):
        reviewer(repo, url, fake).verify(repo.work, repo.base, merge)


def test_a_squash_merge_counts_only_for_what_the_reviewed_head_holds(
    setup: tuple[ReviewRepo, FakeGitHub, str],
) -> None:
    repo, fake, url = setup
    squashed = repo.push("carol", {"apps/web.yaml": DEPLOY}, signed=False)  # GitHub's squash: one parent
    head = "b" * 40  # the pull request's head lives only on GitHub
    fake.pulls = [Pull(7, "alice-gh", [head], reviews=[("carol-gh", "APPROVED", head)], merge_commit=squashed)]
    fake.contents[(head, "apps/web.yaml")] = repo.blob_of("apps/web.yaml")
    assert reviewer(repo, url, fake).verify(repo.work, repo.base, squashed).approved[0].paths == 1
    fake.contents[(head, "apps/web.yaml")] = "c" * 40
    with pytest.raises(UnreviewedRevisionError, match="the reviewed head of #7 does not"):
        reviewer(repo, url, fake).verify(repo.work, repo.base, squashed)
