"""Red team (issue 20): an evil merge that DELETES a file hides the deletion from the own-change check.

steps.own_changes runs `git log -1 --diff-merges=remerge --name-only`, with git's default rename detection:
a path the merge deleted, paired with a similar file the merge added, is listed only under the new name. The
added file is then deleted by a straight push (a commit whose changes do not reach the head is accepted), so
nothing is left to refuse. The merge's signer thus approves their own deletion of a policy.

Run: .venv/bin/python -m pytest -q tests/unit/source/redteam/test_evil_merge_rename.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.evidence.history import Git
from gitopsguard.source.review import UnreviewedRevisionError
from gitopsguard.source.steps import own_changes
from tests.reviewrepo import ReviewRepo

POLICY = (
    "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nmetadata: {name: pss}\nspec:\n"
    + "".join(f"  # rationale line {n}\n" for n in range(20))
    + "  builtin: {name: pss-restricted}\n  enforcement: enforce\n"
)


def evil_merge(repo: ReviewRepo, hide: bool) -> str:
    repo.change("alice", "seed", {"policies/pss.yaml": POLICY})
    repo.base = repo.merge("carol", "seed")
    repo.change("bob", "reword", {"policies/pss.yaml": POLICY.replace("line 3", "line three")})
    repo.git("merge", "-q", "--no-ff", "--no-commit", "reword", person="carol")
    repo.git("rm", "-q", "-f", "policies/pss.yaml", person="carol")  # the merge's own change: the policy is gone
    if hide:
        repo.write("policies/pss.yaml.orig", POLICY.replace("line 3", "line three"))  # looks like a rename
    repo.git("add", "-A", person="carol")
    repo.git("commit", "-q", "-S", "-m", "Merge reword", person="carol")
    merge = repo.head()
    if hide:
        repo.git("rm", "-q", "policies/pss.yaml.orig", person="carol")
        repo.commit("carol", "Drop a stray file")  # pushed straight; changes nothing at the head
    return merge


def test_holds_a_merge_that_deletes_a_policy_it_merged_an_edit_of_is_refused(tmp_path: Path) -> None:
    repo = ReviewRepo(tmp_path)
    merge = evil_merge(repo, hide=False)
    with pytest.raises(UnreviewedRevisionError, match="changed by the merge itself"):
        repo.reviewer().verify(repo.work, repo.base, merge)


def test_the_same_deletion_hidden_as_a_rename_is_refused(tmp_path: Path) -> None:
    repo = ReviewRepo(tmp_path)
    merge = evil_merge(repo, hide=True)
    assert "policies/pss.yaml" in own_changes(Git(repo.work), merge)  # rename detection once hid it
    with pytest.raises(UnreviewedRevisionError):
        repo.reviewer().verify(repo.work, repo.base, repo.head())
