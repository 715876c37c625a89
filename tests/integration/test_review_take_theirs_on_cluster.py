"""Red team round 2 (issue 20), end to end against the real API server: the take-theirs merge of
tests/unit/source/redteam2/test_take_theirs_merge.py put alice's pushed-and-reverted value into the cluster
before every merge was compared with git's own merge of its parents; now it is refused.

alice (`**: any` only) pushes a value straight to main: refused, the cluster holds. bob had merged main into
his branch meanwhile (a routine update). alice reverts on main: accepted (nothing of the push reaches the
head). alice signs the merge of bob's branch taking the branch's version of the file: it was applied, "merge
signed by alice", although nobody but alice ever approved her value.

"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from tests.integration.conftest import LiveCluster
from tests.integration.test_reviewed_revisions import Cli
from tests.reviewrepo import ReviewRepo

pytestmark = pytest.mark.integration
PAD = "".join(f"# note {n}\n" for n in range(10))


def web(value: str) -> dict[str, str]:
    body = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: web}}\ndata: {{value: '{value}'}}\n{PAD}"
    return {"apps/web.yaml": body}


def test_a_pushed_value_reaches_the_cluster_through_a_merge_taking_a_colleague_branch_version(
    tmp_path: Path,
    namespace: str,
    dev_cluster: LiveCluster,
    admin_api: client.ApiClient,
) -> None:
    cli = Cli(ReviewRepo(tmp_path / "repo"), namespace, dev_cluster, tmp_path)
    repo = cli.repo
    repo.change("bob", "seed", {**web("1"), "apps/other.yaml": "# other\n"})
    repo.merge("carol", "seed")
    assert cli.reconcile().exit_code == 0
    assert cli.value(admin_api) == "1"
    repo.change("bob", "feature", {"apps/other.yaml": "# other, edited by bob\n"})
    repo.push("alice", web("evil"))
    held = cli.reconcile()
    assert held.exit_code == 2 and cli.value(admin_api) == "1"  # refused and held, as designed
    repo.git("checkout", "-q", "feature", person="bob")
    repo.git("merge", "-q", "--no-ff", "-S", "-m", "Merge main into feature", "main", person="bob")
    repo.git("checkout", "-q", "main", person="alice")
    repo.push("alice", web("1"))  # the revert
    assert cli.reconcile().exit_code == 0 and cli.value(admin_api) == "1"
    repo.git("merge", "-q", "--no-ff", "--no-commit", "feature", person="alice")
    repo.git("checkout", "feature", "--", "apps/web.yaml", person="alice")
    repo.commit("alice", "Merge feature")
    after = cli.reconcile()
    print(after.output, cli.events()[-1])
    assert cli.value(admin_api) == "1", "alice's unreviewed value reached the cluster"
