"""Red team (issue 20): with no applied commit to verify from (a first sync without --trust-from, or a pass
with --allow-rewind over a rewritten branch), "the head itself is an approved merge" is the whole check, and
its FIRST PARENT is trusted: everything pushed straight before it reaches the cluster unreviewed. alice only
needs any signed merge at the head (she can sign one herself, of bob's harmless branch).

Documented behaviour (docs/reviewed-revisions.md "The first sync", threat-model "History is read forward"),
reported as a design weakness: the rewind case needs only the operator to follow the error's own advice
("if this is intended, run once with --allow-rewind").

Run: .venv/bin/python -m pytest -q tests/unit/source/redteam/test_first_sync_and_rewind.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.errors import SourceError
from gitopsguard.source import GitSource
from gitopsguard.source.git import SourceSpec
from gitopsguard.source.review import UnreviewedRevisionError
from tests.reviewrepo import ReviewRepo

WEAK = (
    "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nmetadata: {name: pss}\n"
    "spec: {builtin: {name: pss-restricted}, enforcement: audit}\n"
)


def rewritten(repo: ReviewRepo, onto: str) -> str:
    """alice rewrites main from ``onto``: a straight push weakening the policy, then her own signed merge of a
    harmless branch bob wrote."""
    repo.git("checkout", "-q", "-B", "main", onto, person="alice")
    repo.push("alice", {"policies/pss.yaml": WEAK})
    repo.change("bob", "docs", {"docs/readme.md": "hello\n"})
    return repo.merge("alice", "docs")


def test_a_first_sync_from_trust_from_refuses_unreviewed_content_below_an_approved_head(tmp_path: Path) -> None:
    """Without --trust-from the head merge's first parent is trusted, as issue 20 allows (a known gap in the
    threat model); naming the commit to trust from closes it."""
    repo = ReviewRepo(tmp_path)
    head = rewritten(repo, repo.base)
    with pytest.raises(UnreviewedRevisionError):
        repo.reviewer(trust_from=repo.base).verify(repo.work, None, head)


def test_allow_rewind_onto_a_rewritten_branch_refuses_its_unreviewed_commits(tmp_path: Path) -> None:
    repo = ReviewRepo(tmp_path)
    repo.change("bob", "web", {"apps/web.yaml": "x: 1\n"})
    applied = repo.merge("carol", "web")
    source = GitSource(SourceSpec(str(repo.work), "main"), tmp_path / "work", reviewer=repo.reviewer())
    rewritten(repo, repo.base)  # force-push: the applied commit is gone from the branch
    with pytest.raises(SourceError, match="--allow-rewind"):
        source.fetch(last_applied=applied)  # refused, and the message tells the operator how to go on
    with pytest.raises(UnreviewedRevisionError):  # verified from where the rewrite left the applied history
        source.fetch(last_applied=applied, allow_rewind=True)


def test_allow_rewind_is_verified_from_trust_from_and_refuses_the_rewritten_push(tmp_path: Path) -> None:
    """A rewound branch is verified from the commit the operator names, never from a commit the applied one
    merely contains (red team round 2: a reverted push, a branch's work in progress)."""
    repo = ReviewRepo(tmp_path)
    repo.change("bob", "web", {"apps/web.yaml": "x: 1\n"})
    applied = repo.merge("carol", "web")
    source = GitSource(SourceSpec(str(repo.work), "main"), tmp_path / "work",
                       reviewer=repo.reviewer(trust_from=repo.base))  # fmt: skip
    assert source.fetch(last_applied=None).commit == applied
    rewritten(repo, repo.base)
    with pytest.raises(UnreviewedRevisionError) as refused:
        source.fetch(last_applied=applied, allow_rewind=True)
    assert "policies/pss.yaml" in "\n".join(refused.value.problems)


def test_allow_rewind_back_onto_a_reverted_push_is_refused_without_trust_from(tmp_path: Path) -> None:
    repo = ReviewRepo(tmp_path)
    pushed = repo.push("alice", {"policies/pss.yaml": WEAK})
    repo.git("revert", "--no-edit", "-S", "HEAD", person="alice")
    repo.change("bob", "web", {"apps/web.yaml": "x: 1\n"})
    applied = repo.merge("carol", "web")
    source = GitSource(SourceSpec(str(repo.work), "main"), tmp_path / "work", reviewer=repo.reviewer())
    assert source.fetch(last_applied=repo.base).commit == applied  # the push was reverted: nothing reaches the head
    repo.git("reset", "-q", "--hard", pushed, person="alice")  # force-push main back onto the pushed commit
    with pytest.raises(UnreviewedRevisionError, match="--trust-from"):
        source.fetch(last_applied=applied, allow_rewind=True)
