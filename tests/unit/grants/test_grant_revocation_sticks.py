"""An ACTIVE grant stays active only while its evidence still holds for its path: each read checks again that
the approving merge is where the blob's run on the branch starts. A deletion followed by an unreviewed re-add,
or a copy of the approved bytes under another path, keeps nothing active."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.grants.decide import decide
from gitopsguard.grants.model import Approval, Grant, Identity, Remembered, State
from tests.signedrepo import SignedRepo, grant
from tests.unit.grants.keeperkit import keeper, sync

ALICE = "access/grants/alice.yaml"


@pytest.fixture
def repo(tmp_path: Path) -> SignedRepo:
    repo = SignedRepo(tmp_path, "shop")
    repo.request("alice", "ask", ALICE, grant("alice-debug", "shop", "2h"))
    repo.merge("bob", "ask")
    return repo


def test_an_unreviewed_copy_of_an_approved_file_does_not_survive_the_revocation(repo: SignedRepo) -> None:
    """The break (red team b2): the copy had the same id; deleting the approved file revoked nothing."""
    keeper_, binder = keeper()
    sync(repo, keeper_)
    repo.write("access/grants/zz-notes.yaml", (repo.work / ALICE).read_text())
    repo.commit("alice", "notes", signed=False)
    sync(repo, keeper_)
    repo.git("rm", "-q", ALICE)
    repo.commit("carol", "revoke alice-debug")
    said = sync(repo, keeper_)
    assert binder.subjects() == set(), said
    assert State.ACTIVE not in {e.memory.state for e in keeper_.entries.values()}


def test_a_revocation_undone_by_an_unreviewed_push_before_the_next_read_is_still_a_revocation(
    repo: SignedRepo,
) -> None:
    """The break (red team b4): carol deletes the file, alice puts the same bytes back unsigned before the
    keeper reads again; the keeper compared snapshots only and the grant stayed ACTIVE."""
    keeper_, binder = keeper()
    sync(repo, keeper_)
    text = (repo.work / ALICE).read_text()
    repo.git("rm", "-q", ALICE)
    repo.commit("carol", "revoke alice-debug")
    repo.write(ALICE, text)
    repo.commit("alice", "put it back", signed=False)
    said = sync(repo, keeper_)
    assert binder.subjects() == set(), said
    assert any("revoked" in line for line in said), said


@pytest.mark.parametrize("again", ["unsigned push", "merge by bob"])
def test_an_active_grant_whose_run_no_longer_starts_at_its_approving_merge_is_revoked(
    repo: SignedRepo, again: str
) -> None:
    """The general rule: whatever puts the bytes back after a deletion (even a new signed merge), the run of the
    blob now starts elsewhere, so the evidence the grant was activated on is gone: revoked, not re-activated."""
    keeper_, binder = keeper()
    sync(repo, keeper_)
    text = (repo.work / ALICE).read_text()
    repo.git("rm", "-q", ALICE)
    repo.commit("carol", "revoke")
    if again == "merge by bob":
        repo.request("alice", "again", ALICE, text)
        repo.merge("bob", "again")
    else:
        repo.write(ALICE, text)
        repo.commit("alice", "again", signed=False)
    sync(repo, keeper_)
    assert binder.subjects() == set()


MERGES = st.sampled_from(["a" * 40, "b" * 40, ""])


@given(merge=MERGES, shift=st.sampled_from([0, 1, -3600]), approvers=st.sampled_from([("bob",), ("carol",), ()]),
       problem=st.sampled_from(["", "pushed straight to the branch"]))  # fmt: skip
@example(merge="a" * 40, shift=0, approvers=("bob",), problem="")  # the evidence it was activated on: kept
@example(merge="b" * 40, shift=0, approvers=("bob",), problem="")  # the same second, another merge: revoked
def test_an_active_grant_stays_active_exactly_while_its_evidence_is_the_one_it_was_activated_on(
    merge: str, shift: int, approvers: tuple[str, ...], problem: str
) -> None:
    """The general rule, on the pure decision: any difference in the approving merge, its time or its approvers,
    or any problem with the evidence now, revokes; the very same evidence keeps it active until it expires."""
    now = datetime.now(UTC)
    g = Grant("g", ALICE, f"{ALICE}:1", "debug", "User", "alice", "ClusterRole", "view", "shop", timedelta(hours=1),
              "why", "0" * 40)  # fmt: skip
    remembered = Remembered(State.ACTIVE, now, now, now + timedelta(hours=1), "bob", merge="a" * 40)
    approval = Approval(Identity("alice"), tuple(Identity(a) for a in approvers), now + timedelta(seconds=shift),
                        problem, merge)  # fmt: skip
    same = (merge, shift, approvers, problem) == ("a" * 40, 0, ("bob",), "")
    assert decide(g, {}, approval, remembered, now).state is (State.ACTIVE if same else State.REVOKED)
    assert decide(g, {}, None, remembered, now).state is State.ACTIVE  # settled by the clock alone when not read
