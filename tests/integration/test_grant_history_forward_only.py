"""One history rule for every reader of the repository: the keeper, like reconcile, follows the branch only
forward. It remembers the last commit it read (in its state ConfigMap, so a restart keeps it) and refuses a
branch rewound or rewritten behind it, reporting it and keeping its current state; active grants still
expire meanwhile. On the real API server, from a real git repository."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.commands.grants import repository_sync
from gitopsguard.errors import SourceError
from gitopsguard.grants.keeper import GrantKeeper, Transition
from gitopsguard.grants.signed import load_trust
from gitopsguard.source import GitSource, SourceSpec
from tests.integration.grantsetup import Clock, keeper_for, settles, signed
from tests.signedrepo import SignedRepo, grant

pytestmark = pytest.mark.integration
__all__ = ["signed"]  # the fixture
ALICE = "access/grants/alice.yaml"


def reader(repo: SignedRepo, keeper: GrantKeeper, workdir: Path) -> Callable[[], list[Transition]]:
    source = GitSource(SourceSpec(str(repo.work), "main"), workdir)
    return repository_sync(keeper, source, load_trust(repo.trust), workdir / "state")


def refusal(read: Callable[[], list[Transition]]) -> str | None:
    try:
        read()
    except SourceError as error:
        return str(error)
    return None


def granted(repo: SignedRepo, namespace: str) -> str:
    repo.request("alice", "ask", ALICE, grant("alice-debug", namespace, "10m"))
    return repo.merge("bob", "ask")


def test_a_force_push_that_undoes_a_revocation_is_refused(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """The break: the keeper fetched with no memory of what it had read, so a branch force-pushed back to
    before the revocation brought the revoked grant back to life."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    read = reader(repo, keeper, tmp_path / "grants")
    merged = granted(repo, namespace)
    assert any(t.event == "activated" for t in read())
    repo.git("rm", "-q", ALICE)
    revoked = repo.commit("carol", "Revoke alice's access")
    assert any(t.event == "revoked" for t in read())
    assert not settles(admin_api, "alice", "list", "pods", namespace)

    repo.git("reset", "-q", "--hard", merged)  # the force-push
    refused = refusal(read)
    assert not settles(admin_api, "alice", "list", "pods", namespace), "the rewind gave alice her access back"
    assert refused is not None and "does not contain the applied commit" in refused
    assert keeper.commit == revoked

    restarted = keeper_for(admin_api, namespace, clock)  # a new process, with a fresh clone
    assert restarted.commit == revoked
    assert refusal(reader(repo, restarted, tmp_path / "fresh")) is not None
    assert not settles(admin_api, "alice", "list", "pods", namespace)


def _to_an_ancestor(repo: SignedRepo, granted_at: str) -> None:
    repo.git("reset", "-q", "--hard", f"{granted_at}^1")  # before the grant was even merged


def _to_a_divergent_history(repo: SignedRepo, granted_at: str) -> None:
    repo.git("reset", "-q", "--hard", f"{granted_at}^1")
    repo.write("README.md", "rewritten\n")
    repo.commit("carol", "Another history")


def _to_an_unrelated_history(repo: SignedRepo, granted_at: str) -> None:
    repo.git("checkout", "-q", "--orphan", "other")
    repo.commit("carol", "Start again")
    repo.git("branch", "-q", "-M", "other", "main")


@pytest.mark.parametrize("rewind", [_to_an_ancestor, _to_a_divergent_history, _to_an_unrelated_history])
def test_any_rewound_history_is_refused_and_active_grants_still_expire(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, tmp_path: Path,
    rewind: Callable[[SignedRepo, str], None],
) -> None:  # fmt: skip
    """The general rule: a branch that does not contain the last commit read is refused, whichever way it
    was rewritten; state stays as it was (a rewind neither grants nor revokes), and expiry goes on."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    read = reader(repo, keeper, tmp_path / "grants")
    merged = granted(repo, namespace)
    assert any(t.event == "activated" for t in read())
    before = dict(keeper.entries)

    rewind(repo, merged)
    assert refusal(read) is not None
    assert keeper.entries == before and keeper.commit == merged
    assert settles(admin_api, "alice", "list", "pods", namespace)  # not revoked by the rewind either

    clock.offset = timedelta(minutes=10, seconds=1)
    assert [t.event for t in keeper.tend()][:1] == ["expired"]
    assert not settles(admin_api, "alice", "list", "pods", namespace)


def test_a_branch_that_moves_forward_is_followed_and_remembered(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    read = reader(repo, keeper, tmp_path / "grants")
    read()
    merged = granted(repo, namespace)
    assert any(t.event == "activated" for t in read())
    assert keeper.commit == merged and keeper_for(admin_api, namespace, clock).commit == merged


def test_another_repository_starts_a_history_of_its_own(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """The controller pointed at another repository (or branch) is not a rewind of the first one."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    reader(repo, keeper, tmp_path / "grants")()
    other = SignedRepo(tmp_path / "other", namespace)
    assert refusal(reader(other, keeper, tmp_path / "other-grants")) is None
    assert keeper.commit == other.git("rev-parse", "HEAD")
    repo.git("commit", "-q", "--allow-empty", "-m", "forward")
    assert refusal(reader(repo, keeper, tmp_path / "grants")) is None  # back to the first: taken afresh


POLICY = "access/policies/debug.yaml"


def _wide_then_narrow_again(repo: SignedRepo) -> tuple[str, str]:
    """carol (an administrator) signs a wide policy W, then the narrow one again N: W was approved once, and
    N is what is in force. Returns (W, N)."""
    narrow = (repo.work / POLICY).read_text()
    repo.write(POLICY, narrow.replace("maxDuration: 2h", "maxDuration: 30d"))
    wide = repo.commit("carol", "A wide policy, for the migration")
    repo.write(POLICY, narrow)
    return wide, repo.commit("carol", "Narrow again")


def _swap_first_parent(repo: SignedRepo, first: str, second: str) -> str:
    """alice pushes a merge whose FIRST parent is ``first`` (an older commit) and second the current head, with
    ``first``'s tree: the old first-parent chain is "the branch" again, and the head is still an ancestor."""
    tree = repo.git("rev-parse", f"{first}^{{tree}}", person="alice")
    merge = repo.git("commit-tree", tree, "-p", first, "-p", second, "-m", "Merge main", person="alice")
    repo.git("reset", "-q", "--hard", merge, person="alice")
    return merge


def test_a_merge_that_puts_an_old_commit_first_is_refused_like_a_rewind(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """The break: all evidence follows first parents. A pushed merge whose first parent is an old commit W (an
    administrator's wide policy, since narrowed) and whose second parent is the head N still contains N, so
    the fetch took it; the first-parent walk then found W as the policy's last approved version, and a grant
    approved after it lasted 30 days instead of 2 hours."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    read = reader(repo, keeper, tmp_path / "grants")
    wide, narrow = _wide_then_narrow_again(repo)
    read()
    assert keeper.commit == narrow
    _swap_first_parent(repo, wide, narrow)
    repo.request("alice", "ask", ALICE, grant("alice-debug", namespace, "30d"))
    repo.merge("bob", "ask")  # bob merges alice's 30-day request on top of the swapped branch
    refused = refusal(read)
    lengths = [e.memory.expires - e.memory.start for e in keeper.entries.values() if e.memory.start
               and e.memory.expires]  # fmt: skip
    assert all(length <= timedelta(hours=2) for length in lengths), lengths
    assert refused is not None and "first-parent" in refused, refused
    assert keeper.commit == narrow
