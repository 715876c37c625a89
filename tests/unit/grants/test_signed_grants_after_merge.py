"""signed-merge mode, the case analogous to a late review in github mode: the approver of an ACTIVE grant is the
signer of the merge that brought its blob, a fact of that one signed commit. Whatever anyone adds to the branch
afterwards without touching the file (a merge of the same request branch again, signed by a stranger or by
another trusted person, an unrelated push) neither adds nor removes an approver: the grant stays bound."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gitopsguard.grants.model import State
from tests.signedrepo import SignedRepo, grant
from tests.unit.grants.keeperkit import keeper, sync

ALICE = "access/grants/alice.yaml"


def remerge_the_request(repo: SignedRepo, person: str, signed: bool) -> None:
    repo.git("checkout", "-q", "-b", "again", "ask", person=person)
    repo.write("notes/again.txt", "again\n")
    repo.commit(person, "again", signed=signed)
    repo.git("checkout", "-q", "main", person=person)
    repo.merge(person, "again", signed=signed)


def unrelated_push(repo: SignedRepo, person: str, signed: bool) -> None:
    repo.write("notes/unrelated.txt", "hello\n")
    repo.commit(person, "unrelated", signed=signed)


@pytest.mark.parametrize("person,signed", [("mallory", True), ("alice", False), ("carol", True)])
@pytest.mark.parametrize("change", [remerge_the_request, unrelated_push])
def test_later_commits_that_leave_the_grant_file_alone_are_refused_as_a_way_to_revoke_it(
    tmp_path: Path, change: Callable[[SignedRepo, str, bool], None], person: str, signed: bool
) -> None:
    repo = SignedRepo(tmp_path, "shop")
    repo.request("alice", "ask", ALICE, grant("alice-debug", "shop", "2h"))
    repo.merge("bob", "ask")
    keeper_, binder = keeper()
    sync(repo, keeper_)
    before = binder.subjects()
    assert before, "the grant must be active first"
    change(repo, person, signed)
    said = sync(repo, keeper_)
    assert binder.subjects() == before, said
    assert {e.memory.state for e in keeper_.entries.values()} == {State.ACTIVE}
    assert {e.memory.approver for e in keeper_.entries.values()} == {"bob"}
