"""signed-merge approval with real git and real SSH signing keys: the full happy path, and every refusal."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from gitopsguard.grants.decide import decide
from gitopsguard.grants.load import load_escalation_policies, load_grants
from gitopsguard.grants.model import Decision, Remembered, State
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from tests.signedrepo import SignedRepo, grant

PATH = "access/grants/alice.yaml"


@pytest.fixture
def repo(tmp_path: Path) -> SignedRepo:
    return SignedRepo(tmp_path, "shop")


def decisions(repo: SignedRepo, now: datetime | None = None, remembered: Remembered | None = None) -> list[Decision]:
    verifier = SignedMergeVerifier(repo.work, load_trust(repo.trust), repo.root / "state")
    grants, broken = load_grants(repo.work, repo.blob_of)
    assert not broken
    policies = load_escalation_policies(repo.work)
    when = now or datetime.now(UTC)
    return [decide(g, policies, verifier.approval(g.path), remembered, when) for g in grants]


def test_a_grant_signed_by_its_subject_and_merged_by_a_signed_approver_is_active(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop", "90m"))
    merge = repo.merge("bob", "ask")
    (d,) = decisions(repo)
    assert d.state is State.ACTIVE, d.reason
    assert d.approver == "bob"
    merged_at = datetime.fromtimestamp(int(repo.git("log", "-1", "--format=%ct", merge)), UTC)
    assert d.start == merged_at and d.expires == merged_at + timedelta(minutes=90)


def test_the_duration_is_capped_by_the_policy_maximum(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop", "8h"))
    repo.merge("bob", "ask")
    (d,) = decisions(repo)
    assert d.expires is not None and d.start is not None and d.expires - d.start == timedelta(hours=2)


@pytest.mark.parametrize(("requester", "merger", "why"), [
    ("alice", "alice", "alice approved their own grant"),
    ("alice", "carol", "approved by carol, who may not approve under policy debug"),
    ("mallory", "bob", "not signed by anyone the trust configuration knows"),
    ("bob", "carol", "requested by bob, not by the subject alice"),
])  # fmt: skip
def test_refusals_name_the_reason(repo: SignedRepo, requester: str, merger: str, why: str) -> None:
    repo.request(requester, "ask", PATH, grant("alice-debug", "shop"))
    repo.merge(merger, "ask")
    (d,) = decisions(repo)
    assert d.state is State.DENIED and why in d.reason, d.reason


def test_an_unsigned_merge_is_refused(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop"))
    repo.merge("bob", "ask", signed=False)
    (d,) = decisions(repo)
    assert d.state is State.DENIED and "is not signed by a trusted key" in d.reason


def test_a_grant_pushed_straight_to_the_branch_is_refused(repo: SignedRepo) -> None:
    repo.write(PATH, grant("alice-debug", "shop"))
    repo.commit("alice", "Straight to main")
    (d,) = decisions(repo)
    assert d.state is State.DENIED and "pushed straight to the branch" in d.reason


def test_a_grant_edited_after_approval_is_a_new_request_needing_a_new_merge(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop", "1h"))
    repo.merge("bob", "ask")
    (before,) = decisions(repo)
    repo.write(PATH, grant("alice-debug", "shop", "2h"))  # alice extends it, straight on main
    repo.commit("alice", "Extend")
    (after,) = decisions(repo)
    assert before.state is State.ACTIVE and before.grant.id != after.grant.id
    assert after.state is State.DENIED and "pushed straight" in after.reason


def test_a_role_or_namespace_outside_the_policy_is_refused(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "payments"))
    repo.merge("bob", "ask")
    (d,) = decisions(repo)
    assert d.state is State.DENIED and "does not allow ClusterRole view namespace payments" in d.reason


def test_an_approval_older_than_the_window_is_not_activated_when_first_seen_now(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop", "2h"))
    repo.merge("bob", "ask")
    (d,) = decisions(repo, now=datetime.now(UTC) + timedelta(hours=25))
    assert d.state is State.DENIED and "old access is not brought back" in d.reason


def test_an_approval_time_in_the_future_is_refused(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop"))
    repo.merge("bob", "ask")
    (d,) = decisions(repo, now=datetime.now(UTC) - timedelta(minutes=10))
    assert d.state is State.DENIED and "in the future" in d.reason


def test_expiry_is_decided_by_the_controllers_clock(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop", "30m"))
    repo.merge("bob", "ask")
    (active,) = decisions(repo)
    assert active.state is State.ACTIVE and active.expires is not None
    memory = Remembered(State.ACTIVE, datetime.now(UTC), active.start, active.expires, "bob")
    (later,) = decisions(repo, now=active.expires, remembered=memory)
    assert later.state is State.EXPIRED


def _gpg_key(home: Path, uid: str) -> tuple[str, str]:
    """A fresh OpenPGP signing key in its own keyring: (fingerprint, armoured public key)."""
    home.mkdir(mode=0o700, parents=True)
    env = {"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin"}
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    listed = subprocess.run(["gpg", "--with-colons", "--list-keys"], env=env, check=True, capture_output=True,
                            text=True).stdout  # fmt: skip
    fingerprint = next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:"))
    armoured = subprocess.run(["gpg", "--armor", "--export", fingerprint], env=env, check=True, capture_output=True,
                              text=True).stdout  # fmt: skip
    return fingerprint, armoured


def _gpg_merge(repo: SignedRepo, home: Path, fingerprint: str, branch: str) -> None:
    who = {
        "GIT_COMMITTER_NAME": "bob",
        "GIT_COMMITTER_EMAIL": "b@x",
        "GIT_AUTHOR_NAME": "bob",
        "GIT_AUTHOR_EMAIL": "b@x",
    }
    env = {"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(repo.root), **who}
    subprocess.run(["git", "-c", "gpg.format=openpgp", "-c", f"user.signingkey={fingerprint}", "merge", "-q",
                    "--no-ff", "-S", "-m", f"Merge {branch}", branch], cwd=repo.work, env=env, check=True)  # fmt: skip


@pytest.mark.parametrize("trusted", [True, False])
def test_an_openpgp_signed_merge_counts_by_key_fingerprint_never_by_the_name_in_the_key(
    repo: SignedRepo, tmp_path: Path, trusted: bool
) -> None:
    fingerprint, armoured = _gpg_key(tmp_path / "gnupg-bob", "bob <bob@example.com>")
    trust = yaml.safe_load(repo.trust.read_text())
    bob = next(s for s in trust["signers"] if s["user"] == "bob")
    if trusted:  # bob signs with OpenPGP only
        bob["keys"], bob["gpgKeys"] = [], [armoured]
    # else: bob's trusted key is SSH; the OpenPGP key merely says "bob" inside, and nobody trusted it
    repo.trust.write_text(yaml.safe_dump(trust))
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop"))
    _gpg_merge(repo, tmp_path / "gnupg-bob", fingerprint, "ask")
    (d,) = decisions(repo)
    if trusted:
        assert d.state is State.ACTIVE and d.approver == "bob", d.reason
    else:
        assert d.state is State.DENIED and "not signed by a trusted key" in d.reason
