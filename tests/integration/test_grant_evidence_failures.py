"""Approval evidence that cannot be had touches one grant at most: a forge that is away leaves every grant
as it was (reported, decided again next round), and evidence that makes no sense denies that grant alone.
github mode against the fake GitHub, with the keeper on the real API server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.grants.github import GitHubApprovals
from gitopsguard.grants.keeper import GrantKeeper
from gitopsguard.grants.model import Identity
from tests.fakegithub import TOKEN, FakeGitHub, Pull
from tests.integration.grantsetup import Clock, keeper_for, settles, signed
from tests.signedrepo import SignedRepo, grant

pytestmark = pytest.mark.integration
__all__ = ["signed"]  # the fixture
LOGINS = {"alice-gh": Identity("alice", frozenset({"team-shop"})), "bob-gh": Identity("bob"),
          "carol-gh": Identity("carol")}  # fmt: skip


@pytest.fixture
def forge() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    with fake.serving() as url:
        yield fake, url


def ask(repo: SignedRepo, fake: FakeGitHub, name: str, namespace: str, number: int) -> str:
    """alice's request for ``name``, merged through pull request ``number`` approved by bob; its merge commit."""
    if not fake.pulls:  # the escalation policy came in as pull request #100, approved by carol (an administrator)
        first = repo.git("rev-list", "--max-parents=0", "HEAD")
        fake.pulls.append(Pull(100, "bob-gh", [first], reviews=[("carol-gh", "APPROVED", first)],
                               merge_commit=first))  # fmt: skip
    branch = f"ask-{name}"
    repo.request("alice", branch, f"access/grants/{name}.yaml", grant(name, namespace), signed=False)
    head = repo.git("rev-parse", branch)
    merge = repo.merge("bob", branch, signed=False)
    merged_at = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    reviews = [("bob-gh", "APPROVED", head)]
    fake.pulls.append(Pull(number, "alice-gh", [head], merged_at, reviews=reviews, merge_commit=merge))
    return merge


def sync(repo: SignedRepo, keeper: GrantKeeper, url: str) -> dict[str, str]:
    approvals = GitHubApprovals(repo.work, api_url=url, owner_repo="org/cluster-config", branch="main", token=TOKEN,
                                logins=LOGINS, admins=frozenset({"carol"}))  # fmt: skip
    keeper.sync(repo.work, approvals, repo.blob_of)
    return {e.name: e.memory.state.value for e in keeper.entries.values()}


def test_a_forge_that_is_away_changes_no_grant_and_is_reported(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, forge: tuple[FakeGitHub, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    repo, clock = signed
    fake, url = forge
    keeper = keeper_for(admin_api, namespace, clock)
    ask(repo, fake, "first", namespace, 1)
    assert sync(repo, keeper, url) == {"first": "ACTIVE"}
    second = ask(repo, fake, "second", namespace, 2)
    original = fake.answer

    def away(path: str, authorization: str | None, base: str = "") -> tuple[int, Any, dict[str, str]]:
        if f"/commits/{second}/pulls" in path:  # the forge fails the one question about the second grant
            return 503, {"message": "Service Unavailable"}, {}
        return original(path, authorization, base)

    monkeypatch.setattr(fake, "answer", away)
    assert sync(repo, keeper, url) == {"first": "ACTIVE"}  # the new one waits; nothing is denied or revoked
    assert any("access/grants/second.yaml" in p and "HTTP 503" in p for p in keeper.problems), keeper.problems
    assert settles(admin_api, "alice", "list", "pods", namespace)
    monkeypatch.setattr(fake, "answer", original)
    fake.outage = True  # away altogether: the policies in force cannot be known, so nothing new is decided
    assert sync(repo, keeper, url) == {"first": "ACTIVE"}
    assert any("access/policies" in p and "HTTP 503" in p for p in keeper.problems), keeper.problems
    assert settles(admin_api, "alice", "list", "pods", namespace)
    fake.outage = False
    assert sync(repo, keeper, url) == {"first": "ACTIVE", "second": "ACTIVE"}


def test_a_revocation_takes_effect_while_the_forge_is_away(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, forge: tuple[FakeGitHub, str]
) -> None:
    """The break: with GitHub away the policies in force could not be read and the round failed as a whole, so
    a grant whose file was removed kept its access until GitHub came back (or it expired)."""
    repo, clock = signed
    fake, url = forge
    keeper = keeper_for(admin_api, namespace, clock)
    ask(repo, fake, "first", namespace, 1)
    assert sync(repo, keeper, url) == {"first": "ACTIVE"}
    repo.git("rm", "-q", "access/grants/first.yaml")
    repo.commit("carol", "Revoke")
    fake.outage = True
    assert sync(repo, keeper, url) == {"first": "REVOKED"}
    assert not settles(admin_api, "alice", "list", "pods", namespace)


def test_evidence_that_makes_no_sense_denies_that_grant_alone(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, forge: tuple[FakeGitHub, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    repo, clock = signed
    fake, url = forge
    keeper = keeper_for(admin_api, namespace, clock)
    ask(repo, fake, "first", namespace, 1)
    ask(repo, fake, "second", namespace, 2)
    original = fake.answer

    def odd(path: str, authorization: str | None, base: str = "") -> tuple[int, Any, dict[str, str]]:
        if "/pulls/2/reviews" in path:
            return 200, [["not", "a", "review"], 7], {}
        return original(path, authorization, base)

    monkeypatch.setattr(fake, "answer", odd)
    states = sync(repo, keeper, url)
    assert states["first"] == "ACTIVE"
    assert states["second"] == "DENIED"
