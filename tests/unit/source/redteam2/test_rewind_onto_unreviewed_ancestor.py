"""Red team round 2 (issue 20): ``--allow-rewind`` onto a commit the applied one contains is taken as reviewed.

``GitSource._fork_point`` (gitopsguard/source/git.py) returns the new head itself when the applied commit
contains it ("rewound to a commit the applied one contains"), and ``Reviewer._verify`` accepts ``base == new``
with no evidence at all. But a commit being in the applied commit's history says nothing about its tree being
reviewed: the applied history holds straight pushes that were reverted before the head (accepted because
they no longer reach it) and every work-in-progress commit of every merged branch. alice force-pushes main
back to one of those; the refusal tells the operator "if this is intended, run once with --allow-rewind";
the operator does, and alice's unreviewed policy is applied.

Run (from /work/wt/redteam20b):
    PYTHONPATH=$PWD /work/main/.venv/bin/python -m pytest -q attacks/test_rewind_onto_unreviewed_ancestor.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.errors import SourceError
from gitopsguard.source import GitSource
from gitopsguard.source.git import SourceSpec
from gitopsguard.source.review import UnreviewedRevisionError
from tests.reviewrepo import ReviewRepo

POLICY = "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nmetadata: {name: pss}\nspec: {builtin: {name: pss-restricted}, enforcement: %s}\n"  # noqa: E501


@pytest.fixture
def repo(tmp_path: Path) -> ReviewRepo:
    repo = ReviewRepo(tmp_path)
    repo.change("alice", "seed", {"policies/pss.yaml": POLICY % "enforce"})
    repo.base = repo.merge("carol", "seed")
    return repo


def _rewound(repo: ReviewRepo, tmp_path: Path, applied: str, onto: str) -> GitSource:
    source = GitSource(SourceSpec(str(repo.work), "main"), tmp_path / "work", reviewer=repo.reviewer())
    assert source.fetch(last_applied=repo.base).commit == applied  # the controller applies it, reviewed
    repo.git("checkout", "-q", "-B", "main", onto, person="alice")  # force-push: main rolled back to `onto`
    with pytest.raises(SourceError, match="--allow-rewind"):
        source.fetch(last_applied=applied)
    return source


def test_a_rewind_onto_a_reverted_straight_push_is_refused(repo: ReviewRepo, tmp_path: Path) -> None:
    pushed = repo.push("alice", {"policies/pss.yaml": POLICY % "audit"})  # refused by the controller ...
    applied = repo.push("alice", {"policies/pss.yaml": POLICY % "enforce"})  # ... reverted: the head is accepted
    source = _rewound(repo, tmp_path, applied, pushed)
    with pytest.raises(UnreviewedRevisionError):  # today: applied, "Review(base=pushed, head=pushed)"
        source.fetch(last_applied=applied, allow_rewind=True)


def test_a_rewind_onto_a_work_in_progress_commit_of_a_reviewed_branch_is_refused(
    repo: ReviewRepo, tmp_path: Path
) -> None:
    repo.git("checkout", "-q", "-b", "wip", "main", person="alice")
    repo.write("policies/pss.yaml", POLICY % "audit")
    weak = repo.commit("alice", "Try audit first")  # carol asks for it to be undone before she merges
    repo.write("policies/pss.yaml", POLICY % "enforce")
    repo.write("apps/web.yaml", "replicas: 2\n")
    repo.commit("alice", "Back to enforce, scale web")
    repo.git("checkout", "-q", "main", person="alice")
    applied = repo.merge("carol", "wip")
    source = _rewound(repo, tmp_path, applied, weak)
    with pytest.raises(UnreviewedRevisionError):
        source.fetch(last_applied=applied, allow_rewind=True)
