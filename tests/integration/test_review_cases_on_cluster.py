"""Issue 20's cases, each through `gitopsguard reconcile` against the real API server: a refused head leaves
the cluster at the last applied commit and names the first unreviewed commit; an accepted one is applied."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration.conftest import LiveCluster
from tests.integration.test_reviewed_revisions import Cli, configmap
from tests.reviewrepo import ReviewRepo

pytestmark = pytest.mark.integration
EXCEPTION = "apiVersion: gitopsguard.io/v1alpha1\nkind: PolicyException\nmetadata: {name: mine}\n"
Case = Callable[[ReviewRepo], str]  # makes the case's history; returns the commit a refusal must name ("" if applied)


def pushed_straight(repo: ReviewRepo) -> str:
    return repo.push("alice", configmap("2"))


def signed_merge(repo: ReviewRepo) -> str:
    repo.change("alice", "web", configmap("2"))
    repo.merge("carol", "web")
    return ""


def policy_by_no_security_reviewer(repo: ReviewRepo) -> str:
    repo.change("alice", "weaken", {**configmap("2"), "policies/pss.yaml": "# audit\n"})
    return repo.merge("bob", "weaken")


def merged_by_its_author(repo: ReviewRepo) -> str:
    repo.change("carol", "mine", configmap("2"))
    return repo.merge("carol", "mine")


def evil_merge(repo: ReviewRepo) -> str:
    repo.change("alice", "web", configmap("2"))
    repo.git("merge", "-q", "--no-ff", "--no-commit", "web", person="carol")
    repo.write("policies/exceptions/mine.yaml", EXCEPTION)
    repo.git("add", "-A", person="carol")
    repo.git("commit", "-q", "-S", "-m", "Merge web", person="carol")
    return repo.head()


def fast_forward(repo: ReviewRepo) -> str:
    repo.change("alice", "web", configmap("2"))
    repo.git("merge", "-q", "--ff-only", "web", person="carol")
    return repo.head()


def buried(repo: ReviewRepo) -> str:
    repo.change("alice", "one", {"apps/one.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n"})
    repo.merge("carol", "one")
    hidden = repo.push("alice", configmap("2"))
    repo.change("alice", "two", {"apps/two.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\n"})
    repo.merge("carol", "two")
    return hidden


def bot_on_its_path(repo: ReviewRepo) -> str:
    repo.push("image-bot", {"clusters/dev/image-tags.yaml": "web: v2\n"})
    return ""


def bot_elsewhere(repo: ReviewRepo) -> str:
    return repo.push("image-bot", configmap("2"))


@pytest.mark.parametrize("case", [pushed_straight, signed_merge, policy_by_no_security_reviewer, merged_by_its_author,
                                  evil_merge, fast_forward, buried, bot_on_its_path, bot_elsewhere],
                         ids=lambda case: case.__name__)  # fmt: skip
def test_each_case_holds_or_applies_on_the_real_api_server(
    case: Case, tmp_path: Path, namespace: str, dev_cluster: LiveCluster, admin_api: client.ApiClient
) -> None:
    cli = Cli(ReviewRepo(tmp_path / "repo"), namespace, dev_cluster, tmp_path)
    cli.repo.change("alice", "seed", configmap("1"))
    applied = cli.repo.merge("carol", "seed")
    assert cli.reconcile().exit_code == 0 and cli.value(admin_api) == "1"
    named = case(cli.repo)
    result = cli.reconcile()
    if named:
        assert result.exit_code == 2, result.output
        assert f"commit {named[:12]}" in result.output
        assert cli.value(admin_api) == "1"  # the cluster keeps its last good state
        assert "revision-unreviewed" in {event for event, _ in cli.events()}
    else:
        assert result.exit_code == 0, result.output
        assert cli.repo.head() != applied
    assert "Traceback" not in result.output
