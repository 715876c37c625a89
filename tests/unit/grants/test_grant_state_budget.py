"""What a contributor can push is bounded before anything is decided (documents per file and per repository,
bytes of names), so the state the keeper saves always fits; and a keeper that remembers grants but not the last
commit it read decides nothing new until it has one again (fail closed)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gitopsguard.grants.keeper import GrantKeeper, read_grant_files
from gitopsguard.grants.load import MAX_GRANT_BYTES, MAX_GRANTS, MAX_GRANTS_PER_FILE, FileText
from gitopsguard.grants.model import Remembered, State
from gitopsguard.grants.store import BUDGET, Entry, Kept, _inflate, fit
from tests.signedrepo import SignedRepo, grant
from tests.unit.grants.keeperkit import MemoryBinder, MemoryStore, sync

ALICE = "access/grants/alice.yaml"


def test_a_keeper_remembering_grants_but_no_last_commit_activates_nothing_new_that_round(tmp_path: Path) -> None:
    """The first-parent check is skipped when no last commit is known; with grants remembered, that is a state
    that lost its commit (a failed save, an edited ConfigMap): nothing new is activated until a commit is read."""
    repo = SignedRepo(tmp_path, "shop")
    repo.request("alice", "ask", ALICE, grant("alice-debug", "shop"))
    repo.merge("bob", "ask")
    now = datetime.now(UTC)
    old = Entry(Remembered(State.DENIED, now), "old", "User bob", "ClusterRole view", "", "access/grants/old.yaml")
    binder = MemoryBinder()
    keeper = GrantKeeper(binder, MemoryStore(Kept({"old": old})))
    sync(repo, keeper)
    assert binder.subjects() == set() and any("last commit read" in p for p in keeper.problems)
    sync(repo, keeper)
    assert binder.subjects() == {("RoleBinding", "shop", "alice")}


def test_a_file_of_more_documents_than_one_request_holds_is_denied_as_one_entry() -> None:
    text = "---\n".join(grant(f"g{n}", "shop") for n in range(MAX_GRANTS_PER_FILE + 1))
    grants, broken = read_grant_files([(ALICE, text)], lambda _: "f" * 40)
    assert grants == [] and len(broken) == 1 and broken[0][0] == ALICE


def test_files_past_the_repository_budget_are_denied_whole_and_the_rest_read() -> None:
    files: list[FileText] = [
        (f"access/grants/f{n:04d}.yaml", "---\n".join(grant(f"g{n}-{d}", "shop") for d in range(10)))
        for n in range(MAX_GRANTS // 10 + 3)
    ]
    grants, broken = read_grant_files(files, lambda _: "f" * 40)
    assert len(grants) == MAX_GRANTS and [where for where, _ in broken] == [name for name, _ in files[-3:]]


@settings(max_examples=10, deadline=None)
@given(st.integers(1, MAX_GRANTS), st.integers(0, 1000), st.sampled_from([1, 2, 4]))
def test_whatever_the_reading_budget_lets_through_is_saved_within_the_state_budget(
    present: int, gone: int, width: int
) -> None:
    """The general rule: up to MAX_GRANTS grants whose names fill MAX_GRANT_BYTES with characters of 1 to 4
    bytes (random, so nothing compresses), with long decision reasons, plus any number of settled grants whose
    file is gone: the state fits, and every grant whose file is present is kept (only gone ones make room)."""
    now, share = datetime.now(UTC), MAX_GRANT_BYTES // present // 6 // width

    def chars(n: int) -> str:
        if width == 1:
            return "".join(chr(0x21 + b % 94) for b in os.urandom(max(n, 1)))
        low = 0x10000 if width == 4 else 0x800
        return "".join(chr(low + int.from_bytes(os.urandom(2)) % 0xC000) for _ in range(max(n, 1)))

    entries = {}
    for n in range(present + gone):
        path = f"access/grants/{chars(share)}.yaml"
        memory = Remembered(State.DENIED, now, reason=chars(400))
        gone_since = now - timedelta(days=n) if n >= present else None
        entry = Entry(memory, chars(share), f"User {chars(share)}", f"ClusterRole {chars(share)}",
                      f"namespace {chars(share)}", path, None, gone_since)  # fmt: skip
        entries[f"{os.urandom(20).hex()}:0:{path}"] = entry
    packed = fit(entries)
    assert packed is not None and len(packed) <= BUDGET
    saved = json.loads(_inflate(packed))
    assert {gid for gid, e in entries.items() if e.gone is None} <= set(saved)


def test_repeated_unreviewed_edits_of_one_file_do_not_grow_what_is_remembered(tmp_path: Path) -> None:
    """Identity is the content: each edit is a new request, and the denied ones it replaces protect nothing
    (a denied request is decided afresh whenever it comes back), so they are not kept while the path exists."""
    repo = SignedRepo(tmp_path, "shop")
    binder = MemoryBinder()
    keeper = GrantKeeper(binder, MemoryStore())
    for edit in range(20):
        repo.write(ALICE, "---\n".join(grant(f"g{edit}-{d}", "shop") for d in range(MAX_GRANTS_PER_FILE)))
        repo.commit("alice", f"edit {edit}", signed=False)
        sync(repo, keeper)
    assert len(keeper.entries) == MAX_GRANTS_PER_FILE
