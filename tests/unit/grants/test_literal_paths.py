"""Grant paths are literal to git and to the forge: a file whose name holds glob characters is its own
request, never a pattern that borrows the approval of the files it happens to match."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gitopsguard.grants.decide import decide
from gitopsguard.grants.github import GitHubApprovals
from gitopsguard.grants.load import load_escalation_policies, load_grants
from gitopsguard.grants.model import Decision, Identity, State
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from tests.fakegithub import TOKEN, FakeGitHub, Pull
from tests.signedrepo import SignedRepo, grant

APPROVED = "access/grants/alice-debug.yaml"
LOGINS = {"alice-gh": Identity("alice", frozenset({"team-shop"})), "bob-gh": Identity("bob")}
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)

# Each of these names matches access/grants/alice-debug.yaml when read as a git pathspec pattern.
GLOB_NAMES = ["alice-[d]ebug.yaml", "alice-?ebug.yaml", "alice-*.yaml", "*.yaml", "alice-[!x]ebug.yaml",
              "alice-debu[g].yaml"]  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> SignedRepo:
    return SignedRepo(tmp_path, "shop")


def smuggle_then_approve(repo: SignedRepo, name: str, *, signed: bool) -> str:
    """An unsigned grant under a glob-like name pushed straight, then alice's real request approved by bob."""
    repo.write(f"access/grants/{name}", grant("mallory-copy", "shop", user="alice"))
    repo.commit("alice", "smuggled", signed=False)
    repo.request("alice", "ask", APPROVED, grant("alice-debug", "shop"), signed=signed)
    request = repo.git("rev-parse", "ask")
    repo.merge("bob", "ask", signed=signed)
    return request


def signed_decisions(repo: SignedRepo) -> dict[str, Decision]:
    verifier = SignedMergeVerifier(repo.work, load_trust(repo.trust), repo.root / "state")
    grants, broken = load_grants(repo.work, repo.blob_of)
    assert not broken
    policies = load_escalation_policies(repo.work)
    return {g.path: decide(g, policies, verifier.approval(g.path), None, datetime.now(UTC)) for g in grants}


def test_a_grant_named_like_a_glob_is_refused_and_does_not_borrow_the_approval_of_the_file_it_matches(
    repo: SignedRepo,
) -> None:
    smuggle_then_approve(repo, "alice-[d]ebug.yaml", signed=True)
    found = signed_decisions(repo)
    assert found[APPROVED].state is State.ACTIVE, found[APPROVED].reason
    smuggled = found["access/grants/alice-[d]ebug.yaml"]
    assert smuggled.state is State.DENIED and "pushed straight" in smuggled.reason, smuggled


@pytest.mark.parametrize("name", GLOB_NAMES)
def test_every_glob_character_in_a_grant_name_is_read_literally(repo: SignedRepo, name: str) -> None:
    smuggle_then_approve(repo, name, signed=True)
    smuggled = signed_decisions(repo)[f"access/grants/{name}"]
    assert smuggled.state is State.DENIED and "pushed straight" in smuggled.reason, smuggled


@pytest.fixture
def forge() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    with fake.serving() as url:
        yield fake, url


@pytest.mark.parametrize("name", GLOB_NAMES)
def test_a_grant_named_like_a_glob_is_refused_in_github_mode_too(
    repo: SignedRepo, forge: tuple[FakeGitHub, str], name: str
) -> None:
    fake, url = forge
    request = smuggle_then_approve(repo, name, signed=False)
    fake.pulls = [Pull(7, "alice-gh", [request], reviews=[("bob-gh", "APPROVED", request)],
                       merge_commit=repo.git("rev-parse", "HEAD"))]  # fmt: skip
    source = GitHubApprovals(repo.work, api_url=url, owner_repo="org/cluster-config", branch="main", token=TOKEN,
                             logins=LOGINS)  # fmt: skip
    grants, _ = load_grants(repo.work, repo.blob_of)
    policies = load_escalation_policies(repo.work)
    found = {g.path: decide(g, policies, source.approval(g.path), None, NOW) for g in grants}
    assert found[APPROVED].state is State.ACTIVE, found[APPROVED].reason
    smuggled = found[f"access/grants/{name}"]
    assert smuggled.state is State.DENIED and "no merged pull request" in smuggled.reason, smuggled
