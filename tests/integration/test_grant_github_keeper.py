"""The keeper in github mode as `run` starts it (repository_sync with GitHub settings and the trust file): a
clone of its own, the administrators of the trust file approving policies through pull requests, and an
unreviewed push widening a policy lengthening nothing. The fake GitHub, a real repository, the real API
server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from gitopsguard.commands.grants import GitHubSettings, repository_sync
from gitopsguard.grants.model import State
from gitopsguard.grants.signed import load_trust
from gitopsguard.source import GitSource, SourceSpec
from tests.fakegithub import TOKEN, FakeGitHub, Pull
from tests.integration.grantsetup import Clock, keeper_for, settles, signed
from tests.signedrepo import SignedRepo, grant

pytestmark = pytest.mark.integration
__all__ = ["signed"]  # the fixture
POLICY, ALICE = "access/policies/debug.yaml", "access/grants/alice.yaml"


@pytest.fixture
def forge() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    with fake.serving() as url:
        yield fake, url


def with_logins(repo: SignedRepo) -> Path:
    """The trust file with each person's GitHub login (carol stays the administrator)."""
    trust = yaml.safe_load(repo.trust.read_text())
    for signer in trust["signers"]:
        signer["github"] = f"{signer['user']}-gh"
    path = repo.root / "trust-github.yaml"
    path.write_text(yaml.safe_dump(trust))
    return path


def test_the_keeper_in_github_mode_takes_policies_only_as_an_administrator_approved_them(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, forge: tuple[FakeGitHub, str],
    tmp_path: Path,
) -> None:  # fmt: skip
    repo, clock = signed
    fake, url = forge
    first = repo.git("rev-parse", "HEAD")  # the policy, as pull request #1 approved by carol
    fake.pulls = [Pull(1, "bob-gh", [first], reviews=[("carol-gh", "APPROVED", first)], merge_commit=first)]
    repo.write(POLICY, (repo.work / POLICY).read_text().replace("maxDuration: 2h", "maxDuration: 30d"))
    repo.commit("alice", "widen, unreviewed", signed=False)
    repo.request("alice", "ask", ALICE, grant("alice-debug", namespace, "30d"), signed=False)
    head = repo.git("rev-parse", "ask")
    merge = repo.merge("bob", "ask", signed=False)
    merged_at = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    fake.pulls.append(Pull(2, "alice-gh", [head], merged_at, reviews=[("bob-gh", "APPROVED", head)],
                           merge_commit=merge))  # fmt: skip

    keeper = keeper_for(admin_api, namespace, clock)
    source = GitSource(SourceSpec(str(repo.work), "main"), tmp_path / "grants")
    github = GitHubSettings(url, fake.slug, TOKEN)
    read = repository_sync(keeper, source, load_trust(with_logins(repo)), tmp_path / "state", github)
    read()
    (entry,) = keeper.entries.values()
    assert entry.memory.state is State.ACTIVE, entry.memory
    assert entry.memory.expires and entry.memory.start
    assert entry.memory.expires - entry.memory.start == timedelta(hours=2)  # carol approved 2 hours, not 30 days
    assert settles(admin_api, "alice", "list", "pods", namespace)
