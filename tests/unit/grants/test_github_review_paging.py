"""github mode reads every page of a pull request's reviews (GitHub pages lists, 30 by default and 100 at
most, with a Link header to the next page), and each reviewer's latest review decides: a later
CHANGES_REQUESTED or DISMISSED cancels an approval, COMMENTED changes nothing."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.errors import SourceError
from gitopsguard.grants.decide import decide
from gitopsguard.grants.github import GitHubApprovals
from gitopsguard.grants.load import load_escalation_policies, load_grants
from gitopsguard.grants.model import Identity, State
from tests.fakegithub import TOKEN, FakeGitHub, Pull
from tests.signedrepo import SignedRepo, grant

PATH = "access/grants/alice.yaml"
LOGINS = {"alice-gh": Identity("alice", frozenset({"team-shop"})), "bob-gh": Identity("bob"),
          "carol-gh": Identity("carol")}  # fmt: skip
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
OLD = "a" * 40


class Forge:
    """A signed repository with one merged request, and the fake GitHub serving its pull request."""

    def __init__(self, root: Path, fake: FakeGitHub, url: str) -> None:
        self.repo, self.fake, self.url = SignedRepo(root, "shop"), fake, url
        self.repo.request("alice", "ask", PATH, grant("alice-debug", "shop"), signed=False)
        self.head = self.repo.git("rev-parse", "ask")
        self.merge = self.repo.merge("bob", "ask", signed=False)

    def approvals(self) -> GitHubApprovals:
        return GitHubApprovals(self.repo.work, api_url=self.url, owner_repo="org/cluster-config", branch="main",
                               token=TOKEN, logins=LOGINS)  # fmt: skip

    def reviewed(self, reviews: list[tuple[str, str, str]]) -> None:
        self.fake.pulls = [Pull(7, "alice-gh", [OLD, self.head], reviews=reviews, merge_commit=self.merge)]


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forge]:
    fake = FakeGitHub()
    with fake.serving() as url:
        yield Forge(tmp_path_factory.mktemp("forge"), fake, url)


def test_changes_requested_after_a_hundred_comments_cancels_the_approval(forge: Forge) -> None:
    """The break: bob approves, alice comments 100 times, bob requests changes. The request for changes is
    on page 2 of 100; reading page 1 alone, the approval counted."""
    head = forge.head
    forge.reviewed([("bob-gh", "APPROVED", head), *[("alice-gh", "COMMENTED", head)] * 100,
                    ("bob-gh", "CHANGES_REQUESTED", head)])  # fmt: skip
    approval = forge.approvals().approval(PATH)
    assert approval.approvers == ()
    (g,) = load_grants(forge.repo.work, forge.repo.blob_of)[0]
    d = decide(g, load_escalation_policies(forge.repo.work), approval, None, NOW)
    assert d.state is State.DENIED and "merged with 0 of 1 approvals" in d.reason, d.reason


def test_an_approval_after_many_pages_of_comments_counts(forge: Forge) -> None:
    forge.reviewed([*[("carol-gh", "COMMENTED", forge.head)] * 250, ("bob-gh", "APPROVED", forge.head)])
    assert [a.user for a in forge.approvals().approval(PATH).approvers] == ["bob"]
    review_reads = [r for r in forge.fake.requests if r.startswith("/repos/org/cluster-config/pulls/7/reviews")]
    assert len(review_reads) >= 3  # pages of 100: 1-100, 101-200, 201-251


def expected(reviews: list[tuple[str, str, str]], head: str) -> set[str]:
    """The rule, written plainly: each reviewer's latest APPROVED/CHANGES_REQUESTED/DISMISSED review decides,
    and it counts only when it approves the head commit."""
    latest: dict[str, tuple[str, str]] = {}
    for login, state, commit in reviews:
        if state != "COMMENTED":
            latest[login] = (state, commit)
    return {LOGINS[login].user for login, (state, commit) in latest.items() if (state, commit) == ("APPROVED", head)}


_review = st.tuples(st.sampled_from(sorted(LOGINS)), st.sampled_from(["APPROVED", "CHANGES_REQUESTED", "DISMISSED",
                                                                      "COMMENTED"]), st.booleans())  # fmt: skip


@given(st.lists(_review, max_size=260))
@example([("bob-gh", "APPROVED", True), *[("alice-gh", "COMMENTED", True)] * 100,
          ("bob-gh", "CHANGES_REQUESTED", True)])  # fmt: skip
@example([("bob-gh", "APPROVED", True), *[("carol-gh", "COMMENTED", True)] * 99, ("bob-gh", "DISMISSED", True)])
@example([("bob-gh", "APPROVED", True), ("bob-gh", "COMMENTED", True)])
@example([("bob-gh", "APPROVED", True), ("bob-gh", "APPROVED", False)])
def test_each_reviewers_latest_review_on_any_page_decides(forge: Forge, reviews: list[tuple[str, str, bool]]) -> None:
    concrete = [(login, state, forge.head if on_head else OLD) for login, state, on_head in reviews]
    forge.reviewed(concrete)
    found = {a.user for a in forge.approvals().approval(PATH).approvers}
    assert found == expected(concrete, forge.head)


def test_the_fake_pages_like_github(forge: Forge) -> None:
    forge.reviewed([("carol-gh", "COMMENTED", forge.head)] * 65)
    reviews = f"{forge.url}/repos/org/cluster-config/pulls/7/reviews"

    def get(url: str) -> tuple[int, str]:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})  # noqa: S310
        with urllib.request.urlopen(request) as response:  # noqa: S310 (the local fake)
            return len(json.loads(response.read())), response.headers.get("Link") or ""

    assert get(reviews) == (30, f'<{reviews}?per_page=30&page=2>; rel="next", <{reviews}?per_page=30&page=3>; '
                                'rel="last"')  # fmt: skip
    count, link = get(f"{reviews}?per_page=30&page=3")
    assert count == 5 and 'rel="next"' not in link and f'<{reviews}?per_page=30&page=2>; rel="prev"' in link
    assert get(f"{reviews}?per_page=500")[0] == 65  # capped at 100
    assert get(f"{reviews}?per_page=100") == (65, "")


def test_a_next_link_to_another_host_is_refused_and_the_token_is_not_sent_there(
    forge: Forge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Following Link blindly would hand the bearer token to whatever host the header names."""
    original = forge.fake.answer

    def elsewhere(path: str, authorization: str | None, base: str = "") -> tuple[int, object, dict[str, str]]:
        status, body, _ = original(path, authorization, base)
        return status, body, {"Link": '<https://evil.example/steal?page=2>; rel="next"'}

    monkeypatch.setattr(forge.fake, "answer", elsewhere)
    forge.reviewed([("bob-gh", "APPROVED", forge.head)])
    with pytest.raises(SourceError, match=r"evil\.example") as error:
        forge.approvals().approval(PATH)
    assert TOKEN not in str(error.value)
