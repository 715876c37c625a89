"""evidence/github.py, the GitHub client revisions and grants share, against the local fake of GitHub's wire
format: a merge is a pull request's only when GitHub names it that pull request's merge into this branch,
approvals count on the head commit only and by each reviewer's latest review on any page, and the author's
own approval is reported (for the caller to refuse), not hidden."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitopsguard.evidence.github import GitHubApi, head_sha, login
from gitopsguard.evidence.history import Git, History
from gitopsguard.evidence.identity import Identity
from tests.fakegithub import TOKEN, FakeGitHub, Pull
from tests.signedrepo import SignedRepo

PATH = "apps/shop/deploy.yaml"
LOGINS = {"alice-gh": Identity("alice", frozenset({"team-shop"})), "bob-gh": Identity("bob")}


class Forge:
    def __init__(self, root: Path, fake: FakeGitHub, url: str) -> None:
        self.repo, self.fake = SignedRepo(root, "shop"), fake
        self.repo.request("alice", "change", PATH, "kind: ConfigMap\n", signed=False)
        self.head = self.repo.git("rev-parse", "change")
        self.merge = self.repo.merge("bob", "change", signed=False)
        self.history = History(Git(self.repo.work))
        self.api = GitHubApi(url + "/", "org/cluster-config", TOKEN)

    def pull(self, reviews: list[tuple[str, str, str]], **fields: str) -> Pull:
        pull = Pull(7, "alice-gh", ["a" * 40, self.head], reviews=reviews, merge_commit=self.merge)
        for name, value in fields.items():
            setattr(pull, name, value)
        self.fake.pulls = [pull]
        return pull


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forge]:
    fake = FakeGitHub()
    with fake.serving() as url:
        yield Forge(tmp_path_factory.mktemp("forge"), fake, url)


def test_the_pull_request_github_names_as_the_merge_is_found_with_its_author_and_head(forge: Forge) -> None:
    forge.pull([])
    found = forge.api.merged_pull(forge.history, forge.merge, "main")
    assert found is not None and found["number"] == 7
    assert login(found) == "alice-gh" and head_sha(found) == forge.head
    assert forge.api.author(found, LOGINS) == LOGINS["alice-gh"]


@pytest.mark.parametrize("fields", [{"base": "release"}, {"merged_at": None}, {"merge_commit": "b" * 40}])
def test_a_merge_that_is_not_a_merged_pull_requests_merge_into_this_branch_has_no_pull_request(
    forge: Forge, fields: dict[str, str]
) -> None:
    forge.pull([], **fields)
    assert forge.api.merged_pull(forge.history, forge.merge, "main") is None


def test_an_approval_on_an_older_commit_approves_nothing(forge: Forge) -> None:
    forge.pull([("bob-gh", "APPROVED", "a" * 40)])
    assert forge.api.approvers(7, forge.head, LOGINS) == ()


def test_the_latest_review_decides_even_on_a_later_page(forge: Forge) -> None:
    comments = [("alice-gh", "COMMENTED", forge.head)] * 150
    forge.pull([("bob-gh", "APPROVED", forge.head), *comments, ("bob-gh", "DISMISSED", forge.head)])
    assert forge.api.approvers(7, forge.head, LOGINS) == ()
    forge.pull([("bob-gh", "CHANGES_REQUESTED", forge.head), *comments, ("bob-gh", "APPROVED", forge.head)])
    assert forge.api.approvers(7, forge.head, LOGINS) == (LOGINS["bob-gh"],)


def test_the_authors_own_approval_is_reported_and_a_stranger_is_named_by_login(forge: Forge) -> None:
    forge.pull([("alice-gh", "APPROVED", forge.head), ("eve", "APPROVED", forge.head)])
    assert forge.api.approvers(7, forge.head, LOGINS) == (LOGINS["alice-gh"], Identity("github:eve"))


def test_the_head_holds_the_blob_the_merge_brought(forge: Forge) -> None:
    pull = forge.pull([])
    blob = forge.repo.blob_of(PATH)
    found = forge.api.merged_pull(forge.history, forge.merge, "main")
    assert found is not None and pull.commits[-1] == forge.head
    assert forge.api.head_holds(forge.history, found, PATH, blob)
    assert not forge.api.head_holds(forge.history, found, PATH, "c" * 40)
