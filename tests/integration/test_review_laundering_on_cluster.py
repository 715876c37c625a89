"""Red team (issue 20), end to end against the real API server: alice, whose key is only in `**: any`,
pushes a value straight to main (refused, the cluster holds), then signs the merge of bob's harmless edit of
the same file. Before the fix the next pass applied her unreviewed value, recording "merge signed by alice";
now it is refused and the cluster keeps the reviewed value."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from tests.integration.conftest import LiveCluster
from tests.integration.test_reviewed_revisions import Cli
from tests.reviewrepo import ReviewRepo

pytestmark = pytest.mark.integration
PAD = "".join(f"# note {n}\n" for n in range(10))


def web(value: str, tail: str = "") -> dict[str, str]:
    body = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: web}}\ndata: {{value: '{value}'}}\n{PAD}{tail}"
    return {"apps/web.yaml": body}


def test_a_refused_push_reaches_the_cluster_once_its_pusher_merges_a_colleague_edit_of_the_file(
    tmp_path: Path, namespace: str, dev_cluster: LiveCluster, admin_api: client.ApiClient
) -> None:
    cli = Cli(ReviewRepo(tmp_path / "repo"), namespace, dev_cluster, tmp_path)
    cli.repo.change("bob", "seed", web("1"))
    cli.repo.merge("carol", "seed")
    assert cli.reconcile().exit_code == 0
    assert cli.value(admin_api) == "1"
    cli.repo.change("bob", "comment", web("1", "# bob: a harmless comment\n"))  # forked before the push
    cli.repo.push("alice", web("evil"))
    held = cli.reconcile()
    assert held.exit_code == 2 and cli.value(admin_api) == "1"  # refused and held, as designed
    cli.repo.merge("alice", "comment")  # alice signs the merge of bob's comment
    after = cli.reconcile()
    print(after.output)
    print(cli.events()[-1])
    assert cli.value(admin_api) == "1", "alice's unreviewed value reached the cluster"
