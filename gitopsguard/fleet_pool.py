"""Passes of independent Units side by side: a bounded pool of worker threads, and the round that feeds it.

The Units loop (``fleet.py``) hands :func:`serve_round` the round's ``apply_order`` and each Unit's
dependencies. A Unit starts once every dependency of it in the round has ended its turn, and is handed to a
free worker lowest place in the order first: with one worker the turns come exactly in ``apply_order``, as
they did when one thread served every Unit. A turn may end without its Unit being done (``None``: a health
wait goes on off the pool): what depends on it is left for a later round, started once that Unit is done.

A turn catches what one Unit may raise. Whatever escapes it is a bug in the loop itself: its worker dies, the
lifeline (``lifeline.py``) ends the process, and the round raises :class:`WorkerDiedError` rather than wait
for a turn that will never end, so no half-alive controller keeps serving some Units.
"""

from __future__ import annotations

import enum
import functools
import heapq
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from typing import Generic, Literal, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
R = TypeVar("R")
LIVENESS = 0.5  # seconds between two looks at the workers while a round waits for a turn to end
# Measured with bench/units_1000.py (bench/README.md, "1,000 Units"): a first pass waits on the API server
# for most of its time, so a few passes at once fill the two cores the dev cluster shares with the controller.
DEFAULT_WORKERS = 4


class WorkerDiedError(RuntimeError):
    """A worker thread ended on an uncaught exception (a bug: the lifeline ends the process). Not a
    GitOpsGuardError on purpose: the loop retries those, and must not retry this."""


class Workers:
    """``size`` daemon threads, started on first use, taking tasks from one queue until ``close``."""

    def __init__(self, size: int, name: str = "units-worker") -> None:
        if size < 1:
            raise ValueError(f"{name}: at least one worker is needed, not {size}")
        self.size, self._name = size, name
        self._tasks: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, task: Callable[[], None]) -> None:
        with self._lock:
            if not self._threads:
                self._threads = [threading.Thread(target=self._serve, name=f"{self._name}-{n}", daemon=True)
                                 for n in range(self.size)]  # fmt: skip
                for thread in self._threads:
                    thread.start()
        self._tasks.put(task)

    @property
    def alive(self) -> bool:
        """False once a worker has died (never started counts as alive)."""
        with self._lock:
            return all(t.is_alive() for t in self._threads)

    def close(self) -> None:
        """Let the workers end once the tasks queued before have run."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._tasks.put(None)

    def _serve(self) -> None:
        while (task := self._tasks.get()) is not None:
            task()  # nothing is caught here: a task catches what its input may raise (see the module's docstring)


class Turn(enum.Enum):
    """What ``rest`` answers for a key that needs a turn after all: on a worker, or on the round's thread."""

    NEEDED = "needed"
    HERE = "here"  # most likely cheap (a Unit due only by its interval: at rest, no request)


Wanted = Literal[Turn.NEEDED, Turn.HERE]


def serve_round(
    order: Sequence[K], needs: Mapping[K, Iterable[K]], serve: Callable[[K, Mapping[K, V]], V | None],
    workers: Workers, stop: threading.Event, *, held: Collection[K] = (),
    rest: Callable[[K, Mapping[K, V]], V | Wanted | None] = lambda _key, _given: Turn.NEEDED,
) -> dict[K, V]:  # fmt: skip
    """Each key of ``order`` served once on ``workers`` (``serve(key, what its dependencies' turns gave)``),
    after every key of the round it ``needs``, at most ``workers.size`` at once, lowest place first. A key in
    ``held`` (still busy from an earlier round), one whose turn gave None, and every key that needs one of
    them, directly or not, is left out. Once ``stop`` is set no turn starts; returns when the started ones
    have ended, with what each gave.

    ``rest(key, given)`` is asked first, on the round's own thread, in the key's place: what a key at rest gives
    without a turn (a Unit not due makes no request), ``Turn.NEEDED`` for a turn on a worker, or ``Turn.HERE``
    for a turn on the round's thread in a free worker's stead (one most likely cheap: a Unit due only by its
    interval). Handing each of 1,000 such keys to a worker and back cost more CPU than the keys themselves
    (bench/units_1000.py, the no-op window). What escapes either on the round's thread ends the round with
    WorkerDiedError, as it would have killed a worker."""
    plan: _Plan[K] = _Plan(order, needs, held)
    done: queue.SimpleQueue[tuple[K, V | None]] = queue.SimpleQueue()
    results: dict[K, V] = {}
    running = 0
    while True:
        while plan.startable and running < workers.size and not stop.is_set():
            key = plan.next()
            given = {d: results[d] for d in plan.needs[key]}
            rested = _rested(rest, key, given)
            if rested is Turn.NEEDED:
                workers.submit(functools.partial(_turn, serve, key, given, done))
                running += 1
            elif rested is Turn.HERE:  # in a free worker's stead: the rules above hold as they are
                _ended_with(plan, results, key, _rested(serve, key, given))
            else:
                _ended_with(plan, results, key, rested)
        if running == 0:
            return results
        key, value = _ended(done, workers)
        running -= 1
        _ended_with(plan, results, key, value)


def _ended_with(plan: _Plan[K], results: dict[K, V], key: K, value: V | None) -> None:
    if value is None:
        plan.leave_out(key)
    else:
        results[key] = value
        plan.ended(key)


def _rested(rest: Callable[[K, Mapping[K, V]], R], key: K, given: Mapping[K, V]) -> R:
    try:
        return rest(key, given)
    except Exception as error:  # a bug, as in a worker: the process must end rather than serve on half alive
        raise WorkerDiedError(f"a Unit's turn failed on the round's thread: {error!r}; the process ends so "
                              "that it is restarted whole") from error  # fmt: skip


class _Plan(Generic[K]):
    """Which keys of a round may start: their dependencies in the round ended, nothing they need left out."""

    def __init__(self, order: Sequence[K], needs: Mapping[K, Iterable[K]], held: Collection[K]) -> None:
        self.order = list(order)
        self._place = {k: i for i, k in enumerate(self.order)}
        self.needs = {k: frozenset(d for d in needs.get(k, ()) if d in self._place and d != k) for k in self.order}
        self._pending = {k: set(ds) for k, ds in self.needs.items()}
        self._dependents: dict[K, list[K]] = defaultdict(list)
        for key, dependencies in self.needs.items():
            for dependency in dependencies:
                self._dependents[dependency].append(key)
        self._left_out: set[K] = set()
        for key in held:
            if key in self._place:
                self.leave_out(key)
        self.startable = [i for i, k in enumerate(self.order) if not self._pending[k] and k not in self._left_out]
        heapq.heapify(self.startable)

    def next(self) -> K:
        return self.order[heapq.heappop(self.startable)]

    def ended(self, key: K) -> None:
        for dependent in self._dependents.get(key, ()):  # get: a defaultdict would add a list for every key
            self._pending[dependent].discard(key)
            if not self._pending[dependent] and dependent not in self._left_out:
                heapq.heappush(self.startable, self._place[dependent])

    def leave_out(self, key: K) -> None:
        """``key`` and everything that needs it, directly or not, are not served in this round."""
        todo = [key]
        while todo:
            current = todo.pop()
            if current not in self._left_out:
                self._left_out.add(current)
                todo.extend(self._dependents[current])


def _turn(
    serve: Callable[[K, Mapping[K, V]], V | None], key: K, given: Mapping[K, V],
    done: queue.SimpleQueue[tuple[K, V | None]],
) -> None:  # fmt: skip
    done.put((key, serve(key, given)))


def _ended(done: queue.SimpleQueue[tuple[K, V | None]], workers: Workers) -> tuple[K, V | None]:
    """The next turn to end; WorkerDiedError when a worker died instead (its turn will never end)."""
    while True:
        try:
            return done.get(timeout=LIVENESS)
        except queue.Empty:
            if not workers.alive:
                raise WorkerDiedError(
                    "a worker serving Units died (see the error printed above); the process ends so that it is "
                    "restarted whole"
                ) from None
