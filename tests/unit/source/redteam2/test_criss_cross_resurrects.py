"""Red team round 2 (issue 20): a security reviewer's honest, automatic merge undoes a reviewed policy
hardening, through a criss-cross history whose diff (what the reviewer is shown) hides it. alice has no
security-reviewer key and makes no straight push.

1. The applied commit holds `enforcement: audit`. dave hardens it to `enforce`; carol merges (B2).
2. alice's branch `side`, forked from the applied commit, changes only apps/q.yaml (B1); carol merges it.
3. alice "updates" her branch by merging B2 into it, keeping her branch's version of the policy (a merge
   on her own branch: no step of main, so never remerged). B1 and B2 are now both merge bases of main and
   the branch; alice's commit dates decide which one `git merge-base` (and so the reviewer's diff) shows.
4. alice adds a comment to the policy and asks carol to review. `git diff main...side` (GitHub's "Files
   changed" also diffs from the merge base): one comment line. carol merges with plain `git merge`: git's
   recursive merge diffs from the virtual base of B1 and B2 (`enforce`), so the branch's `audit` wins.

gitopsguard accepts: "merge signed by carol" (a security reviewer; writer alice). Nobody reviewed undoing the
hardening. Reviewer._signed_merge (gitopsguard/source/review.py) never asks whether the change a merge
brings to a path is the one its reviewers' diff showed; with more than one merge base it may not be.

Run (from /work/wt/redteam20b):
    PYTHONPATH=$PWD /work/main/.venv/bin/python -m pytest -q attacks/test_criss_cross_resurrects.py
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gitopsguard.evidence.github import GitHubApi
from gitopsguard.source.review import ReviewMode, UnreviewedRevisionError
from tests.fakegithub import TOKEN, FakeGitHub, Pull
from tests.reviewrepo import ReviewRepo

PAD = "".join(f"  # line {n}\n" for n in range(12))
POLICY = "policies/pss.yaml"


def policy(enforcement: str, tail: str = "") -> str:
    head = "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nmetadata: {name: pss}\nspec:\n"
    return f"{head}  builtin: {{name: pss-restricted}}\n  enforcement: {enforcement}\n{PAD}{tail}"


Merged = list[tuple[str, str, str]]  # (merge commit, head of the merged branch, its author), oldest first


def criss_cross(repo: ReviewRepo, *, signed: bool = True) -> tuple[str, list[str], Merged]:
    """The history above up to the reviewed branch; (the applied commit, the branch's new commits, the merges
    carol made on main since the applied commit)."""
    repo.change("alice", "seed", {POLICY: policy("audit"), "apps/q.yaml": "q: 0\n"})
    applied = repo.merge("carol", "seed", signed=signed)
    repo.change("dave", "harden", {POLICY: policy("enforce")})
    dave = repo.git("rev-parse", "harden")
    hardened = repo.merge("carol", "harden", signed=signed)  # B2
    time.sleep(1.1)  # alice's commits are newer (she sets her own dates): git then shows B1 as the merge base
    repo.git("checkout", "-q", "-b", "side", applied, person="alice")
    repo.write("apps/q.yaml", "q: 1\n")
    alices = repo.commit("alice", "Bump q")  # B1
    repo.git("checkout", "-q", "main", person="carol")
    merged = [(hardened, dave, "dave-gh"), (repo.merge("carol", "side", signed=signed), alices, "alice-gh")]
    repo.git("checkout", "-q", "side", person="alice")
    repo.git("merge", "-q", "--no-ff", "--no-commit", hardened, person="alice")
    repo.git("checkout", alices, "--", POLICY, person="alice")  # her branch keeps its own version
    update = repo.commit("alice", "Merge main into side")
    repo.write(POLICY, policy("audit", "# documented\n"))
    documented = repo.commit("alice", "Document the policy")
    repo.git("checkout", "-q", "main", person="carol")
    shown = repo.git("diff", "main...side")
    assert "enforcement" not in shown and "+# documented" in shown  # all carol is shown: one comment line
    return applied, [update, documented], merged


def test_a_criss_cross_merge_undoing_a_reviewed_hardening_the_reviewer_never_saw_is_refused(tmp_path: Path) -> None:
    repo = ReviewRepo(tmp_path)
    applied, _, _ = criss_cross(repo)
    head = repo.merge("carol", "side")  # plain `git merge`, signed: no conflict, nothing for carol to resolve
    assert "enforcement: audit" in repo.git("show", f"{head}:{POLICY}")
    with pytest.raises(UnreviewedRevisionError):  # today: accepted, "merge signed by carol"
        repo.reviewer().verify(repo.work, applied, head)


def test_the_same_criss_cross_in_github_mode_is_refused(tmp_path: Path) -> None:
    fake = FakeGitHub()
    with fake.serving() as url:
        repo = ReviewRepo(tmp_path)
        applied, commits, merged = criss_cross(repo, signed=False)
        head = repo.merge("carol", "side", signed=False)  # GitHub's merge button makes the same merge
        fake.pulls = [Pull(5 + n, author, [tip], reviews=[("carol-gh", "APPROVED", tip)], merge_commit=merge)
                      for n, (merge, tip, author) in enumerate(merged)]  # fmt: skip
        fake.pulls.append(Pull(7, "alice-gh", commits, reviews=[("carol-gh", "APPROVED", commits[-1])],
                               merge_commit=head))  # fmt: skip
        forge = GitHubApi(url, fake.slug, TOKEN)
        assert "enforcement: audit" in repo.git("show", f"{head}:{POLICY}")
        with pytest.raises(UnreviewedRevisionError):  # today: accepted, "pull request #7 approved by carol"
            repo.reviewer(ReviewMode.GITHUB, forge=forge).verify(repo.work, applied, head)
