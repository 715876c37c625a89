"""Red team (issue 20): attacks that the reviewer refused as it should (kept as regression pins).

Run: .venv/bin/python -m pytest -q tests/unit/source/redteam/test_holds.py
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gitopsguard.source.review import UnreviewedRevisionError
from tests.reviewrepo import ReviewRepo

POLICY = "kind: Policy\nspec: {enforcement: enforce}\n"


@pytest.fixture
def repo(tmp_path: Path) -> ReviewRepo:
    repo = ReviewRepo(tmp_path)
    repo.change("alice", "seed", {"policies/pss.yaml": POLICY, "apps/web.yaml": "x: 1\n"})
    repo.base = repo.merge("carol", "seed")
    return repo


def refused(repo: ReviewRepo, head: str | None = None) -> UnreviewedRevisionError:
    with pytest.raises(UnreviewedRevisionError) as caught:
        repo.reviewer().verify(repo.work, repo.base, head or repo.head())
    return caught.value


def commit_tree(repo: ReviewRepo, tree: str, parents: list[str], person: str, message: str) -> str:
    args = [a for p in parents for a in ("-p", p)]
    return repo.git("commit-tree", "-S", *args, "-m", message, tree, person=person)


def test_a_policy_file_deleted_by_a_straight_push_is_refused(repo: ReviewRepo) -> None:
    repo.git("rm", "-q", "policies/pss.yaml", person="alice")
    pushed = repo.commit("alice", "Tidy up")
    assert refused(repo).commit == pushed


def test_a_mode_only_change_pushed_to_a_policy_is_refused(repo: ReviewRepo) -> None:
    (repo.work / "policies/pss.yaml").chmod(0o755)
    repo.commit("alice", "chmod")
    assert "policies/pss.yaml" in str(refused(repo))


def test_an_octopus_signed_by_a_security_reviewer_is_refused(repo: ReviewRepo) -> None:
    repo.change("alice", "a", {"apps/a.yaml": "a: 1\n"})
    repo.change("bob", "b", {"apps/b.yaml": "b: 1\n"})
    repo.git("merge", "-q", "--no-ff", "-S", "-m", "octopus", "a", "b", person="carol")
    assert "a merge of several branches" in str(refused(repo))


def test_a_merge_whose_two_parents_are_one_commit_carrying_an_exception_is_refused(repo: ReviewRepo) -> None:
    repo.write("policies/exceptions/mine.yaml", "kind: PolicyException\n")
    repo.git("add", "-A", person="alice")
    tree = repo.git("write-tree", person="alice")
    raw = repo.git("cat-file", "commit", commit_tree(repo, tree, [repo.base, repo.base], "carol", "m"))
    assert raw.count("parent ") in (1, 2)
    evil = commit_tree(repo, tree, [repo.base, repo.base], "carol", "Merge (evil)")
    repo.git("reset", "-q", "--hard", evil)
    with pytest.raises(UnreviewedRevisionError):
        repo.reviewer().verify(repo.work, repo.base, evil)


def test_a_merge_of_an_old_main_commit_carrying_an_exception_is_refused(repo: ReviewRepo) -> None:
    repo.change("alice", "web", {"apps/web.yaml": "x: 2\n"})
    repo.merge("carol", "web")
    repo.write("policies/exceptions/mine.yaml", "kind: PolicyException\n")
    repo.git("add", "-A", person="alice")
    tree = repo.git("write-tree", person="alice")
    evil = commit_tree(repo, tree, [repo.head(), repo.base], "alice", "Merge old main")
    assert "changed by the merge itself" in str(refused(repo, evil))


def test_a_branch_that_merged_main_with_an_evil_resolution_is_its_author_change(repo: ReviewRepo) -> None:
    """bob's branch merges main and adds an exception in that merge (signed by bob); dave (no security
    reviewer) merges the branch: refused for policies/, and carol merging it names bob as the author."""
    repo.change("bob", "feature", {"apps/web.yaml": "x: 3\n"})
    repo.change("alice", "other", {"apps/other.yaml": "o: 1\n"})
    repo.merge("carol", "other")
    repo.git("checkout", "-q", "feature", person="bob")
    repo.git("merge", "-q", "--no-ff", "--no-commit", "main", person="bob")
    repo.write("policies/exceptions/bob.yaml", "kind: PolicyException\n")
    repo.git("add", "-A", person="bob")
    repo.git("commit", "-q", "-S", "-m", "Merge main into feature", person="bob")
    repo.git("checkout", "-q", "main", person="bob")
    repo.merge("dave", "feature")
    assert "needs approval by group security-reviewers" in str(refused(repo))


def test_a_criss_cross_merge_brings_no_unreviewed_line(repo: ReviewRepo) -> None:
    """Two branches that merged each other, then both merged to main; a straight push in between."""
    lines = "".join(f"l{n}\n" for n in range(10))
    repo.change("alice", "one", {"apps/list.yaml": lines})
    repo.change("bob", "two", {"apps/list.yaml": lines.replace("l9", "L9")})
    repo.git("checkout", "-q", "one", person="alice")
    repo.git("merge", "-q", "-S", "--no-edit", "-X", "theirs", "two", person="alice")
    repo.git("checkout", "-q", "two", person="bob")
    repo.git("merge", "-q", "-S", "--no-edit", "-X", "ours", "one~1", person="bob")
    repo.git("checkout", "-q", "main", person="bob")
    pushed = repo.push("alice", {"apps/pushed.yaml": "p: 1\n"})
    repo.merge("carol", "one")
    repo.merge("dave", "two")
    assert refused(repo).commit == pushed


def test_a_submodule_entry_under_policies_needs_a_security_reviewer(repo: ReviewRepo) -> None:
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{repo.base},policies/sub", person="alice")
    repo.git("commit", "-q", "-S", "-m", "submodule", person="alice")
    repo.git("checkout", "-q", "-b", "sub", person="alice")
    repo.git("checkout", "-q", "main", person="alice")
    repo.git("reset", "-q", "--hard", "HEAD^", person="alice")
    repo.merge("bob", "sub")
    assert "policies/sub needs approval by group security-reviewers" in str(refused(repo))


def test_a_symlink_into_policies_from_apps_is_any_approver_but_never_read_as_policy(repo: ReviewRepo) -> None:
    """apps/pss.yaml -> ../policies/pss.yaml is an apps/ change; gate.policies_at reads policies/ only and
    refuses symlinks, so it cannot change a policy. (Noted: the render's symlink handling is render's.)"""
    repo.git("checkout", "-q", "-b", "link", person="alice")
    (repo.work / "apps/pss.yaml").symlink_to("../policies/pss.yaml")
    repo.commit("alice", "link")
    repo.git("checkout", "-q", "main", person="alice")
    merge = repo.merge("bob", "link")
    subprocess.run(["true"], check=True)
    assert repo.reviewer().verify(repo.work, repo.base, merge).approved[0].how == "merge signed by bob"
