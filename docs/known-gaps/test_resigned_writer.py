"""Red team round 2 (issue 20): the signer of a branch commit is taken as its author, so whoever re-signs it
(a rebase, a cherry-pick, an amend with commit.gpgsign on) becomes its author, and the real author may
approve it.

``Reviewer._signed_merge`` (gitopsguard/source/review.py) asks ``signatures.signers`` who wrote each commit
of the merged branch; the author line is ignored. alice writes a change; bob rebases her branch onto the
new main (routine; his git re-signs every commit as bob, and keeps alice as the author); alice signs the
merge. The evidence says "bob wrote, alice approved". An author line is anyone's text, so it cannot prove
who wrote; but it can only make the check stricter: a trust-file user named as author or committer of a
commit should count as one of its writers too (fail closed), as github mode already counts both roles.

Run (from /work/wt/redteam20b):
    PYTHONPATH=$PWD /work/main/.venv/bin/python -m pytest -q attacks/test_resigned_writer.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.source.review import UnreviewedRevisionError
from tests.reviewrepo import ReviewRepo


@pytest.mark.xfail(strict=True, reason="BREAK: the re-signer of a rebased commit is its only writer")
def test_an_author_approves_her_own_commit_after_a_colleague_rebased_and_re_signed_it(tmp_path: Path) -> None:
    repo = ReviewRepo(tmp_path)
    repo.change("alice", "feature", {"apps/web.yaml": "image: evil.example/miner:latest\n"})
    repo.push("dave", {"docs/readme.md": "main moved on\n"})  # any change on main (here a push, irrelevant)
    repo.git("checkout", "-q", "feature", person="bob")
    repo.git("rebase", "-q", "--gpg-sign", "main", person="bob")  # bob re-signs; the author stays alice
    assert repo.git("log", "-1", "--format=%an %cn", "feature") == "alice bob"
    repo.git("checkout", "-q", "main", person="alice")
    repo.git("reset", "-q", "--hard", "HEAD^", person="alice")  # main without dave's push, for a clean range
    head = repo.merge("alice", "feature")
    with pytest.raises(UnreviewedRevisionError):  # today: accepted, "merge signed by alice"
        repo.reviewer().verify(repo.work, repo.base, head)
