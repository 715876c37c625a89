"""Only reviewed revisions reach the cluster (signed-merge mode): each case of issue 20, on real git
repositories with real SSH keys. The attacker is a contributor who can push to the default branch."""

from __future__ import annotations

from pathlib import Path

import pytest
from typing_extensions import Unpack

from gitopsguard.errors import SourceError
from gitopsguard.source.review import UnreviewedRevisionError
from tests.reviewrepo import ReviewOptions, ReviewRepo

DEPLOY = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {replicas: '2'}\n"
EXCEPTION = "apiVersion: gitopsguard.io/v1alpha1\nkind: PolicyException\nmetadata: {name: mine}\n"


@pytest.fixture
def repo(tmp_path: Path) -> ReviewRepo:
    return ReviewRepo(tmp_path)


def refusal(repo: ReviewRepo, old: str | None, new: str, **settings: Unpack[ReviewOptions]) -> UnreviewedRevisionError:
    with pytest.raises(UnreviewedRevisionError) as refused:
        repo.reviewer(**settings).verify(repo.work, old, new)
    return refused.value


def test_a_commit_pushed_straight_to_apps_is_refused_and_named(repo: ReviewRepo) -> None:
    pushed = repo.push("alice", {"apps/web.yaml": DEPLOY})
    error = refusal(repo, repo.base, pushed)
    assert error.commit == pushed
    assert "pushed straight, signed by alice" in str(error)
    assert "apps/web.yaml: pushed without review; needs a merge approved by any approver" in str(error)


def test_the_same_change_through_a_signed_merge_by_an_approver_is_accepted(repo: ReviewRepo) -> None:
    repo.change("alice", "web", {"apps/web.yaml": DEPLOY})
    merge = repo.merge("carol", "web")
    review = repo.reviewer().verify(repo.work, repo.base, merge)
    assert [(a.commit, a.how) for a in review.approved] == [(merge, "merge signed by carol")]


def test_a_change_to_policies_merged_by_an_approver_who_is_no_security_reviewer_is_refused(repo: ReviewRepo) -> None:
    repo.change("alice", "weaken", {"policies/pss.yaml": "enforcement: audit\n"})
    merge = repo.merge("bob", "weaken")
    error = refusal(repo, repo.base, merge)
    assert "policies/pss.yaml needs approval by group security-reviewers" in str(error)
    assert "merge signed by bob" in str(error)


def test_every_rule_a_path_falls_under_must_be_met(repo: ReviewRepo) -> None:
    repo.change("alice", "shop", {"apps/shop/deploy.yaml": DEPLOY})
    refused = repo.merge("carol", "shop")  # carol is an approver, but no shop lead
    assert "needs approval by group shop-leads" in str(refusal(repo, repo.base, refused))
    repo.git("reset", "-q", "--hard", "HEAD^")
    accepted = repo.merge("dave", "shop")
    assert repo.reviewer().verify(repo.work, repo.base, accepted).approved[0].how == "merge signed by dave"


def test_a_merge_signed_by_the_author_of_the_change_is_refused(repo: ReviewRepo) -> None:
    repo.change("carol", "mine", {"apps/web.yaml": DEPLOY})
    merge = repo.merge("carol", "mine")
    assert "carol signed the merge of their own change" in str(refusal(repo, repo.base, merge))


def test_an_evil_merge_that_adds_an_exception_is_refused(repo: ReviewRepo) -> None:
    repo.change("alice", "web", {"apps/web.yaml": DEPLOY})
    repo.git("merge", "-q", "--no-ff", "--no-commit", "web", person="carol")
    repo.write("policies/exceptions/mine.yaml", EXCEPTION)
    repo.git("add", "-A", person="carol")
    repo.git("commit", "-q", "-S", "-m", "Merge web", person="carol")
    error = refusal(repo, repo.base, repo.head())
    assert "policies/exceptions/mine.yaml: changed by the merge itself" in str(error)
    assert "apps/web.yaml" not in str(error)  # what the branch brought was reviewed


def test_a_fast_forward_of_a_reviewed_branch_without_a_merge_commit_is_refused(repo: ReviewRepo) -> None:
    repo.change("alice", "web", {"apps/web.yaml": DEPLOY})
    repo.git("merge", "-q", "--ff-only", "web", person="carol")
    error = refusal(repo, repo.base, repo.head())
    assert "pushed straight, signed by alice" in str(error)


def test_an_unreviewed_commit_buried_between_two_reviewed_merges_is_refused(repo: ReviewRepo) -> None:
    repo.change("alice", "one", {"apps/one.yaml": DEPLOY})
    repo.merge("carol", "one")
    buried = repo.push("alice", {"apps/buried.yaml": DEPLOY})
    repo.change("alice", "two", {"apps/two.yaml": DEPLOY})
    head = repo.merge("carol", "two")
    error = refusal(repo, repo.base, head)
    assert error.commit == buried
    assert error.head == head


def test_a_bot_may_push_straight_to_its_one_path_and_nowhere_else(repo: ReviewRepo) -> None:
    tags = repo.push("image-bot", {"clusters/dev/image-tags.yaml": "web: v2\n"})
    review = repo.reviewer().verify(repo.work, repo.base, tags)
    assert review.approved[0].how == "push signed by image-bot, allowed by the pushes rules"
    other = repo.push("image-bot", {"clusters/dev/image-tags.yaml": "web: v3\n", "apps/web.yaml": DEPLOY})
    error = refusal(repo, tags, other)
    assert [p.split(":")[0] for p in error.problems] == ["apps/web.yaml"]


def test_the_bot_path_is_literal_not_a_pattern_for_lookalike_names(repo: ReviewRepo) -> None:
    pushed = repo.push("image-bot", {"clusters/dev/image-tags.yaml.d/evil.yaml": DEPLOY})
    assert "pushed without review" in str(refusal(repo, repo.base, pushed))


def test_reverting_an_unreviewed_push_and_merging_the_same_change_is_accepted(repo: ReviewRepo) -> None:
    repo.push("alice", {"apps/web.yaml": DEPLOY})
    repo.git("revert", "--no-edit", "-S", "HEAD", person="alice")  # the revert itself is a push too
    repo.change("alice", "web", {"apps/web.yaml": DEPLOY})
    head = repo.merge("carol", "web")
    review = repo.reviewer().verify(repo.work, repo.base, head)
    assert [a.how for a in review.approved if a.paths] == ["merge signed by carol"]


def test_a_branch_commit_nobody_trusted_signed_is_refused_as_author_unknown(repo: ReviewRepo) -> None:
    repo.change("alice", "web", {"apps/web.yaml": DEPLOY}, signed=False)
    merge = repo.merge("carol", "web")
    assert "is not signed by a trusted key, so who wrote it is unknown" in str(refusal(repo, repo.base, merge))


def test_an_unsigned_merge_is_refused(repo: ReviewRepo) -> None:
    repo.change("alice", "web", {"apps/web.yaml": DEPLOY})
    merge = repo.merge("carol", "web", signed=False)
    assert "a merge not signed by a trusted key" in str(refusal(repo, repo.base, merge))


def test_a_merge_signed_by_a_key_the_trust_file_does_not_know_is_refused(repo: ReviewRepo) -> None:
    repo.change("alice", "web", {"apps/web.yaml": DEPLOY})
    merge = repo.merge("mallory", "web")
    assert "a merge not signed by a trusted key" in str(refusal(repo, repo.base, merge))


def test_two_reviewed_changes_to_one_file_merged_by_git_are_accepted(repo: ReviewRepo) -> None:
    lines = [f"line {n}\n" for n in range(20)]
    repo.change("alice", "seed", {"apps/list.yaml": "".join(lines)})
    base = repo.merge("carol", "seed")
    repo.change("alice", "top", {"apps/list.yaml": "".join(["top\n", *lines[1:]])})
    repo.change("bob", "bottom", {"apps/list.yaml": "".join([*lines[:-1], "bottom\n"])})
    repo.merge("carol", "top")
    head = repo.merge("carol", "bottom")  # git merges both edits: the file is neither branch's version
    assert repo.reviewer().verify(repo.work, base, head).head == head


def test_a_conflict_resolved_in_the_merge_is_the_merger_own_change_and_refused(repo: ReviewRepo) -> None:
    repo.change("alice", "seed", {"apps/web.yaml": "replicas: 1\n"})
    base = repo.merge("carol", "seed")
    repo.change("alice", "two", {"apps/web.yaml": "replicas: 2\n"})
    repo.change("bob", "three", {"apps/web.yaml": "replicas: 3\n"})
    repo.merge("carol", "two")
    repo.git("merge", "-q", "--no-ff", "-S", "three", "-m", "Merge three", "-X", "ours", person="carol")
    repo.write("apps/web.yaml", "replicas: 99\n")  # what nobody reviewed
    repo.git("commit", "-q", "-S", "--amend", "-a", "--no-edit", person="carol")
    assert "changed by the merge itself" in str(refusal(repo, base, repo.head()))


def test_a_path_no_rule_covers_cannot_be_changed(repo: ReviewRepo) -> None:
    text = repo.trust.read_text().replace("- '**'", "- 'apps/**'")
    repo.trust.write_text(text)
    repo.change("alice", "docs", {"docs/readme.md": "hi\n"})
    merge = repo.merge("carol", "docs")
    assert "no review rule covers it" in str(refusal(repo, repo.base, merge))


def test_a_first_sync_needs_trust_from_or_an_approved_merge_at_the_head(repo: ReviewRepo) -> None:
    pushed = repo.push("alice", {"apps/web.yaml": DEPLOY})
    assert "a first sync needs --trust-from COMMIT" in str(refusal(repo, None, pushed))
    assert "pushed straight" in str(refusal(repo, None, pushed, trust_from=repo.base))
    repo.change("alice", "web", {"apps/other.yaml": DEPLOY})
    merge = repo.merge("carol", "web")
    assert repo.reviewer().verify(repo.work, None, merge).note.startswith("first sync from the approved merge")


def test_a_range_whose_first_parent_history_skips_the_applied_commit_is_refused(repo: ReviewRepo) -> None:
    repo.change("alice", "web", {"apps/web.yaml": DEPLOY})
    applied = repo.merge("carol", "web")
    side = repo.git("checkout", "-q", "-b", "side", repo.base, person="alice") or repo.base
    repo.push("alice", {"apps/side.yaml": DEPLOY})
    repo.git("merge", "-q", "--no-ff", "-S", "main", "-m", "side takes main", person="carol")
    with pytest.raises(SourceError, match="does not pass through"):
        repo.reviewer().verify(repo.work, applied, repo.head())
    assert side


def test_a_verified_head_is_not_verified_again(repo: ReviewRepo) -> None:
    repo.change("alice", "web", {"apps/web.yaml": DEPLOY})
    merge = repo.merge("carol", "web")
    reviewer = repo.reviewer()
    first = reviewer.verify(repo.work, repo.base, merge)
    repo.git("update-ref", "-d", "refs/heads/web")
    repo.git("gc", "-q", "--prune=now")  # the merge's history is still there; a second look would not fail
    assert reviewer.verify(repo.work, repo.base, merge) is first


def test_trust_from_takes_a_short_commit_id_and_refuses_one_that_names_nothing(repo: ReviewRepo) -> None:
    repo.change("alice", "web", {"apps/web.yaml": DEPLOY})
    merge = repo.merge("carol", "web")
    assert repo.reviewer(trust_from=repo.base[:10]).verify(repo.work, None, merge).base == repo.base
    with pytest.raises(SourceError, match="no such commit"):
        repo.reviewer(trust_from="0123456789abcdef").verify(repo.work, None, merge)
    for moving in ("--all", "main", "HEAD~1", "origin/main"):  # a name that moves is no anchor of trust
        with pytest.raises(SourceError, match="name a commit by its id"):
            repo.reviewer(trust_from=moving).verify(repo.work, None, merge)
