"""signed-merge evidence cannot be borrowed or replayed: only the signed merge that brought this exact blob
onto the branch counts (absent in its first parent, present in its result, unchanged along the first-parent
chain since), the request is a commit that merge brought, and a revoked or expired grant never comes back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitopsguard.grants.decide import decide
from gitopsguard.grants.load import load_escalation_policies, load_grants
from gitopsguard.grants.model import (
    Approval,
    Decision,
    EscalationPolicy,
    Grant,
    Identity,
    People,
    Remembered,
    RoleRule,
    State,
)
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from tests.signedrepo import SignedRepo, grant

PATH = "access/grants/alice.yaml"


@pytest.fixture
def repo(tmp_path: Path) -> SignedRepo:
    return SignedRepo(tmp_path, "shop")


def decided(repo: SignedRepo, remembered: Remembered | None = None) -> Decision:
    verifier = SignedMergeVerifier(repo.work, load_trust(repo.trust), repo.root / "state")
    (g,), broken = load_grants(repo.work, repo.blob_of)
    assert not broken
    return decide(g, load_escalation_policies(repo.work), verifier.approval(g.path), remembered, datetime.now(UTC))


def craft_merge(
    repo: SignedRepo, person: str, parents: list[str], *, signed: bool, keep: str = "", edit: str = ""
) -> str:
    """A merge commit made by hand (git commit-tree): main's tree, with ``PATH`` as in commit ``keep`` (or
    with the text ``edit``); ``main`` moves to it, as a push of it would."""
    if keep:
        repo.git("checkout", "-q", keep, "--", PATH, person=person)
    if edit:
        repo.write(PATH, edit)
    repo.git("add", "-A", person=person)
    tree = repo.git("write-tree", person=person)
    links = [arg for parent in parents for arg in ("-p", parent)]
    commit = repo.git("commit-tree", *(["-S"] if signed else []), tree, *links, "-m", "merge", person=person)
    repo.git("reset", "-q", "--hard", commit, person=person)
    return commit


def request_then_withdraw(repo: SignedRepo) -> str:
    """alice's branch adds a grant (signed), then deletes it; bob merges the branch, which no longer holds it."""
    repo.git("checkout", "-q", "-b", "ask", "main", person="alice")
    repo.write(PATH, grant("alice-debug", "shop"))
    request = repo.commit("alice", "Request")
    repo.git("rm", "-q", PATH, person="alice")
    repo.commit("alice", "Withdraw")
    repo.git("checkout", "-q", "main", person="alice")
    repo.merge("bob", "ask")
    return request


def test_an_old_signed_request_brought_back_by_an_unsigned_merge_is_refused(repo: SignedRepo) -> None:
    old = request_then_withdraw(repo)
    craft_merge(repo, "alice", ["main", old], signed=False, keep=old)
    d = decided(repo)
    assert d.state is State.DENIED and "is not signed by a trusted key" in d.reason, d


def test_a_revoked_grant_brought_back_by_an_unsigned_merge_of_its_old_request_is_refused(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop"))
    old = repo.git("rev-parse", "ask")
    repo.merge("bob", "ask")
    assert decided(repo).state is State.ACTIVE
    repo.git("rm", "-q", PATH)
    repo.commit("carol", "Revoke alice's access")
    craft_merge(repo, "alice", ["main", old], signed=False, keep=old)
    d = decided(repo)
    assert d.state is State.DENIED and "is not signed by a trusted key" in d.reason, d


def test_a_revoked_grant_stays_revoked_even_with_fresh_evidence(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop"))
    repo.merge("bob", "ask")
    revoked = Remembered(State.REVOKED, datetime.now(UTC), reason="its file left the branch")
    d = decided(repo, revoked)
    assert d.state is State.REVOKED, d


def alice_signed_old(repo: SignedRepo) -> str:
    return request_then_withdraw(repo)


# Histories an attacker can push; in none of them did an approver's signed merge bring this blob to the branch.
def forged_first_parent_is_the_old_request(repo: SignedRepo) -> None:
    old = alice_signed_old(repo)
    craft_merge(repo, "alice", [old, "main"], signed=True, keep=old)


def forged_merge_signed_by_the_requester(repo: SignedRepo) -> None:
    alice_signed_old(repo)
    repo.request("alice", "again", PATH, grant("alice-debug", "shop"))
    repo.merge("alice", "again")


def forged_octopus_with_a_signed_approver(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop"))
    repo.git("checkout", "-q", "-b", "other", "main")
    repo.write("notes.txt", "x")
    repo.commit("carol", "notes")
    repo.git("checkout", "-q", "main")
    craft_merge(repo, "bob", ["main", "ask", "other"], signed=True, keep="ask")


def forged_signed_merge_that_edits_the_request(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop", "30m"))
    craft_merge(repo, "bob", ["main", "ask"], signed=True, keep="ask", edit=grant("alice-debug", "shop", "2h"))


def forged_signed_merge_of_a_request_already_on_the_branch(repo: SignedRepo) -> None:
    old = alice_signed_old(repo)
    craft_merge(repo, "bob", ["main", old], signed=True, keep=old)


def forged_change_and_change_back_after_the_merge(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop", "30m"))
    repo.merge("bob", "ask")
    repo.write(PATH, grant("alice-debug", "shop", "2h"))
    repo.commit("alice", "extend", signed=False)
    repo.write(PATH, grant("alice-debug", "shop", "30m"))
    repo.commit("alice", "and back", signed=False)


@pytest.mark.parametrize(("forge", "why"), [
    (forged_first_parent_is_the_old_request, "pushed straight"),
    (forged_merge_signed_by_the_requester, "alice approved their own grant"),
    (forged_octopus_with_a_signed_approver, "merges more than one branch"),
    (forged_signed_merge_that_edits_the_request, "changed the file itself"),
    (forged_signed_merge_of_a_request_already_on_the_branch, "was already on the branch"),
    (forged_change_and_change_back_after_the_merge, "pushed straight"),
])  # fmt: skip
def test_only_the_signed_merge_that_brought_this_exact_blob_counts(
    repo: SignedRepo, forge: Callable[[SignedRepo], None], why: str
) -> None:
    forge(repo)
    d = decided(repo)
    assert d.state is State.DENIED and why in d.reason, d


def test_a_request_branch_that_merged_main_in_before_review_is_still_approved(repo: SignedRepo) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop"))
    repo.write("notes.txt", "unrelated")
    repo.commit("carol", "meanwhile on main")
    repo.git("checkout", "-q", "ask", person="alice")
    repo.git("merge", "-q", "--no-ff", "-m", "catch up", "main", person="alice")
    repo.git("checkout", "-q", "main", person="alice")
    repo.merge("bob", "ask")
    repo.write("notes.txt", "later")
    repo.commit("carol", "later on main", signed=False)
    d = decided(repo)
    assert d.state is State.ACTIVE and d.approver == "bob", d


@pytest.mark.parametrize("state", [State.REVOKED, State.EXPIRED])
def test_a_grant_revoked_or_expired_never_activates_again_from_the_same_blob(repo: SignedRepo, state: State) -> None:
    repo.request("alice", "ask", PATH, grant("alice-debug", "shop"))
    repo.merge("bob", "ask")
    now = datetime.now(UTC)
    d = decided(repo, Remembered(state, now, now - timedelta(minutes=5), now + timedelta(minutes=55), "bob"))
    assert d.state is state, d


SETTLED = st.sampled_from([State.REVOKED, State.EXPIRED])
moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


@given(state=SETTLED, now=moments, age=st.timedeltas(min_value=timedelta(0), max_value=timedelta(minutes=59)),
       expires=st.none() | moments,
       approvers=st.lists(st.sampled_from(["bob", "carol"]), min_size=1, max_size=2))  # fmt: skip
def test_no_evidence_ever_reactivates_a_revoked_or_expired_grant(
    state: State, now: datetime, age: timedelta, expires: datetime | None, approvers: list[str]
) -> None:
    """Evidence that would activate a fresh grant (recent, valid approvers) leaves a settled one settled."""
    g = Grant("g", PATH, f"{PATH}:1", "debug", "User", "alice", "ClusterRole", "view", "shop", timedelta(hours=1),
              "why", "0" * 40)  # fmt: skip
    view = RoleRule("ClusterRole", "view", frozenset({"shop"}))
    policy = EscalationPolicy("debug", "p:1", People(), People(users=frozenset({"bob", "carol"})), 1, (view,),
                              timedelta(hours=2), False)  # fmt: skip
    approval = Approval(Identity("alice"), tuple(Identity(a) for a in approvers), now - age)
    assert decide(g, {"debug": policy}, approval, None, now).state is State.ACTIVE  # the evidence is good
    remembered = Remembered(state, now - age, now - age, expires, "bob")
    assert decide(g, {"debug": policy}, approval, remembered, now).state is not State.ACTIVE
