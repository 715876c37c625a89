"""A grant is one document of one file at one exact content: its identity is the full blob id, the path and the
document's index. Two documents (in one file or in two) that share a metadata.name are refused, and what is
bound is exactly what was decided: never another document that happens to share an id with it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.grants.load import load_grant_file
from tests.signedrepo import SignedRepo, grant
from tests.unit.grants.keeperkit import keeper, sync

ALICE = "access/grants/alice.yaml"
HERE = Path(__file__).parent
MALLORY_CLUSTER_WIDE = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Grant
metadata: {name: alice-debug}
spec:
  policy: debug
  subject: {kind: User, name: mallory}
  role: {kind: ClusterRole, name: view}
  duration: 1h
  reason: "x"
"""


@pytest.fixture
def repo(tmp_path: Path) -> SignedRepo:
    return SignedRepo(tmp_path, "shop")


def test_a_second_document_with_the_same_name_in_an_approved_file_is_refused_and_binds_nothing(
    repo: SignedRepo,
) -> None:
    """The break (red team b1): both documents shared the id name@blob; the second was taken as the remembered
    ACTIVE grant and mallory got a ClusterRoleBinding no policy allows."""
    keeper_, binder = keeper()
    repo.request("alice", "ask", ALICE, grant("alice-debug", "shop") + "---\n" + MALLORY_CLUSTER_WIDE)
    repo.merge("bob", "ask")
    said = sync(repo, keeper_)
    assert binder.subjects() == set()
    assert any("denied" in line and "alice-debug" in line and "more than one" in line for line in said), said


def test_a_name_used_in_two_files_is_one_grant_and_both_are_refused(repo: SignedRepo) -> None:
    keeper_, binder = keeper()
    repo.request("alice", "ask", ALICE, grant("alice-debug", "shop"))
    repo.merge("bob", "ask")
    sync(repo, keeper_)
    assert binder.subjects() == {("RoleBinding", "shop", "alice")}
    repo.write("access/grants/zz.yaml", MALLORY_CLUSTER_WIDE)
    repo.commit("alice", "another alice-debug", signed=False)
    said = sync(repo, keeper_)
    assert binder.subjects() == set(), said


def test_an_unreviewed_file_whose_blob_id_shares_twelve_digits_with_the_approved_one_binds_nothing(
    repo: SignedRepo,
) -> None:
    """The break (red team b6): the id was name@blob[:12]; a birthday search found a benign and an evil grant
    whose blob ids share 12 hex digits, and the unsigned evil one was bound as the approved benign one."""
    benign = (HERE / "collide-benign.txt").read_text() + "# n: 0005c156\n"
    evil = (HERE / "collide-evil.txt").read_text() + "# n: 0665faee\n"
    ids = [subprocess.run(["git", "hash-object", "--stdin"], input=t, capture_output=True, text=True,
                          check=True).stdout.strip() for t in (benign, evil)]  # fmt: skip
    assert ids[0][:12] == ids[1][:12] and ids[0] != ids[1]
    keeper_, binder = keeper()
    repo.request("alice", "ask", ALICE, benign)
    repo.merge("bob", "ask")
    sync(repo, keeper_)
    assert binder.subjects() == {("RoleBinding", "shop", "alice")}
    repo.write(ALICE, evil)
    repo.commit("alice", "tidy", signed=False)
    said = sync(repo, keeper_)
    assert binder.subjects() == set(), said


NAMES = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=6)


@given(NAMES)
@example(["alice-debug", "alice-debug"])
def test_a_file_is_read_only_when_its_documents_names_are_all_different(names: list[str]) -> None:
    """The general rule: any repeated name refuses the whole file (no document of it is a grant), and a file
    of distinct names gives one grant per document, each with its own identity."""
    text = "---\n".join(grant(name, "shop") for name in names)
    grants, broken = load_grant_file(ALICE, text, lambda _: "f" * 40)
    if len(set(names)) < len(names):
        assert grants == [] and broken
    else:
        assert [g.name for g in grants] == names and len({g.id for g in grants}) == len(names)


@given(st.sampled_from(["path", "index", "content"]), st.text(min_size=1, max_size=3))
def test_grants_differing_in_path_index_or_any_digit_of_their_blob_have_different_ids(part: str, tail: str) -> None:
    (one,), _ = load_grant_file(ALICE, grant("alice-debug", "shop"), lambda _: "a" * 40)
    from dataclasses import replace

    other = {"path": replace(one, path=ALICE + tail), "index": replace(one, index=one.index + 1 + len(tail)),
             "content": replace(one, content="a" * 39 + "b")}[part]  # fmt: skip
    assert other.id != one.id


def test_an_active_grant_remembered_under_an_old_twelve_digit_id_is_swept_when_nothing_matches_it(
    repo: SignedRepo,
) -> None:
    """Migration, fail closed: an entry of the old state ConfigMap (name@blob[:12]) matches no grant any more:
    it is revoked and its binding swept; the approved file is decided afresh under its full identity."""
    from datetime import UTC, datetime, timedelta

    from gitopsguard.grants.model import Grant, Remembered, State
    from gitopsguard.grants.store import Entry, Kept
    from tests.unit.grants.keeperkit import MemoryBinder, MemoryStore

    repo.request("alice", "ask", ALICE, grant("alice-debug", "shop"))
    repo.merge("bob", "ask")
    blob, now, head = repo.blob_of(ALICE), datetime.now(UTC), repo.git("rev-parse", "HEAD")
    old = Grant("alice-debug", ALICE, f"{ALICE}:1", "debug", "User", "mallory", "ClusterRole", "view", "",
                timedelta(hours=1), "x", blob)  # fmt: skip
    memory = Remembered(State.ACTIVE, now, now, now + timedelta(hours=1), "bob")
    entry = Entry(memory, old.name, "User mallory", "ClusterRole view", old.scope, ALICE, old)
    binder = MemoryBinder()
    binder.bind(old, now + timedelta(hours=1))
    from gitopsguard.grants.keeper import GrantKeeper

    keeper_ = GrantKeeper(binder, MemoryStore(Kept({f"alice-debug@{blob[:12]}": entry}, head, "main")))
    said = sync(repo, keeper_)
    assert binder.subjects() == {("RoleBinding", "shop", "alice")}, said
    assert keeper_.entries[f"alice-debug@{blob[:12]}"].memory.state is State.REVOKED


def test_a_remembered_active_grant_is_never_replaced_by_what_the_file_now_says(repo: SignedRepo) -> None:
    """Defence in depth behind the identity: should an ACTIVE entry's remembered grant ever differ from the grant
    read under its id, neither is bound: the entry is revoked, and no binding is made from undecided content."""
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from gitopsguard.grants.keeper import GrantKeeper
    from gitopsguard.grants.load import load_grants
    from gitopsguard.grants.model import Remembered, State
    from gitopsguard.grants.store import Entry, Kept
    from tests.unit.grants.keeperkit import MemoryBinder, MemoryStore

    repo.request("alice", "ask", ALICE, grant("alice-debug", "shop"))
    head = repo.merge("bob", "ask")
    (read,), _ = load_grants(repo.work, repo.blob_of)
    other = replace(read, subject="mallory", namespace="")
    now, approved = datetime.now(UTC), datetime.fromtimestamp(int(repo.git("log", "-1", "--format=%ct")), UTC)
    memory = Remembered(State.ACTIVE, now, approved, now + timedelta(hours=1), "bob", merge=head)  # evidence holds
    entry = Entry(memory, read.name, "User mallory", "ClusterRole view", other.scope, ALICE, other)
    binder = MemoryBinder()
    keeper_ = GrantKeeper(binder, MemoryStore(Kept({read.id: entry}, head, "main")))
    sync(repo, keeper_)
    assert binder.subjects() == set() and keeper_.entries[read.id].memory.state is State.REVOKED
