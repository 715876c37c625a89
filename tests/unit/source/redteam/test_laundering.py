"""Red team (issue 20): an unreviewed change to a file is laundered by any LATER reviewed merge that also
touches that file. Only the newest first-parent step that changed a path is judged for it
(gitopsguard/source/steps.py `_answerable`), so a straight push that is not the newest change of its path is
never judged, and git's clean auto-merge carries its lines into the reviewed merge's result.

Each test asserts the secure outcome (refusal); each failed before the fix.

Run: .venv/bin/python -m pytest -q tests/unit/source/redteam/test_laundering.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.source.review import UnreviewedRevisionError
from tests.reviewrepo import ReviewRepo


def policy(enforcement: str, comment: str) -> str:
    body = [
        f"# {comment}\n",
        "apiVersion: gitopsguard.io/v1alpha1\n",
        "kind: Policy\n",
        "metadata: {name: pss}\n",
        "spec:\n",
        "  builtin: {name: pss-restricted}\n",
        f"  enforcement: {enforcement}\n",
    ]
    body += [f"  # padding line {n}\n" for n in range(12)]  # so the two edits merge cleanly
    return "".join(body)


@pytest.fixture
def repo(tmp_path: Path) -> ReviewRepo:
    repo = ReviewRepo(tmp_path)
    repo.change("alice", "seed", {"policies/pss.yaml": policy("enforce", "v1"), "apps/web.yaml": "replicas: 1\n"})
    repo.base = repo.merge("carol", "seed")  # the applied commit: a reviewed, enforcing policy
    return repo


def test_a_pushed_enforce_to_audit_survives_a_later_reviewed_typo_fix_forked_after_it(repo: ReviewRepo) -> None:
    pushed = repo.push("alice", {"policies/pss.yaml": policy("audit", "v1")})  # straight to main: unreviewed
    with pytest.raises(UnreviewedRevisionError):  # the controller refuses the push and holds the base ...
        repo.reviewer().verify(repo.work, repo.base, pushed)
    repo.change("alice", "typo", {"policies/pss.yaml": policy("audit", "v1, typo fixed")})  # PR diff: one line
    head = repo.merge("carol", "typo")  # ... carol reviews a one-line comment fix and merges it
    assert "enforcement: audit" in repo.git("show", f"{head}:policies/pss.yaml")
    with pytest.raises(UnreviewedRevisionError):  # today: accepted, "merge signed by carol"
        repo.reviewer().verify(repo.work, repo.base, head)


def test_a_pushed_enforce_to_audit_rides_git_auto_merge_of_a_branch_forked_before_it(repo: ReviewRepo) -> None:
    repo.change("alice", "typo", {"policies/pss.yaml": policy("enforce", "v1, typo fixed")})  # forked before the push
    repo.push("alice", {"policies/pss.yaml": policy("audit", "v1")})
    head = repo.merge("carol", "typo")  # the branch itself still says enforce; git's merge takes main's audit
    assert "enforcement: audit" in repo.git("show", f"{head}:policies/pss.yaml")
    assert "audit" not in repo.git("diff", f"{repo.base}...typo")  # what carol was shown: no 'audit' anywhere
    with pytest.raises(UnreviewedRevisionError):
        repo.reviewer().verify(repo.work, repo.base, head)


def test_an_approver_with_only_an_any_key_self_approves_a_push_by_merging_someone_else_edit(repo: ReviewRepo) -> None:
    """alice (in `**: any` only) pushes to apps/web.yaml, then signs the merge of bob's unrelated edit of it."""
    repo.change("bob", "bob-edit", {"apps/web.yaml": "replicas: 1\n# bob: a comment\n"})
    repo.push("alice", {"apps/web.yaml": "image: evil.example/miner:latest\nreplicas: 1\n"})
    head = repo.merge("alice", "bob-edit")
    assert "evil.example" in repo.git("show", f"{head}:apps/web.yaml")
    with pytest.raises(UnreviewedRevisionError):  # today: accepted, "merge signed by alice"
        repo.reviewer().verify(repo.work, repo.base, head)


def test_a_security_reviewer_self_approves_a_policy_push_by_merging_a_colleague_edit(repo: ReviewRepo) -> None:
    """carol pushes an exception straight into a policy file, then merges alice's harmless edit of that file:
    the only approval of carol's change is carol's own signature (self-approval)."""
    repo.change("alice", "alice-edit", {"policies/pss.yaml": policy("enforce", "v1, reworded")})
    repo.push(
        "carol",
        {
            "policies/pss.yaml": policy("enforce", "v1").replace(
                "# padding line 11\n", "  exclude: {namespaces: [carol-ns]}\n"
            )
        },
    )
    head = repo.merge("carol", "alice-edit")
    assert "carol-ns" in repo.git("show", f"{head}:policies/pss.yaml")
    with pytest.raises(UnreviewedRevisionError):
        repo.reviewer().verify(repo.work, repo.base, head)


def test_holds_a_push_to_a_file_no_later_step_touches_is_still_refused(repo: ReviewRepo) -> None:
    pushed = repo.push("alice", {"policies/pss.yaml": policy("audit", "v1")})
    repo.change("alice", "other", {"apps/other.yaml": "x: 1\n"})
    head = repo.merge("carol", "other")
    with pytest.raises(UnreviewedRevisionError) as refused:
        repo.reviewer().verify(repo.work, repo.base, head)
    assert refused.value.commit == pushed
