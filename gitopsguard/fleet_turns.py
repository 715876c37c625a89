"""What the Units loop (``fleet.py``) keeps between the turns of its workers (``fleet_pool.py``), safe to share
between threads: when each Unit is due, which Units are busy (a turn or a health wait under way), each
account's applier, and the health waits themselves, which run on threads of their own so that a Unit that
waits holds no worker and no round: its status is written when the wait ends, and a round is woken then for
the Units that depend on it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.impersonation import ServiceAccount, account_for
from gitopsguard.cluster.units import LiveUnit
from gitopsguard.commands.units import outcome_of
from gitopsguard.errors import UnitError
from gitopsguard.reconcile import ReconcileResult
from gitopsguard.sync.wait import wait_for_unit
from gitopsguard.units import PassOutcome, Phase, UnitRef, UnitSpec, request_answered
from gitopsguard.units import Reason as Condition

AccountOf = Callable[[UnitSpec], Applier]  # the applier a Unit's passes use (its service account)
JOIN_SECONDS = 10.0  # a stop ends every wait at once; a status still being written gets this long
# A round costs CPU for every Unit whatever few are due (it lists and orders them all), so Units due about the
# same time share one: a next pass is due at the next twentieth of its wait, never more than 5% late.
# 1,000 Units made Ready over 40 s then come due in about 14 rounds a minute rather than one every round's
# rest (bench/units_1000.py, the no-op window). Events (drift, a request, a commit) still start a round at once.
COALESCE = 20


def due_after(wait: float, now: float) -> float:
    """When a pass ``wait`` seconds after ``now`` is due: on the grid of its wait's twentieths."""
    step = wait / COALESCE
    if step <= 0:
        return now + wait
    return max(now + wait, math.ceil((now + wait) / step) * step)  # max: the float division may round down


@dataclass
class Schedule:
    """When each Unit was last passed in this process, on which commit, and when it is due again; which of
    them the last round could pass (ours, not held back). Workers and waits write it; one lock guards it."""

    due: dict[UnitRef, float] = field(default_factory=dict)
    commit: dict[UnitRef, str] = field(default_factory=dict)
    servable: set[UnitRef] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def is_due(self, ref: UnitRef, live: LiveUnit, commit: str, now: float, *, moved: bool) -> bool:
        with self._lock:
            due, passed_at = self.due.get(ref), self.commit.get(ref)
        return _due(due, passed_at, live, commit, now, moved=moved)

    def due_now(self, live: Mapping[UnitRef, LiveUnit], commit: str, now: float) -> tuple[set[UnitRef], set[UnitRef]]:
        """Which of ``live`` are due now, but for what moved: one look for a whole round. Those due only because
        their interval ran out (the pass most likely finds them at rest, without a request), and the others."""
        with self._lock:
            times = {ref: (self.due.get(ref), self.commit.get(ref)) for ref in live}
        timed, other = set[UnitRef](), set[UnitRef]()
        for ref, (due, at) in times.items():
            if due is None or _due_otherwise(at, live[ref], commit):
                other.add(ref)
            elif now >= due:
                timed.add(ref)
        return timed, other

    def passed(self, ref: UnitRef, commit: str, after: float) -> None:
        with self._lock:
            self.due[ref], self.commit[ref] = after, commit

    def passed_at(self, ref: UnitRef) -> str | None:
        with self._lock:
            return self.commit.get(ref)

    def mark(self, ref: UnitRef, *, servable: bool) -> None:
        with self._lock:
            if servable:
                self.servable.add(ref)
            else:
                self.servable.discard(ref)

    def next_times(self, refs: Iterable[UnitRef]) -> list[float]:
        """When each of ``refs`` that this replica may pass is due next."""
        with self._lock:
            return [self.due[r] for r in refs if r in self.due and r in self.servable]


def _due(due: float | None, passed_at: str | None, live: LiveUnit, commit: str, now: float, *, moved: bool) -> bool:
    return moved or due is None or now >= due or _due_otherwise(passed_at, live, commit)


def _due_otherwise(passed_at: str | None, live: LiveUnit, commit: str) -> bool:
    """Due whatever the time: a new commit, a new generation, a reconcile request not answered yet."""
    status = live.status
    return (
        passed_at != commit or status.get("observedGeneration") != live.generation
        or not request_answered(live.requested_at, status)
    )  # fmt: skip


class Busy:
    """The Units whose turn or health wait is under way: no Unit is passed twice at once."""

    def __init__(self) -> None:
        self._refs: set[UnitRef] = set()
        self._lock = threading.Lock()

    def take(self, ref: UnitRef) -> bool:
        """Whether ``ref`` was free (it is busy now)."""
        with self._lock:
            if ref in self._refs:
                return False
            self._refs.add(ref)
            return True

    def release(self, ref: UnitRef) -> None:
        with self._lock:
            self._refs.discard(ref)

    def now(self) -> frozenset[UnitRef]:
        with self._lock:
            return frozenset(self._refs)


@dataclass(frozen=True)
class Pending:
    """A pass that applied, whose Unit waits for the health of what it applied before its status is written."""

    spec: UnitSpec
    live: LiveUnit
    result: ReconcileResult
    applier: Applier
    commit: str
    after: float  # seconds from the wait's end until the Unit is due again


def healthy(pending: Pending, deadline: float, stop: threading.Event) -> PassOutcome:
    """The pass as the Unit's status tells it, once what it applied is healthy, its ``timeout`` (else its
    interval) ran out at ``deadline`` (``sync/wait.py``, as its account), or ``stop`` is set."""
    spec, result = pending.spec, pending.result
    outcome = outcome_of(result, spec.generation)
    try:
        waited = wait_for_unit(spec, result.changes, pending.applier, deadline, sleep=stop.wait)
    except UnitError as error:  # a CEL check that does not compile: nothing was waited for
        return replace(outcome, phase=Phase.FAILED, failure=Condition.INVALID_SPEC, message=str(error))
    if waited is None or waited.healthy:
        return outcome
    return replace(outcome, phase=Phase.UNHEALTHY, message=waited.message)


class Waits:
    """The health waits under way, each on a thread of its own named after its Unit."""

    def __init__(self) -> None:
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def start(self, unit: str, work: Callable[[], None]) -> None:
        def run() -> None:
            try:
                work()
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"units-wait-{unit}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def join(self, seconds: float = JOIN_SECONDS) -> None:
        """Wait (up to ``seconds`` in all) for the waits under way: after a stop they end at once."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(seconds / max(1, len(threads)))


def accounts(own: Applier, default: str = "") -> AccountOf:
    """Each Unit's applier: as its ``serviceAccountName``, else the operator's ``default`` account (both in the
    Unit's own namespace: ``cluster/impersonation.account_for``), else ``own`` (the controller's). One applier
    per account, kept: each learns the server's kinds once."""
    kept: dict[ServiceAccount, Applier] = {}
    lock = threading.Lock()  # workers ask at once: one applier (and one discovery) per account all the same

    def account_of(spec: UnitSpec) -> Applier:
        account = account_for(spec.service_account_name or "", default, namespace=spec.ref.namespace,
                              where=f"{spec.origin}: {spec.ref}")  # fmt: skip
        if account is None:
            return own
        with lock:
            if account not in kept:
                kept[account] = own.acting(account)  # one connection pool for every account
            return kept[account]

    return account_of
