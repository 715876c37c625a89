"""Access always ends: an active grant expires on time by the controller's clock and its binding is removed,
whatever the repository holds meanwhile. A malformed grant file is denied alone (file and line) and never
stops the keeper, before or after a restart; a repository that cannot be read at all is reported and
retried while expiry goes on from remembered state. On the real API server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.errors import SourceError
from gitopsguard.grants.bindings import binding_name
from gitopsguard.grants.keeper import GrantKeeper, Transition
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from tests.integration.grantsetup import Clock, allowed, keeper_for, signed, sync
from tests.signedrepo import SignedRepo, grant

pytestmark = pytest.mark.integration
__all__ = ["signed"]  # the fixture
ALICE = "access/grants/alice.yaml"
BROKEN = "access/grants/broken.yaml"
BAD_FILES = {
    "subject given as a string": grant("broken", "NS").replace("subject: {kind: User, name: alice}", "subject: alice"),
    "a duration too large for a timedelta": grant("broken", "NS", duration="99999999999d"),
}
LEAD = timedelta(seconds=2)  # how far ahead of the controller's clock the expiry is when the loop starts


def activate(repo: SignedRepo, keeper: GrantKeeper, admin_api: client.ApiClient, namespace: str) -> None:
    repo.request("alice", "ask", ALICE, grant("alice-debug", namespace, "10m"))
    repo.merge("bob", "ask")
    assert any(e.startswith("activated") for e in sync(repo, keeper))
    assert allowed(admin_api, "alice", "list", "pods", namespace)


def run_keeper(keeper: GrantKeeper, read: Callable[[], list[Transition]], seen: list[Transition]) -> Callable[[], None]:
    """The keeper's own loop in a thread, as `run` starts it; returns how to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=keeper.run, args=(stop, read, seen.extend, 0.5), daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(10)

    return halt


def seconds_until_alice_loses_access(api: client.ApiClient, namespace: str, limit: float = 10.0) -> float:
    start = time.monotonic()
    while allowed(api, "alice", "list", "pods", namespace) and time.monotonic() - start < limit:
        time.sleep(0.1)
    return time.monotonic() - start


def binding_gone(api: client.ApiClient, keeper: GrantKeeper, namespace: str) -> bool:
    (g,) = [e.grant for e in keeper.entries.values() if e.path == ALICE and e.grant]
    try:
        client.RbacAuthorizationV1Api(api).read_namespaced_role_binding(binding_name(g), namespace)
    except ApiException as error:
        return bool(error.status == 404)
    return False


@pytest.mark.parametrize("restarted", [False, True], ids=["running", "restarted"])
@pytest.mark.parametrize("bad", sorted(BAD_FILES))
def test_an_active_grant_expires_on_time_while_a_malformed_grant_file_lands(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str, bad: str, restarted: bool
) -> None:
    """The break: the malformed file killed the keeper thread at its next read (and again after every
    restart), so alice's grant outlived its expiry and nothing was swept."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    activate(repo, keeper, admin_api, namespace)
    repo.write(BROKEN, BAD_FILES[bad].replace("NS", namespace))
    repo.commit("alice", "a malformed grant lands on the branch")
    if restarted:
        keeper = keeper_for(admin_api, namespace, clock)  # a new process: only the state ConfigMap remains
    clock.offset = timedelta(minutes=10) - LEAD
    verifier = SignedMergeVerifier(repo.work, load_trust(repo.trust), repo.root / "state")
    seen: list[Transition] = []
    halt = run_keeper(keeper, lambda: keeper.sync(repo.work, verifier, repo.blob_of), seen)
    try:
        took = seconds_until_alice_loses_access(admin_api, namespace)
    finally:
        halt()
    assert took < LEAD.total_seconds() + 1.5, f"alice kept access {took:.1f}s; expiry was {LEAD} away"
    assert binding_gone(admin_api, keeper, namespace)
    assert [e.memory.state for e in keeper.entries.values() if e.path == ALICE] == ["EXPIRED"]
    denied = [t for t in seen if t.event == "denied"]
    assert [t.grant.split(":")[0] for t in denied] == [BROKEN], seen
    assert denied[0].detail.startswith(f"{BROKEN}:")


def test_expiry_goes_on_while_the_repository_cannot_be_read_at_all(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str
) -> None:
    """The general rule: expiry and the sweep run first, from remembered state, never waiting on a read."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    activate(repo, keeper, admin_api, namespace)
    keeper = keeper_for(admin_api, namespace, clock)  # restarted, and the repository is unreachable
    clock.offset = timedelta(minutes=10) - LEAD
    reads = []

    def unreadable() -> list[Transition]:
        reads.append(time.monotonic())
        raise SourceError("git@example.com:org/cluster-config.git: git fetch failed: connection refused")

    halt = run_keeper(keeper, unreadable, [])
    try:
        took = seconds_until_alice_loses_access(admin_api, namespace)
        time.sleep(1.2)  # a few more iterations: each failed read is reported and retried
    finally:
        halt()
    assert took < LEAD.total_seconds() + 1.5
    assert binding_gone(admin_api, keeper, namespace)
    assert len(reads) >= 2 and keeper.failures >= 2
    assert any(p.startswith("git@example.com:org/cluster-config.git: git fetch failed") for p in keeper.problems)


def test_a_bug_in_a_round_ends_the_keeper_loud_after_expiry_has_run(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str
) -> None:
    """Not swallowed: an exception that is not a reported failure (a bug) leaves ``run``, so that lifeline
    ends the process and it is restarted; expiry of what was due has already happened by then."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    activate(repo, keeper, admin_api, namespace)
    clock.offset = timedelta(minutes=10, seconds=1)

    def buggy() -> list[Transition]:
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        keeper.run(threading.Event(), buggy, lambda _: None, 30.0)
    assert binding_gone(admin_api, keeper, namespace)
    assert [e.memory.state for e in keeper.entries.values()] == ["EXPIRED"]


def test_a_read_of_the_repository_that_hangs_does_not_hold_up_expiry(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str
) -> None:
    """A fetch from a slow remote, or a forge that answers slowly, must not keep access alive: expiry runs on
    a timer of its own, not between reads."""
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    activate(repo, keeper, admin_api, namespace)
    clock.offset = timedelta(minutes=10) - LEAD
    release = threading.Event()

    def hanging() -> list[Transition]:
        release.wait(30)
        return []

    halt = run_keeper(keeper, hanging, [])
    try:
        took = seconds_until_alice_loses_access(admin_api, namespace)
    finally:
        release.set()
        halt()
    assert took < LEAD.total_seconds() + 1.5, f"alice kept access {took:.1f}s while a read hung"
    assert binding_gone(admin_api, keeper, namespace)
