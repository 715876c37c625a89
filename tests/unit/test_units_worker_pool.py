"""The Units loop's worker pool (``fleet_pool.py``): who may start when, how many at once, what a stop and a
dead worker do. Keys stand for Units, ``needs`` for their ``dependsOn``; the turns are real threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Literal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard import lifeline
from gitopsguard.fleet_pool import Turn, WorkerDiedError, Workers, serve_round


class Journal:
    """What the turns did, in the order they did it, and how many ran at once (at most, and per key)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.running: dict[int, int] = {}
        self.most = 0
        self.twice: list[int] = []
        self._lock = threading.Lock()

    def turn(self, key: int, given: Mapping[int, int], pause: float = 0.0) -> int:
        with self._lock:
            self.events.append(("start", key))
            self.running[key] = self.running.get(key, 0) + 1
            if self.running[key] > 1:
                self.twice.append(key)
            self.most = max(self.most, sum(self.running.values()))
        time.sleep(pause)
        with self._lock:
            self.running[key] -= 1
            self.events.append(("end", key))
        return key

    def index(self, what: str, key: int) -> int:
        return self.events.index((what, key))


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[int], dict[int, list[int]]]:
    """A topological order of up to 12 keys and, for each, some keys before it (its dependencies)."""
    size = draw(st.integers(1, 12))
    needs = {k: draw(st.lists(st.integers(0, k - 1), max_size=3, unique=True)) if k else [] for k in range(size)}
    return list(range(size)), needs


@given(dag=dags(), size=st.integers(1, 6), pauses=st.lists(st.sampled_from((0.0, 0.001, 0.003)), max_size=12))
@example(dag=([0, 1, 2], {0: [], 1: [0], 2: [1]}), size=3, pauses=[0.003])  # a chain: nothing runs beside anything
@example(dag=([0, 1, 2, 3], {0: [], 1: [], 2: [0, 1], 3: []}), size=4, pauses=[0.003, 0.0])  # a join after two
def test_a_dependent_never_starts_before_each_of_its_dependencies_turns_ended(
    dag: tuple[list[int], dict[int, list[int]]], size: int, pauses: list[float]
) -> None:
    order, needs = dag
    delays = {k: pauses[k] if k < len(pauses) else 0.0 for k in order}
    journal, workers = Journal(), Workers(size)
    try:
        results = serve_round(order, needs, lambda k, g: journal.turn(k, g, delays[k]), workers, threading.Event())
    finally:
        workers.close()
    assert results == {k: k for k in order}, "every key is served, once"
    for key, dependencies in needs.items():
        for dependency in dependencies:
            assert journal.index("end", dependency) < journal.index("start", key), (key, dependency, journal.events)
    assert journal.most <= size and not journal.twice


def test_a_turn_is_given_what_its_dependencies_turns_gave() -> None:
    seen: dict[str, Mapping[str, str]] = {}

    def turn(key: str, given: Mapping[str, str]) -> str:
        seen[key] = dict(given)
        return f"{key}-ready"

    workers = Workers(3)
    serve_round(["infra", "apps", "web"], {"apps": ["infra"], "web": ["apps", "infra"]}, turn, workers,
                threading.Event())  # fmt: skip
    workers.close()
    both = {"apps": "apps-ready", "infra": "infra-ready"}
    assert seen == {"infra": {}, "apps": {"infra": "infra-ready"}, "web": both}


def test_one_worker_serves_the_keys_exactly_in_the_order_given() -> None:
    order = [5, 3, 9, 1, 7, 2]
    needs = {9: [5], 7: [3, 9], 2: [1]}
    journal, workers = Journal(), Workers(1)
    serve_round(order, needs, journal.turn, workers, threading.Event())
    workers.close()
    assert [k for what, k in journal.events if what == "start"] == order


def test_a_slow_turn_does_not_hold_the_keys_that_do_not_need_it() -> None:
    """The attacker's Unit is slow (a render, a server that answers late): the others go on beside it."""
    others_done = threading.Event()

    def turn(key: str, given: Mapping[str, str]) -> str:
        if key == "slow":
            assert others_done.wait(10), "the other keys waited behind the slow one"
        elif key == "last":
            others_done.set()
        return key

    workers = Workers(2)
    results = serve_round(["slow", "a", "b", "last"], {}, turn, workers, threading.Event())
    workers.close()
    assert set(results) == {"slow", "a", "b", "last"}


def test_a_turn_that_is_not_done_leaves_its_dependents_out_and_a_held_key_is_not_served() -> None:
    """None: the Unit's health wait goes on after its turn; a held key is one still waiting from an earlier
    round. Neither is served again, and what needs either, directly or not, waits for a later round."""
    journal, workers = Journal(), Workers(2)

    def turn(key: int, given: Mapping[int, int]) -> int | None:
        journal.turn(key, given)
        return None if key == 0 else key

    needs = {1: [0], 2: [1], 4: [3], 5: []}
    results = serve_round([0, 1, 2, 3, 4, 5], needs, turn, workers, threading.Event(), held={3})
    workers.close()
    assert results == {5: 5}
    assert sorted(k for what, k in journal.events if what == "start") == [0, 5]


def test_no_turn_starts_after_a_stop_and_those_started_end() -> None:
    stop, started = threading.Event(), threading.Event()
    journal, workers = Journal(), Workers(2)

    def turn(key: int, given: Mapping[int, int]) -> int:
        if key == 0:
            started.set()
            stop.set()  # SIGTERM while this turn runs
            time.sleep(0.05)
        return journal.turn(key, given)

    results = serve_round(list(range(20)), {}, turn, workers, stop)
    workers.close()
    assert 0 in results and len(results) <= 2, f"{len(results)} turns served after the stop"
    assert all(journal.index("end", k) >= 0 for k in results), "each started turn ended"


def test_a_worker_that_dies_ends_the_round_with_an_error_and_reaches_the_lifeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug that escapes a turn is not one Unit's failure: the process must end (the lifeline), and the round
    must not wait for ever on the turn that will never end."""
    exits: list[int] = []
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)  # put back after the test
    monkeypatch.setattr(lifeline.DEAD, "set", lambda: None)  # this process's /healthz is not the test's
    lifeline.install(exit_process=exits.append)

    def turn(key: int, given: Mapping[int, int]) -> int:
        if key == 1:
            raise RuntimeError("a bug in the loop")
        return key

    workers = Workers(2)
    with pytest.raises(WorkerDiedError, match="worker serving Units died"):
        serve_round([0, 1, 2, 3], {3: [1]}, turn, workers, threading.Event())
    assert exits == [lifeline.EXIT_CODE]
    assert not workers.alive


def test_a_pool_needs_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        Workers(0)


@given(dag=dags(), size=st.integers(1, 4), resting=st.sets(st.integers(0, 11)))
@example(dag=([0, 1, 2], {0: [], 1: [0], 2: [1]}), size=1, resting={1})  # at rest between two turns
def test_a_key_at_rest_gives_its_value_without_a_turn_after_its_dependencies_and_once(
    dag: tuple[list[int], dict[int, list[int]]], size: int, resting: set[int]
) -> None:
    """A Unit at rest (not due) gives its status without a turn, on the round's thread: the rules of a turn hold."""
    order, needs = dag
    journal, workers = Journal(), Workers(size)
    asked: dict[int, dict[int, int]] = {}

    def rest(key: int, given: Mapping[int, int]) -> int | Literal[Turn.NEEDED]:
        asked[key] = dict(given)
        if key not in resting:
            return Turn.NEEDED
        journal.turn(key, given)
        return key

    try:
        results = serve_round(order, needs, lambda k, g: journal.turn(k, g, 0.001), workers, threading.Event(),
                              rest=rest)  # fmt: skip
    finally:
        workers.close()
    assert results == {k: k for k in order}, "every key is served, once"
    assert set(asked) == set(order), "every key is asked first"
    for key, dependencies in needs.items():
        assert asked[key] == {d: d for d in dependencies}, "a key at rest is given what its dependencies gave"
        for dependency in dependencies:
            assert journal.index("end", dependency) < journal.index("start", key), (key, dependency, journal.events)
    assert not journal.twice


def test_a_key_at_rest_that_gives_none_leaves_its_dependents_out() -> None:
    journal, workers = Journal(), Workers(2)
    results = serve_round([0, 1, 2], {1: [0]}, journal.turn, workers, threading.Event(),
                          rest=lambda k, _: None if k == 0 else Turn.NEEDED)  # fmt: skip
    workers.close()
    assert results == {2: 2}


def test_a_key_at_rest_that_raises_ends_the_round_as_a_dead_worker_would() -> None:
    """A bug on the round's thread must end the process too, not be taken for one Unit's failure."""

    def rest(key: int, given: Mapping[int, int]) -> int | Literal[Turn.NEEDED]:
        if key == 1:
            raise RuntimeError("a bug in the loop")
        return Turn.NEEDED

    workers = Workers(2)
    with pytest.raises(WorkerDiedError, match="round's thread"):
        serve_round([0, 1, 2], {}, lambda k, _: k, workers, threading.Event(), rest=rest)
    workers.close()


def test_a_turn_wanted_here_runs_on_the_rounds_thread_in_a_free_workers_stead() -> None:
    """A Unit due only by its interval is passed on the round's thread; with one worker the order still holds."""
    order, here = [5, 3, 9, 1], threading.current_thread()
    journal, workers, threads = Journal(), Workers(1), dict[int, threading.Thread]()

    def turn(key: int, given: Mapping[int, int]) -> int:
        threads[key] = threading.current_thread()
        return journal.turn(key, given, 0.002)

    serve_round(order, {9: [5]}, turn, workers, threading.Event(),
                rest=lambda k, _: Turn.HERE if k in {3, 1} else Turn.NEEDED)  # fmt: skip
    workers.close()
    assert [k for what, k in journal.events if what == "start"] == order
    assert {k for k, t in threads.items() if t is here} == {3, 1}
