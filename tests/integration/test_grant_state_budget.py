"""The grants state stays within what the API server stores, whatever a contributor pushes: grant documents
are bounded per file and per repository before anything is decided (an over-budget file is denied as one
entry, nothing of it remembered), the state is compressed, and a save that fails anyway is reported and keeps
the last commit read, so a restarted keeper still refuses a rewound or swapped branch. Real API server, real
signed repository."""

from __future__ import annotations

import json
import os

import pytest
from kubernetes import client

from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError
from gitopsguard.grants.keeper import GrantKeeper
from gitopsguard.grants.model import Remembered, State
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from gitopsguard.grants.store import Entry, GrantStore
from tests.integration.grantsetup import Clock, keeper_for, settles, signed
from tests.signedrepo import SignedRepo, grant

pytestmark = pytest.mark.integration
__all__ = ["signed"]  # the fixture
ALICE = "access/grants/alice.yaml"
LONG = "x" * 230


def read(repo: SignedRepo, keeper: GrantKeeper) -> list[str]:
    """One round at the head of main, as the controller runs it (the commit and history remembered)."""
    verifier = SignedMergeVerifier(repo.work, load_trust(repo.trust), repo.root / "state")
    head = repo.git("rev-parse", "HEAD")
    return [f"{t.event}: {t.detail}" for t in keeper.sync(repo.work, verifier, repo.blob_of, head, "main")]


def junk(file: int, doc: int) -> str:
    return (f"apiVersion: gitopsguard.io/v1alpha1\nkind: Grant\nmetadata: {{name: j{file:02d}{doc:03d}{LONG}}}\n"
            f"spec:\n  policy: p{LONG}\n  subject: {{kind: User, name: u{LONG}}}\n"
            f"  role: {{kind: ClusterRole, name: r{LONG}}}\n  namespace: n{LONG}\n  duration: 1h\n")  # fmt: skip


def test_an_unreviewed_push_of_many_large_grant_files_does_not_stop_an_approved_grant_being_kept(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str
) -> None:
    """The break (red team b7): 30 files of 45 documents with 230-character names made every save fail ("Too
    long"); alice's grant approved afterwards lived only in memory, and a restart found an empty state."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    for file in range(30):
        repo.write(f"access/grants/junk-{file}.yaml", "---\n".join(junk(file, doc) for doc in range(45)))
    repo.commit("alice", "junk", signed=False)
    said = read(repo, keeper)
    assert sum("denied" in line and "more than the 10" in line for line in said) == 30, said[:3]
    repo.request("alice", "ask", ALICE, grant("alice-debug", namespace, "10m"))
    head = repo.merge("bob", "ask")
    read(repo, keeper)
    restarted = keeper_for(admin_api, namespace, clock)
    assert restarted.last_read("main") == head
    assert {e.name: e.memory.state for e in restarted.entries.values()} == {"alice-debug": State.ACTIVE}
    assert settles(admin_api, "alice", "list", "pods", namespace)


def test_a_save_over_budget_is_refused_loudly_and_keeps_the_last_commit_read(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str
) -> None:
    """The general rule's last line: whatever makes the state too big, the save says so (naming the ConfigMap
    and what to do) and the commit read is kept, so a restarted keeper still checks the branch against it."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    now = clock()
    for _ in range(6000):  # settled grants, their file present: none may be forgotten; incompressible ids
        memory = Remembered(State.REVOKED, now, reason=os.urandom(150).hex())
        keeper.entries[os.urandom(100).hex()] = Entry(memory, "g", "User alice", "ClusterRole view", "", ALICE)
    repo.write(ALICE, grant("alice-debug", namespace))
    head = repo.commit("alice", "a file", signed=False)
    with pytest.raises(ClusterError, match=f"ConfigMap/{namespace}/gitopsguard-grants: .*last commit read"):
        read(repo, keeper)
    assert GrantStore(RawApi(admin_api), namespace).read().commit == head
    assert keeper_for(admin_api, namespace, clock).last_read("main") == head


def test_a_state_saved_before_compression_is_still_read_and_then_saved_compressed(
    admin_api: client.ApiClient, namespace: str
) -> None:
    """Upgrading reads the old ConfigMap (its rows as JSON text under data.grants, ids name@blob[:12]), so the
    keeper starts from it (an old id then matches nothing and its binding is swept); the next save replaces it."""
    raw, now = RawApi(admin_api), "2026-01-01T00:00:00+00:00"
    row = {"state": "DENIED", "firstSeen": now, "start": "", "expires": "", "approver": "", "reason": "r",
           "name": "alice-debug", "subject": "User alice", "role": "ClusterRole view", "scope": "", "path": ALICE,
           "gone": "", "grant": None}  # fmt: skip
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gitopsguard-grants", "namespace": namespace},
            "data": {"grants": json.dumps({"alice-debug@0123456789ab": row}), "commit": "c0ffee"}}  # fmt: skip
    status, _ = raw.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/configmaps/gitopsguard-grants",
        body=body,
        content_type="application/apply-patch+yaml",
        query={"fieldManager": "gitopsguard", "force": "true"},
    )  # as the old keeper saved it
    assert status == 201
    store = GrantStore(raw, namespace)
    kept = store.read()
    assert set(kept.entries) == {"alice-debug@0123456789ab"} and kept.commit == "c0ffee"
    store.save(kept.entries, kept.commit)
    status, live = raw.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/gitopsguard-grants")
    assert "grants" not in live["data"] and set(store.read().entries) == {"alice-debug@0123456789ab"}
