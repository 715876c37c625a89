"""The demo's repository and people (issue 20): its history is signed with keys made at demo time, which never
enter the repository, and the demo's trust file and review rules refuse alice's straight push and accept the
same change once carol merged it with a signed merge. Real git, real ssh-keygen keys; no cluster."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gitopsguard.commands.demo import DEMO_GRACE, _short_grace, demo_repository
from gitopsguard.commands.demo_grants import request_grant
from gitopsguard.commands.demo_review import DemoPeople, demo_people, reviewed_change, signed_commit
from gitopsguard.evidence.signatures import Signatures
from gitopsguard.evidence.trust import load_trust
from gitopsguard.source.review import UnreviewedRevisionError

OVERLAY = "clusters/dev/kustomization.yaml"


@pytest.fixture
def people(tmp_path: Path) -> DemoPeople:
    return demo_people(tmp_path / "demo-keys")


@pytest.fixture
def repo(tmp_path: Path, people: DemoPeople) -> Path:
    return demo_repository(tmp_path / "demo-repo", people)


def signer(people: DemoPeople, repo: Path, commit: str, tmp_path: Path) -> str | None:
    found = Signatures(repo, load_trust(people.trust), tmp_path / "signatures").signer(commit)
    return found.user if found else None


def trace(repo: Path) -> None:
    overlay = repo / OVERLAY
    overlay.write_text(overlay.read_text().replace("value: debug", "value: trace", 1))


def test_the_demo_repository_starts_with_a_commit_carol_signed_and_holds_no_private_key(
    people: DemoPeople, repo: Path, tmp_path: Path
) -> None:
    root = people.git(repo, "carol", "rev-list", "--max-parents=0", "HEAD").split()
    assert len(root) == 1 and signer(people, repo, root[0], tmp_path) == "carol"
    assert f"gracePeriod: {DEMO_GRACE}" in (repo / "policies" / "hand-made-workloads.yaml").read_text()
    found = subprocess.run(["git", "grep", "-l", "-e", "PRIVATE KEY", "HEAD"], cwd=repo, capture_output=True, text=True)
    assert (found.returncode, found.stdout) == (1, "")  # 1: nothing found
    assert not people.keys.resolve().is_relative_to(repo.resolve())


def test_a_plain_commit_in_the_demo_repository_is_alices_and_signed_with_her_key(
    people: DemoPeople, repo: Path, tmp_path: Path
) -> None:
    trace(repo)
    subprocess.run(["git", "commit", "-q", "-am", "my change"], cwd=repo, check=True, capture_output=True)
    head = people.git(repo, "alice", "rev-parse", "HEAD").strip()
    assert signer(people, repo, head, tmp_path) == "alice"


def test_the_demo_rules_refuse_alices_straight_push_and_accept_the_same_change_merged_by_carol(
    people: DemoPeople, repo: Path, tmp_path: Path
) -> None:
    start = people.git(repo, "carol", "rev-parse", "HEAD").strip()
    trace(repo)
    pushed = signed_commit(people, repo, "alice", "Log at trace level in dev")
    with pytest.raises(UnreviewedRevisionError) as refused:
        people.reviewer(start, tmp_path / "review").verify(repo, None, pushed)
    assert (refused.value.commit, refused.value.who) == (pushed, "pushed straight, signed by alice")
    assert refused.value.problems == (f"{OVERLAY}: pushed without review; needs a merge approved by any approver",)

    people.git(repo, "alice", "revert", "--no-edit", "-S", "HEAD")
    merged = reviewed_change(people, repo, "alice-trace", lambda: trace(repo), "Log at trace level in dev")
    review = people.reviewer(start, tmp_path / "review-again").verify(repo, None, merged)
    assert review.summary().endswith(f"{merged[:12]} merge signed by carol")


def test_a_change_to_policies_merged_by_carol_is_accepted_and_pushed_by_carol_is_refused(
    people: DemoPeople, repo: Path, tmp_path: Path
) -> None:
    start = people.git(repo, "carol", "rev-parse", "HEAD").strip()
    policy = repo / "policies" / "hand-made-workloads.yaml"

    def shorter() -> None:
        policy.write_text(policy.read_text().replace(f"gracePeriod: {DEMO_GRACE}", "gracePeriod: 3s"))

    merged = reviewed_change(people, repo, "alice-grace", shorter, "Grace 3 s")
    assert people.reviewer(start, tmp_path / "a").verify(repo, None, merged).approved
    policy.write_text(policy.read_text().replace("gracePeriod: 3s", "gracePeriod: 1s"))
    pushed = signed_commit(people, repo, "carol", "Grace 1 s")
    with pytest.raises(UnreviewedRevisionError) as refused:
        people.reviewer(start, tmp_path / "b").verify(repo, merged, pushed)
    assert refused.value.problems == ("policies/hand-made-workloads.yaml: pushed without review; needs a merge "
                                      "approved by group security-reviewers and by any approver",)  # fmt: skip


def test_the_demo_grant_is_active_through_carols_merge_under_the_policy_her_first_commit_signed(
    people: DemoPeople, repo: Path, tmp_path: Path
) -> None:
    # Before issue 20 carol pushed a signed commit to access/policies/ to put the policy in force; the loop's
    # review would refuse that push, so the demo's first commit (signed by carol) must be what puts it in force.
    from datetime import UTC, datetime

    from gitopsguard.grants.decide import decide
    from gitopsguard.grants.load import load_grants
    from gitopsguard.grants.model import State
    from gitopsguard.grants.signed import SignedMergeVerifier

    name = request_grant(repo, people)
    verifier = SignedMergeVerifier(repo, load_trust(people.trust), tmp_path / "verify")
    grants, broken = load_grants(repo, verifier.blob)
    grant = next(g for g in grants if g.name == name)
    decision = decide(grant, verifier.policies(repo), verifier.approval(grant.path), None, datetime.now(UTC))
    assert (broken, decision.state, decision.approver) == ([], State.ACTIVE, "carol"), decision.reason
    start = people.git(repo, "carol", "rev-list", "--max-parents=0", "HEAD").strip()
    head = people.git(repo, "carol", "rev-parse", "HEAD").strip()
    assert (
        people.reviewer(start, tmp_path / "review")
        .verify(repo, None, head)
        .summary()
        .endswith(f"{head[:12]} merge signed by carol")
    )  # the loop accepts the same merge


def test_an_earlier_demos_repository_with_another_grace_is_brought_to_the_demos_grace_by_carols_merge(
    people: DemoPeople, repo: Path, tmp_path: Path
) -> None:
    policy = repo / "policies" / "hand-made-workloads.yaml"

    def earlier() -> None:
        policy.write_text(policy.read_text().replace(f"gracePeriod: {DEMO_GRACE}", "gracePeriod: 10s"))

    reviewed_change(people, repo, "earlier-grace", earlier, "The grace of an earlier demo")
    before = people.git(repo, "carol", "rev-parse", "HEAD").strip()
    _short_grace(repo, people)
    head = people.git(repo, "carol", "rev-parse", "HEAD").strip()
    assert f"gracePeriod: {DEMO_GRACE}" in policy.read_text()
    assert head != before and signer(people, repo, head, tmp_path) == "carol"
