"""What the Units loop (``fleet.py``) holds between rounds, and the small steps its parts share.

``FleetCore`` is the state: what ``Fleet`` is given, and what it keeps between rounds (the fetched revision, the
Units as last listed, the schedule, the turns and health waits under way). The root path's part of a round
(``fleet_root.py``) and a Unit's turn (``fleet_passes.py``) are mixins on it; ``Fleet`` (``fleet.py``) joins them
into the round's recipe. Here: which unit moved, results and notes told one at a time, the shard claim a write is
made under, a render at a commit, and a Unit's status written.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import Inventory, InventoryStore
from gitopsguard.cluster.livecache import SharedLiveCache
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.shardleases import ShardLeases
from gitopsguard.cluster.units import LiveUnit, UnitStore
from gitopsguard.fleet_pool import DEFAULT_WORKERS, Workers
from gitopsguard.fleet_retire import Retirer
from gitopsguard.fleet_standing import Sources, Standing
from gitopsguard.fleet_status import Served, StatusWriter
from gitopsguard.fleet_turns import AccountOf, Busy, Schedule, Waits
from gitopsguard.heads import Head
from gitopsguard.model import Action, Manifest, ObjectKey
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.policy import Evaluation, PolicySet
from gitopsguard.reconcile import DEFAULT_BRAKE, Reconciler, ReconcileResult, Unit, renderer
from gitopsguard.render.stored import RenderStore
from gitopsguard.scan.governed import Governed
from gitopsguard.source import GitSource, Revision
from gitopsguard.units import PassOutcome, Readiness
from gitopsguard.units.root import Root, RootUnits
from gitopsguard.units.shards import shard_of
from gitopsguard.units.spec import DEFAULTS, UnitDefaults, normal_path


@dataclass(frozen=True)
class Deferred(Head):
    """A Unit's head at a commit it was passed at before: rendered and judged only if the pass needs its
    objects (something moved), so a pass that finds the Unit at rest renders nothing."""

    judging: Callable[[], Head] = lambda: Head(None)

    def accepted(self) -> tuple[Evaluation, PolicySet, tuple[Manifest, ...]]:
        return self.judging().accepted()


class FleetCore:
    """The state of a ``Fleet``. ``account_of`` gives a Unit's applier (its service account); the root unit
    always uses ``applier``, the controller's own."""

    def __init__(
        self, root: Unit, source: GitSource, applier: Applier, store: InventoryStore, raw: RawApi, *,
        interval: float = 30.0, on_result: Callable[[ReconcileResult], None] = lambda _: None,
        brake: BrakePolicy = DEFAULT_BRAKE, defaults: UnitDefaults = DEFAULTS, account_of: AccountOf | None = None,
        on_note: Callable[[str], None] = lambda _: None, leases: ShardLeases | None = None,
        workers: int = DEFAULT_WORKERS, governed: Governed | None = None,
    ) -> None:  # fmt: skip
        self.unit, self._source, self._applier, self._raw = root, source, applier, raw
        self._root = Root(normal_path(root.path), root.name)
        self._interval, self._defaults, self._on_note = interval, defaults, on_note
        self._reported, self._said = on_result, threading.Lock()  # results and notes are told one at a time
        self._account_of = account_of or (lambda _: applier)
        self._leases = leases  # None: this replica serves every Unit (alone, or as the leader)
        self._stop = threading.Event()  # run's: a health wait ends with it
        # one informer per kind for all the Units (the unit label routes each event): an edit to a Unit's
        # object makes that Unit's next pass due at once, and passes read their objects from here
        self._cache = SharedLiveCache(applier, raw, on_change=self._moved)
        self._moved_units: set[str] = set()
        self._ours: frozenset[str] = frozenset({root.name})  # the root and the ids of the Units it declares
        self._moved_lock = threading.Lock()
        self._stored = RenderStore(source.workdir / "renders", root.render_settings)
        self._reconciler = Reconciler(source, applier, store, brake=brake, stored=self._stored)
        self._store, self._units = store, UnitStore(raw)
        self._status = StatusWriter(self._units)
        self._retirer = Retirer(self._root, raw, applier, store, account_of=self._account_of, render=self._render_at,
                                on_result=self._on_result, on_note=self._note, brake=brake,
                                report_only=root.report_only)  # fmt: skip
        self._wake, self._fetch_now = threading.Event(), threading.Event()
        self._schedule = Schedule()  # also the Units the last round could pass (ours, not held back)
        self._workers, self._busy, self._waits = Workers(workers), Busy(), Waits()
        self._revision: Revision | None = None  # the round's fetched revision, and its checkout
        self._root_head: Head | None = None  # the root path judged at the last fetch
        self._root_pending = False  # that head is not passed yet (the root's shard was not ours)
        self._declared: tuple[str, RootUnits] | None = None  # the Units of the root's applied commit
        self._root_due, self._watching, self._noted = 0.0, False, set[str]()
        # the Units as last listed, listed again only when the watch saw one change, a status was written, the
        # root passed, or the watch is not in sync: a round over 1,000 Units at rest then lists nothing
        self._listed: tuple[LiveUnit, ...] | None = None
        self._units_stale, self._units_in_sync = True, False
        self._standing: Standing | None = None  # what the last round derived from them
        self._stood: Sources | None = None  # and from which: the standing's, or the same by value as last seen
        self._inventory_keys: tuple[Inventory, frozenset[ObjectKey]] | None = None  # the root's, as last read
        self._changed = True  # a pass changed something since the last full collection of the heap
        self._recorded: Standing | None = None  # the standing whose Units the retirer last recorded
        self._asked: set[tuple[str, str, str]] = set()  # the reconcile requests pending at the last round
        self._asked_of: tuple[LiveUnit, ...] | None = None  # in the Units as then listed
        self.last_duration = 0.0  # seconds the last round took (for metrics)
        self.rounds = 0  # rounds served (for metrics and tests)
        self.policies: PolicySet | None = None  # the root's policies, of its last applied revision (live scan)
        # each Unit's own policies, where they govern (live scan, admission): shared with the replica's follower
        # of every Unit's inventory (scan/following.py), which also knows the Units this replica does not serve
        self._governed = governed or Governed()

    def _moved(self, unit: str) -> None:
        """An object labelled ``unit`` changed. The watch sees every unit label in the cluster (other
        controllers' too): only ours wake a round."""
        with self._moved_lock:
            if unit not in self._ours:
                return
            self._moved_units.add(unit)
        self._wake.set()

    def _take_moved(self, unit: str) -> bool:
        """Whether an object of ``unit`` moved since its last pass began (and forget it: the pass starts now)."""
        with self._moved_lock:
            if unit not in self._moved_units:
                return False
            self._moved_units.discard(unit)
            return True

    def _on_result(self, result: ReconcileResult) -> None:
        if result.error is not None or any(c.action is not Action.UNCHANGED for c in result.changes):
            self._changed = True  # a full collection is due at its period again
        with self._said:
            self._reported(result)

    def _track(self, result: ReconcileResult) -> None:
        for kind in result.kinds:
            self._cache.track(kind, self._stop)

    @contextlib.contextmanager
    def _acting(self, unit: str) -> Iterator[Callable[[], bool] | None]:
        """While this replica may act on ``unit`` (its shard's Lease is ours: ``cluster/shardleases.py``), a
        check to make again before each write; None when the unit is not ours now."""
        leases = self._leases
        if leases is None:
            yield lambda: True
            return
        with leases.acting(shard_of(unit, leases.shards)) as claim:
            if claim is None or not leases.holds(claim):
                yield None
                return
            held = claim
            yield lambda: leases.holds(held)

    def _render_at(self, path: str, commit: str) -> tuple[Manifest, ...]:
        """``path`` (the root's, or a Unit's folder: what it claims, for retirements) rendered at ``commit``; run
        from the round's thread, when no turn renders (the held checkout moves)."""
        checkout = self._revision.checkout if self._revision and self._revision.commit == commit else None
        return renderer(self._stored)(checkout or self._source.checkout_of(commit), path, commit)

    def _write(
        self, still: Callable[[], bool], live: LiveUnit, outcome: PassOutcome, result: ReconcileResult | None = None
    ) -> Readiness | None:
        """The status, written while the Unit is still ours; its readiness after (None when it was not)."""
        if not still():
            return None
        written: Served = self._status.write(live, outcome, result=result)
        if written.unit is not live:  # written: the next round lists them again, and sees it as the server has it
            self._units_stale = True
        return written.readiness

    def _note(self, message: str) -> None:
        with self._said:
            if message not in self._noted:  # said once per process, not every round
                self._noted.add(message)
                self._on_note(message)
