"""Red team round 2 (issue 20), `github` mode: a squash-merged pull request holding a file whose name is not
UTF-8 makes the review raise UnicodeEncodeError instead of a refusal naming the commit.

Paths are git's bytes decoded with ``surrogateescape`` (source/steps.py). For a squash merge, every path is
checked against the reviewed head; that head is usually not in the controller's clone (only the tracked
branch is fetched), so ``GitHubApi._blob_on_github`` asks GitHub, and ``urllib.parse.quote`` refuses the lone
surrogate (gitopsguard/evidence/github.py, ``quote(path, safe='/')``). Not a GitOpsGuardError: the worker turns
it into "fetching the head failed", with no commit, no `revision-unreviewed` audit record, no Event, no
Slack notice, and the whole range is verified again on every pass (nothing is cached).

Run (from /work/wt/redteam20b):
    PYTHONPATH=$PWD /work/main/.venv/bin/python -m pytest -q attacks/test_github_squash_odd_path.py
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitopsguard.evidence.github import GitHubApi
from gitopsguard.source.review import ReviewMode, UnreviewedRevisionError
from tests.fakegithub import TOKEN, FakeGitHub, Pull
from tests.reviewrepo import ReviewRepo, github_repo

ODD = "apps/caf\udce9.yaml"  # the byte 0xe9 alone: a Latin-1 file name, not UTF-8


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[ReviewRepo, FakeGitHub, str]]:
    with github_repo(tmp_path) as found:
        yield found


def test_a_squash_merge_of_a_non_utf8_file_name_is_refused_naming_the_commit(
    setup: tuple[ReviewRepo, FakeGitHub, str],
) -> None:
    repo, fake, url = setup
    squash = repo.push("alice", {ODD: "replicas: 1\n", "apps/web.yaml": "replicas: 2\n"})  # GitHub's squash commit
    head = "ab" * 20  # the pull request's head: on GitHub, not in the controller's clone
    fake.pulls = [Pull(6, "alice-gh", [head], reviews=[("carol-gh", "APPROVED", head)], merge_commit=squash)]
    reviewer = repo.reviewer(ReviewMode.GITHUB, forge=GitHubApi(url, fake.slug, TOKEN))
    with pytest.raises(UnreviewedRevisionError) as refused:  # today: UnicodeEncodeError from urllib's quote
        reviewer.verify(repo.work, repo.base, squash)
    assert refused.value.commit == squash
