"""The grants state ConfigMap stays bounded: a settled grant (EXPIRED, REVOKED, DENIED) is forgotten once its
file has been gone from the repository for 30 days by the controller's clock, but never while its file still
exists, since that memory is what keeps a revoked or expired blob from coming back; a ConfigMap nearing the
API server's 1 MiB limit is reported. The keeper on the real API server, a real signed repository."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from kubernetes import client

from gitopsguard.cluster.rest import RawApi
from gitopsguard.grants.model import Remembered, State
from gitopsguard.grants.store import Entry, GrantStore
from tests.integration.grantsetup import Clock, keeper_for, settles, signed, sync
from tests.signedrepo import SignedRepo, grant

pytestmark = pytest.mark.integration
__all__ = ["signed"]  # the fixture
ALICE = "access/grants/alice.yaml"
MONTH = timedelta(days=30, minutes=1)


def remembered(admin_api: client.ApiClient, namespace: str) -> dict[str, State]:
    """What the state ConfigMap holds (a restarted keeper reads this)."""
    return {e.name: e.memory.state for e in GrantStore(RawApi(admin_api), namespace).load().values()}


def active_grant(repo: SignedRepo, namespace: str, name: str = "alice-debug") -> str:
    repo.request("alice", f"ask-{name}", ALICE, grant(name, namespace, "10m"))
    return repo.merge("bob", f"ask-{name}")


def test_a_settled_grant_whose_file_is_gone_is_forgotten_after_thirty_days(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str
) -> None:
    """The break: every grant ever seen stayed in the ConfigMap (each entry holding the grant), until the API
    server refused to store it."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    active_grant(repo, namespace)
    sync(repo, keeper)
    repo.git("rm", "-q", ALICE)
    repo.commit("carol", "Revoke")
    assert any(e.startswith("revoked") for e in sync(repo, keeper))
    clock.offset = timedelta(days=29)
    sync(repo, keeper)
    assert remembered(admin_api, namespace) == {"alice-debug": State.REVOKED}
    clock.offset = MONTH
    sync(repo, keeper)
    assert remembered(admin_api, namespace) == {}


def test_a_grant_settled_long_ago_is_remembered_thirty_days_from_its_files_removal(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str
) -> None:
    """Revoked by an edit (the file stays), then, months later, the file is removed by a push: the clock of
    forgetting starts at the removal, not at the revocation."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    active_grant(repo, namespace)
    sync(repo, keeper)
    repo.write(ALICE, (repo.work / ALICE).read_text().replace("10m", "5m"))
    repo.commit("alice", "edit", signed=False)
    sync(repo, keeper)
    clock.offset = MONTH * 3
    repo.git("rm", "-q", ALICE)
    repo.commit("alice", "remove it", signed=False)
    sync(repo, keeper)
    assert State.REVOKED in [e.memory.state for e in GrantStore(RawApi(admin_api), namespace).load().values()]
    clock.offset = MONTH * 4 + timedelta(minutes=1)
    sync(repo, keeper)
    assert remembered(admin_api, namespace) == {}


def test_a_revoked_blob_is_remembered_while_its_file_exists_and_never_reactivates(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str
) -> None:
    """alice's grant is revoked by an edit of its file (the path stays); months later the old content comes
    back through a valid signed request and merge: the old blob is still remembered as REVOKED (also by a
    restarted keeper), so it does not become active again."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    active_grant(repo, namespace)
    sync(repo, keeper)
    old = (repo.work / ALICE).read_text()
    repo.write(ALICE, old.replace("10m", "5m"))
    repo.commit("alice", "edit", signed=False)
    sync(repo, keeper)
    clock.offset = MONTH * 3
    sync(repo, keeper)
    saved = GrantStore(RawApi(admin_api), namespace).load().values()
    assert State.REVOKED in [e.memory.state for e in saved if e.name == "alice-debug"]
    repo.request("alice", "again", ALICE, old)  # the same blob, through a signed request and merge: only the
    repo.merge("bob", "again")  # memory of its revocation keeps it from being approved a second time
    restarted = keeper_for(admin_api, namespace, clock)
    sync(repo, restarted)
    states = [e.memory.state for e in restarted.entries.values() if e.name == "alice-debug"]
    assert State.ACTIVE not in states and State.REVOKED in states, states
    assert not settles(admin_api, "alice", "list", "pods", namespace)


@pytest.mark.parametrize("state", [State.EXPIRED, State.REVOKED, State.DENIED])
def test_the_rule_settled_and_gone_for_thirty_days_is_forgotten_and_nothing_else(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, state: State
) -> None:
    """The general rule, per state: remembered while the file exists (however old), or while it has been gone
    less than 30 days; forgotten after. ACTIVE and PENDING are never forgotten by age."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    now = clock()
    for name, path, since in [  # since: settled, and (for a file that is gone) gone, that long ago
        ("present-old", ALICE, now - MONTH * 12),
        ("gone-recent", "access/grants/x.yaml", now - timedelta(days=29)),
        ("gone-old", "access/grants/y.yaml", now - MONTH),
    ]:
        memory = Remembered(state, since, since, since)
        keeper.entries[name] = Entry(memory, name, "User alice", "ClusterRole view", "", path, None, since)
    for name, kept in [("pending-old", State.PENDING), ("active-old", State.ACTIVE)]:
        keeper.entries[name] = Entry(Remembered(kept, now - MONTH * 12), name, "User alice", "ClusterRole view", "",
                                     f"access/grants/{name}.yaml")  # fmt: skip
    repo.write(ALICE, grant("alice-debug", namespace))
    repo.commit("alice", "a file at that path", signed=False)
    sync(repo, keeper)
    left = set(remembered(admin_api, namespace))
    # A denied request is kept only while its content is at the head (none of these is alice-debug's).
    settled = {"present-old", "gone-recent"} if state is not State.DENIED else set()
    assert left - {"alice-debug"} == settled | {"pending-old", "active-old"}, left


def test_a_state_configmap_nearing_one_mebibyte_is_reported(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str
) -> None:
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    now = clock()
    for _ in range(1750):  # about 460 bytes each once packed (random: nothing compresses), their file still
        memory = Remembered(State.REVOKED, now, reason=os.urandom(100).hex())  # in the repository: all kept
        keeper.entries[os.urandom(200).hex()] = Entry(memory, "g", "User alice", "ClusterRole view", "", ALICE)
    repo.write(ALICE, grant("alice-debug", namespace))
    repo.commit("alice", "a file", signed=False)
    sync(repo, keeper)
    assert any("bytes of the 1 MiB a ConfigMap may hold" in p for p in keeper.problems), keeper.problems
