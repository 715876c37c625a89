"""Red team (issue 20), `github` review mode, with the GitHub fake (tests/fakegithub.py) and a real repository.

Each test asserts the secure outcome; those that were breaks failed before the fix.
Run: .venv/bin/python -m pytest -q tests/unit/source/redteam/test_github_mode.py
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitopsguard.source.review import UnreviewedRevisionError
from tests.fakegithub import FakeGitHub, Pull
from tests.reviewrepo import ReviewRepo, github_repo, github_reviewer

LINES = "".join(f"# line {n}\n" for n in range(12))


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[ReviewRepo, FakeGitHub, str]]:
    with github_repo(tmp_path) as found:
        yield found


reviewer = github_reviewer


def test_a_line_pushed_to_main_rides_the_merge_of_an_approved_pull_request(
    setup: tuple[ReviewRepo, FakeGitHub, str],
) -> None:
    """evidence/github.py head_holds says it stops "lines pushed to the base meanwhile, merged in without
    anyone's review"; but review.py only asks it for paths in own_changes (the remerge diff), which a clean
    merge never has."""
    repo, fake, url = setup
    repo.change("alice", "seed", {"policies/pss.yaml": "enforcement: enforce\n" + LINES})
    fake.pulls = [Pull(1, "alice-gh", [repo.git("rev-parse", "seed")],
                       reviews=[("carol-gh", "APPROVED", repo.git("rev-parse", "seed"))])]  # fmt: skip
    base = repo.merge("carol", "seed", signed=False)
    fake.pulls[0].merge_commit = base
    repo.change("alice", "typo", {"policies/pss.yaml": "enforcement: enforce\n" + LINES + "# typo fixed\n"})
    head_of_pr = repo.git("rev-parse", "typo")
    repo.push("alice", {"policies/pss.yaml": "enforcement: audit\n" + LINES})  # straight to main
    merge = repo.merge("carol", "typo", signed=False)  # GitHub's merge button
    fake.pulls.append(Pull(2, "alice-gh", [head_of_pr], reviews=[("carol-gh", "APPROVED", head_of_pr)],
                           merge_commit=merge))  # fmt: skip
    assert "enforcement: audit" in repo.git("show", f"{merge}:policies/pss.yaml")
    with pytest.raises(UnreviewedRevisionError):
        reviewer(repo, url, fake).verify(repo.work, base, merge)


def test_an_approver_who_pushed_onto_someone_else_pull_request_approves_their_own_commit(
    setup: tuple[ReviewRepo, FakeGitHub, str],
) -> None:
    """bob opens a pull request; alice (write access, in `**: any`) pushes her own commit onto its branch and
    approves the new head. GitHub's author is bob, so alice's approval counts; nobody but alice saw her commit."""
    repo, fake, url = setup
    repo.git("checkout", "-q", "-b", "bobs-pr", "main", person="bob")
    repo.write("apps/readme.md", "bob's docs\n")
    bobs = repo.commit("bob", "docs")
    repo.write("apps/web.yaml", "image: evil.example/miner:latest\n")
    alices = repo.commit("alice", "tweak")  # alice's commit on bob's pull request
    repo.git("checkout", "-q", "main", person="bob")
    merge = repo.merge("alice", "bobs-pr", signed=False)
    fake.pulls = [
        Pull(
            3,
            "bob-gh",
            [bobs, alices],
            reviews=[("alice-gh", "APPROVED", alices)],
            merge_commit=merge,
            written={alices: ("alice-gh", "alice-gh", True)},
        )
    ]  # GitHub verified alice signed it
    with pytest.raises(UnreviewedRevisionError, match="by none of its authors"):
        reviewer(repo, url, fake).verify(repo.work, repo.base, merge)


def test_holds_an_approval_on_an_older_head_then_a_push_onto_the_pull_request_is_refused(
    setup: tuple[ReviewRepo, FakeGitHub, str],
) -> None:
    repo, fake, url = setup
    repo.change("alice", "feature", {"apps/web.yaml": "replicas: 1\n"})
    reviewed = repo.git("rev-parse", "feature")
    repo.git("checkout", "-q", "feature", person="alice")
    late = repo.push("alice", {"apps/web.yaml": "replicas: 1\nimage: evil\n"})
    repo.git("checkout", "-q", "main", person="alice")
    merge = repo.merge("carol", "feature", signed=False)
    fake.pulls = [Pull(4, "alice-gh", [reviewed, late], reviews=[("carol-gh", "APPROVED", reviewed)],
                       merge_commit=merge)]  # fmt: skip
    with pytest.raises(UnreviewedRevisionError):
        reviewer(repo, url, fake).verify(repo.work, repo.base, merge)


def test_holds_a_merge_commit_that_is_not_the_one_github_recorded_is_refused(
    setup: tuple[ReviewRepo, FakeGitHub, str],
) -> None:
    """alice merges the approved head herself (an evil merge pushed straight), reusing PR #5's approval."""
    repo, fake, url = setup
    repo.change("alice", "feature", {"apps/web.yaml": "replicas: 1\n"})
    head = repo.git("rev-parse", "feature")
    real = repo.merge("carol", "feature", signed=False)
    repo.git("reset", "-q", "--hard", "HEAD^")
    repo.git("merge", "-q", "--no-ff", "--no-commit", "feature", person="alice")
    repo.write("policies/exceptions/mine.yaml", "kind: PolicyException\n")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "Merge pull request #5", person="alice")
    fake.pulls = [Pull(5, "alice-gh", [head], reviews=[("carol-gh", "APPROVED", head)], merge_commit=real)]
    with pytest.raises(UnreviewedRevisionError):
        reviewer(repo, url, fake).verify(repo.work, repo.base, repo.head())


def test_a_commit_github_did_not_verify_makes_the_writers_unknown_and_is_refused(
    setup: tuple[ReviewRepo, FakeGitHub, str],
) -> None:
    """alice pushes onto bob's pull request with bob's name in the author line: an unsigned commit's author is
    anyone's text, so a pull request holding one is refused."""
    repo, fake, url = setup
    repo.git("checkout", "-q", "-b", "bobs-pr", "main", person="bob")
    repo.write("apps/web.yaml", "image: evil.example/miner:latest\n")
    forged = repo.commit("bob", "tweak", signed=False)
    repo.git("checkout", "-q", "main", person="bob")
    merge = repo.merge("alice", "bobs-pr", signed=False)
    fake.pulls = [Pull(3, "bob-gh", [forged], reviews=[("alice-gh", "APPROVED", forged)], merge_commit=merge,
                       written={forged: ("bob-gh", "bob-gh", False)})]  # fmt: skip
    with pytest.raises(UnreviewedRevisionError, match="not signed with a key GitHub verified"):
        reviewer(repo, url, fake).verify(repo.work, repo.base, merge)
