"""Red team round 2 (issue 20): an evil merge that takes the merged branch's whole version of a file.

``Reviewer._signed_merge`` (gitopsguard/source/review.py) asks git for the merge's own changes (remerge) only
for paths where the merge differs from the merged branch's tip (``beyond``). A merge that takes the branch's
version wholesale is assumed to bring only what the branch's commits wrote, and those writers are the
commits the merge *brought*: commits an earlier step already reached are left out (steps._reach). So a line
alice pushed to main and reverted there (both steps accepted: the push no longer reaches the head) rides a
colleague's routine "merge main into my branch" commit, and alice, with an `any` key, signs the merge that
discards her own revert. The only writer the reviewer sees is bob, who never wrote the line. The same hole
without any push: taking a stale branch's version undoes a reviewed change (its lines come from commits before
the range, which no writer check sees).

Run (from /work/wt/redteam20b):
    PYTHONPATH=$PWD /work/main/.venv/bin/python -m pytest -q attacks/test_take_theirs_merge.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.source.review import UnreviewedRevisionError
from tests.reviewrepo import ReviewRepo

WEB = "replicas: 1\n" + "".join(f"# padding {n}\n" for n in range(12))
EVIL = "image: evil.example/miner:latest\n" + WEB


@pytest.fixture
def repo(tmp_path: Path) -> ReviewRepo:
    repo = ReviewRepo(tmp_path)
    repo.change("alice", "seed", {"apps/web.yaml": WEB, "apps/other.yaml": "a: 1\n"})
    repo.base = repo.merge("carol", "seed")
    return repo


def _bob_updates_his_branch_while_the_push_is_on_main(repo: ReviewRepo) -> None:
    repo.change("bob", "feature", {"apps/other.yaml": "a: 2\n"})
    repo.push("alice", {"apps/web.yaml": EVIL})  # straight to main: refused by the controller
    repo.git("checkout", "-q", "feature", person="bob")
    repo.git("merge", "-q", "--no-ff", "-S", "-m", "Merge main into feature", "main", person="bob")  # routine update
    repo.git("checkout", "-q", "main", person="alice")
    repo.push("alice", {"apps/web.yaml": WEB})  # alice "reverts" at once: main holds the applied content again


def test_a_pushed_line_rides_a_colleague_update_merge_when_the_merge_takes_the_branch_version(repo: ReviewRepo) -> None:
    _bob_updates_his_branch_while_the_push_is_on_main(repo)
    repo.git("merge", "-q", "--no-ff", "--no-commit", "feature", person="alice")
    assert "evil" not in repo.git("show", ":apps/web.yaml")  # git's own merge keeps alice's revert ...
    repo.git("checkout", "feature", "--", "apps/web.yaml", person="alice")  # ... alice takes the branch's version
    head = repo.commit("alice", "Merge feature")
    assert "evil.example" in repo.git("show", f"{head}:apps/web.yaml")
    assert "evil" not in repo.git("diff", "main...feature")  # what a reviewer of the branch is shown
    with pytest.raises(UnreviewedRevisionError):  # today: accepted, "merge signed by alice" (writer: bob)
        repo.reviewer().verify(repo.work, repo.base, head)


def test_holds_the_same_merge_done_by_git_alone_keeps_the_revert(repo: ReviewRepo) -> None:
    _bob_updates_his_branch_while_the_push_is_on_main(repo)
    head = repo.merge("alice", "feature")
    assert "evil" not in repo.git("show", f"{head}:apps/web.yaml")
    repo.reviewer().verify(repo.work, repo.base, head)  # accepted, and nothing of the push reaches the head


def test_a_merge_taking_a_stale_branch_version_undoes_a_reviewed_change_unreviewed(tmp_path: Path) -> None:
    """No push at all: bob's branch forked before a reviewed hardening of the file and edits one comment of it;
    alice merges it taking the branch's version of the file, which drops the hardening. Git's own merge keeps
    it; the only writer of the branch's version the reviewer sees is bob's one-comment edit."""
    repo = ReviewRepo(tmp_path)
    repo.change("alice", "seed", {"apps/web.yaml": WEB})
    repo.merge("carol", "seed")
    repo.change("bob", "comment", {"apps/web.yaml": WEB.replace("# padding 11", "# bob: a comment")})  # stale
    repo.change("dave", "harden", {"apps/web.yaml": "runAsNonRoot: true\n" + WEB})
    applied = repo.merge("carol", "harden")
    repo.git("merge", "-q", "--no-ff", "--no-commit", "comment", person="alice")
    assert "runAsNonRoot" in repo.git("show", ":apps/web.yaml")  # git's own merge keeps the hardening ...
    repo.git("checkout", "comment", "--", "apps/web.yaml", person="alice")  # ... alice takes the branch's version
    head = repo.commit("alice", "Merge comment")
    assert "runAsNonRoot" not in repo.git("show", f"{head}:apps/web.yaml")
    with pytest.raises(UnreviewedRevisionError):  # today: accepted, "merge signed by alice"
        repo.reviewer().verify(repo.work, applied, head)
