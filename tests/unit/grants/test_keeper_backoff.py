"""The grants keeper's reading round goes by what its failure says of itself (errors.py ``retryable``): a round
the API server throttled is tried again after the server's delay, not a whole interval later (before: every
failure waited the interval); a round that failed for good (a broken policy file) waits the interval, and is
reported once however many rounds it fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from itertools import pairwise

from gitopsguard.errors import GitOpsGuardError, PolicyError, TooManyRequestsError
from gitopsguard.grants.keeper import Transition
from tests.unit.grants.keeperkit import keeper
from tests.waiting import eventually

INTERVAL = 60.0  # far past each test: a round they see again was asked for by the backoff


def rounds_of(failure: GitOpsGuardError, *, fails: int) -> tuple[list[float], Callable[[], list[Transition]]]:
    """A sync that raises ``failure`` the first ``fails`` times, and the instants it was called."""
    called: list[float] = []

    def sync() -> list[Transition]:
        called.append(time.monotonic())
        if len(called) <= fails:
            raise failure
        return []

    return called, sync


def running(sync: Callable[[], list[Transition]]) -> tuple[threading.Event, list[str]]:
    grants, _ = keeper()
    stop = threading.Event()
    threading.Thread(target=grants.run, args=(stop, sync, lambda _: None, INTERVAL), daemon=True).start()
    return stop, grants.problems


def test_a_throttled_round_is_read_again_after_the_servers_delay() -> None:
    called, sync = rounds_of(TooManyRequestsError("ConfigMap/x/y: throttled", delay=0.5), fails=2)
    stop, problems = running(sync)
    try:
        eventually(lambda: len(called) == 3, timeout=10)
    finally:
        stop.set()
    assert all(0.45 <= later - earlier < 5 for earlier, later in pairwise(called)), called
    assert problems == ["ConfigMap/x/y: throttled"], "the same failure in a row is reported once"


def test_a_round_that_failed_for_good_waits_the_interval() -> None:
    called, sync = rounds_of(PolicyError("access/policies/p.yaml:3: not valid YAML"), fails=10)
    stop, problems = running(sync)
    try:
        eventually(lambda: len(called) == 1, timeout=10)
        time.sleep(2.0)
    finally:
        stop.set()
    assert len(called) == 1
    assert problems == ["access/policies/p.yaml:3: not valid YAML"]
