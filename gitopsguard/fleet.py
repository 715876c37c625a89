"""The loop that serves Units: ``run --repo URL --root PATH``, as ``flux bootstrap`` starts Flux.

Each round, as a recipe:

1. fetch the branch once (review and forward-only checks, against the root unit's applied commit);
2. reconcile the root path as the root unit, as the controller itself (its render may hold Units);
3. read the Units the root applied (``units/root.py``: only the root's render declares them, only live objects
   the root's inventory names are served, each with the root's spec plus a suspension);
4. in ``apply_order``, for each Unit: refused (cycle, missing dependency, overlap, unreadable) -> Stalled;
   suspended -> Suspended; a dependency not Ready -> DependencyNotReady; else, when due (its interval, a new
   commit, a new generation, a reconcile request), one pass with its own ``reconcile.Unit`` and inventory
   (keyed by ``unit_id``), as its account (``accounts``), on the fetched revision, refused whole when its
   folder declares a Unit (``minted_units``);
5. write each Unit's status (only when it changed) and an Event when its Ready condition moved.

Step 4 runs on a bounded pool of workers (``fleet_pool.py``, ``run --unit-workers``): a Unit starts once every
Unit it depends on has ended its turn in this round, and reads their status as this round wrote it; with one
worker the turns come in ``apply_order``, one at a time. A Unit's health wait runs on a thread of its own
(``fleet_turns.py``): it holds no worker and no round, its dependents are left for the round its end wakes,
and no Unit is passed while its earlier turn or wait is under way. The checkout is the round's: the next
round fetches only after every turn of this one ended. Units are watched (one informer, the root's label), so
a reconcile request, a suspension or a resume wakes a round at once rather than at the next poll:
``gitopsguard reconcile unit`` waits on that. The events our own status writes cause end after one quiet
round (nothing is due).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from gitopsguard.backoff import jittered, next_wait, worth_retrying
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.informer import Informer
from gitopsguard.cluster.inventory import Inventory, InventoryStore
from gitopsguard.cluster.livecache import SharedLiveCache
from gitopsguard.cluster.namespaces import NamespaceView
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.shardleases import ShardLeases
from gitopsguard.cluster.units import API_VERSION, LiveUnit, UnitStore
from gitopsguard.collector import Collector
from gitopsguard.commands.units import outcome_of
from gitopsguard.errors import GitOpsGuardError, UnitError
from gitopsguard.fleet_pool import DEFAULT_WORKERS, Turn, WorkerDiedError, Workers, serve_round
from gitopsguard.fleet_retire import Retirer
from gitopsguard.fleet_standing import Sources, Standing, stand
from gitopsguard.fleet_standing import refused_targets as refused_targets  # where check --root and tests find it
from gitopsguard.fleet_status import Served, StatusWriter, answering
from gitopsguard.fleet_turns import AccountOf, Busy, Pending, Schedule, Waits, due_after, healthy
from gitopsguard.fleet_turns import accounts as accounts  # where the CLI and the tests have found it
from gitopsguard.heads import Head, judge
from gitopsguard.model import UNIT_LABEL, Action, KubeObject, Manifest, ObjectKey
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.policy import Evaluation, PolicySet
from gitopsguard.policy.compose import Governance
from gitopsguard.reconcile import DEFAULT_BRAKE, Reconciler, ReconcileResult, Unit, renderer
from gitopsguard.render.stored import RenderStore
from gitopsguard.scan.governed import Governed, applied_policies
from gitopsguard.source import GitSource, Revision
from gitopsguard.source.watch import watch_commits
from gitopsguard.units import (
    PassOutcome,
    Phase,
    Readiness,
    UnitRef,
    UnitSpec,
    blocked,
    readiness_of,
    unit_id,
)
from gitopsguard.units import Reason as Condition
from gitopsguard.units.root import Root, RootUnits, minted_units, units_of_root
from gitopsguard.units.shards import shard_of
from gitopsguard.units.spec import DEFAULTS, UnitDefaults, normal_path

# Events wake a round at once, but whoever may label an object may wake it (a tenant patching a ConfigMap that
# carries any Unit's id, as fast as it can: tests/integration/redteam_units/). A round costs CPU for every Unit
# (tens of milliseconds at 1,000, more when it lists them again), so the loop rests this long after each round
# whatever woke it; what came meanwhile is served by the next round (its Units stay due), within a second still.
ROUND_REST = 0.5


@dataclass(frozen=True)
class _Deferred(Head):
    """A Unit's head at a commit it was passed at before: rendered and judged only if the pass needs its
    objects (something moved), so a pass that finds the Unit at rest renders nothing."""

    judging: Callable[[], Head] = lambda: Head(None)

    def accepted(self) -> tuple[Evaluation, PolicySet, tuple[Manifest, ...]]:
        return self.judging().accepted()


class Fleet:
    """The root unit and the Units it declares, reconciled until ``stop``. ``account_of`` gives a Unit's
    applier (its service account); the root unit always uses ``applier``, the controller's own."""

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

    def run(self, stop: threading.Event, local_repository: Path | None = None) -> None:
        """Serve rounds until ``stop`` is set."""
        self._stop = stop
        self._store.follow(self._applier, stop)  # a pass at rest then reads no inventory (``Reconciler._rests``)
        namespaces = NamespaceView(self._applier, self._raw)  # one watch, not a list per Unit's render
        namespaces.start(stop)
        self._applier.namespaces_from = namespaces.objects
        observer = watch_commits(local_repository, self.wake) if local_repository else None
        # a stop ends the wait between rounds at once, not at the next interval (SIGTERM, a lost lease)
        threading.Thread(target=self._wake_on, args=(stop,), name="units-stop", daemon=True).start()
        if self._leases is not None:
            threading.Thread(
                target=self._follow_shards, args=(self._leases, stop), name="units-shards", daemon=True
            ).start()
        failures, collector = 0, Collector()
        try:
            with collector.passes():
                while not stop.is_set():
                    self._wake.clear()
                    started = time.monotonic()
                    failure, wait = self._round(stop)
                    self.rounds += 1
                    ended = time.monotonic()
                    self.last_duration = ended - started
                    failures = failures + 1 if worth_retrying(failure) else 0
                    if collector.between_passes(busy=self._wake.is_set(), at_rest=not self._changed) == 2:
                        self._changed = False
                    backoff = next_wait(failure, failures, lambda n: jittered(n, self._interval))
                    self._wake.wait(min(wait, backoff) if failure is not None else wait)
                    stop.wait(max(0.0, ended + ROUND_REST - time.monotonic()))
        finally:
            self._waits.join()  # the stop ended them: their statuses are written before the process ends
            self._workers.close()
            if observer:
                observer.stop()
                observer.join()

    def _wake_on(self, stop: threading.Event) -> None:
        stop.wait()
        self._wake.set()

    def _follow_shards(self, leases: ShardLeases, stop: threading.Event) -> None:
        """A round as soon as the shards this replica holds change: the Units of a shard it took (from a replica
        that died) are served now, not at the next interval. Reads the leases' memory only."""
        held: frozenset[int] = frozenset()
        while not stop.wait(leases.timing.retry_seconds / 2):
            now = leases.held()
            if now - held:
                self._wake.set()
            held = now

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

    def watched_kinds(self) -> set[tuple[str, str]]:
        """The kinds this loop watches, each once: the Units, and every kind a Unit owns (for tests and
        metrics)."""
        return self._cache.kinds() | ({(API_VERSION, "Unit")} if self._watching else set())

    def wake(self) -> None:
        """Fetch now, and serve a round now."""
        self._fetch_now.set()
        self._wake.set()

    def _round(self, stop: threading.Event) -> tuple[GitOpsGuardError | None, float]:
        """One round; the failure that ended it early (None when it ran through) and the seconds to the next."""
        try:
            units = self._listed_units()
            self._watch_units(stop)
            if self._asked_for(units):  # `reconcile unit` serves the branch as it is now, as a commit would
                self._fetch_now.set()
            if self._pass_root():  # the root may have applied new specs (new generations): list again, but a
                # request that came since the first list was not fetched for: the next round answers it
                seen = {(u.namespace, u.name): u.requested_at for u in units}
                listed = self._list_units()
                units = tuple(answering(u, seen.get((u.namespace, u.name))) for u in listed)
                self._listed = units  # what the next rounds reuse; but a later request stays on its Unit, and
                if any(a is not b for a, b in zip(units, listed, strict=True)):  # the next round lists it again
                    self._units_stale = True
            return None, self._serve(units, stop)
        except WorkerDiedError:  # a bug killed a worker (the lifeline ends the process): never serve on without it
            raise
        except GitOpsGuardError as error:  # the Units could not be listed, or a status written: said, retried
            self._note(f"units of the root path {self._root.path}: {error}")
            return error.with_traceback(None), self._interval
        except Exception as error:  # a bug must not stop the controller silently: report it, go on at the interval
            self._note(f"units of the root path {self._root.path}: internal error: {error!r}")
            return None, self._interval

    # -- the root ----------------------------------------------------------------------------------

    def _listed_units(self) -> tuple[LiveUnit, ...]:
        """The Units as the last list gave them while nothing says they changed since; else listed now."""
        if self._listed is not None and self._units_in_sync and not self._units_stale:
            return self._listed
        return self._list_units()

    def _list_units(self) -> tuple[LiveUnit, ...]:
        self._units_stale = False  # before the list: a change during it is seen by the next round
        self._listed = self._units.list()
        return self._listed

    def _units_changed(self, _change: str, _body: KubeObject) -> None:
        self._units_stale = True
        self._wake.set()

    def _units_synced(self, synced: bool) -> None:
        self._units_in_sync = synced
        self._units_stale = True

    def _asked_for(self, units: tuple[LiveUnit, ...]) -> bool:
        """Whether a Unit of the root's label carries a reconcile request not seen before. Each request value
        fetches once: whoever copies the label onto a Unit of their own cannot make every round fetch. The same
        listed Units as the last round's hold the same requests: none new, not looked through again."""
        if units is self._asked_of:
            return False
        self._asked_of = units
        asked = {(u.namespace, u.name, u.requested_at) for u in units if u.requested_at is not None
                 and u.requested_at != u.status.get("lastHandledReconcileAt")
                 and _label(u.body) == self.unit.name}  # fmt: skip
        new = asked - self._asked
        self._asked = asked
        return bool(new)

    def _pass_root(self) -> bool:
        """When due (its interval, a local commit, a reconcile request): fetch once; then reconcile the root path
        with the fetched revision, as the controller itself, on the replica that holds the root's shard (also
        when that shard came to it after the fetch). Whether the root's Units may have moved."""
        fetched = self._fetch_if_due()
        with self._acting(self.unit.name) as still:  # every replica fetches; the root's shard holder applies
            moved = self._take_moved(self.unit.name)
            if still is None or self._root_head is None or not (fetched or self._root_pending or moved):
                return fetched
            self._root_pending = False
            reconciler = replace(self._reconciler, live=self._cache.view(self.unit.name))
            result = reconciler.reconcile(self.unit, head=self._root_head, want_policies=self.policies is None)
        self._track(result)
        if result.policies is not None and not result.error:
            self.policies = result.policies
        self._on_result(result)
        return True

    def _fetch_if_due(self) -> bool:
        if not (self._fetch_now.is_set() or time.monotonic() >= self._root_due or self._revision is None):
            return False
        self._fetch_now.clear()
        self._root_due = time.monotonic() + self._interval
        inventory = self._store.load(self.unit.name)
        try:
            revision = self._source.fetch(last_applied=inventory.last_applied,
                                          allow_rewind=self._reconciler.allow_rewind,
                                          break_glass=self._reconciler.break_glass)  # fmt: skip
            self._root_head = self._root_judged(revision)
            self._revision = revision
        except GitOpsGuardError as error:  # unreachable, rewound, unreviewed: the root holds, Units keep theirs
            self._root_head = Head(None, refusal=error.with_traceback(None))
        self._root_pending = True
        return True

    def _root_judged(self, revision: Revision) -> Head:
        """The root path at ``revision``; at the commit it was judged at before and accepted, rendered and
        judged again only if its pass needs the objects (something moved), as a Unit's is (``_Deferred``)."""

        def judged() -> Head:
            return judge(self.unit, revision, self._applier, renderer(self._stored), datetime.now(UTC))

        before = self._root_head
        if self.policies is None or before is None or before.refusal is not None or before.revision is None:
            return judged()  # policies None: the pass must read them (admission and the scan wait on them)
        if before.revision.commit != revision.commit:
            return judged()
        return _Deferred(revision, judging=functools.cache(judged))

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

    def _root_specs(self) -> tuple[tuple[UnitSpec, ...], Mapping[UnitRef, str], frozenset[Any]]:
        """The Units of the root's last applied commit, the refused ones with why, and the root's inventory."""
        # read once per round: recalled when the watch vouches for it (it only decides which Units to serve)
        inventory = self._store.recall(self.unit.name) or self._store.load(self.unit.name)
        commit = inventory.last_applied
        if commit is None:
            return (), {}, frozenset()
        if self._declared is None or self._declared[0] != commit:  # rendered and read once per applied commit
            manifests = self._render_at(self.unit.path, commit)
            declared = units_of_root(self._root, manifests, self._defaults, namespace=self.unit.default_namespace)
            self._declared = (commit, declared)
        declared = self._declared[1]
        if self._inventory_keys is None or self._inventory_keys[0] is not inventory:  # the same kept inventory:
            self._inventory_keys = (inventory, frozenset(inventory.entries))  # the same keys, not built again
        return declared.units, declared.refused_units, self._inventory_keys[1]

    def _render_at(self, path: str, commit: str) -> tuple[Manifest, ...]:
        """``path`` (the root's, or a Unit's folder: what it claims, for retirements) rendered at ``commit``; run
        from the round's thread, when no turn renders (the held checkout moves)."""
        checkout = self._revision.checkout if self._revision and self._revision.commit == commit else None
        return renderer(self._stored)(checkout or self._source.checkout_of(commit), path, commit)

    # -- the Units ---------------------------------------------------------------------------------

    def _serve(self, live_units: tuple[LiveUnit, ...], stop: threading.Event) -> float:
        """Every Unit the root vouches for, in order, until a stop is asked for (SIGTERM: the kubelet kills a
        Pod at the end of its grace period, and a round over 1,000 Units takes longer); the seconds until the
        next one is due."""
        commit = self._revision.commit if self._revision else ""
        standing = self._stand(live_units, commit)
        live, served, specs, order, ready, by_ref = (standing.live, standing.served, standing.specs, standing.order,
                                                     standing.ready, standing.by_ref)  # fmt: skip
        inventory = standing.inventory
        if standing is not self._recorded:  # the same as the last round's: recorded then (``round`` records too)
            self._governed.keep_only(standing.declared)
            self._recorded = standing if self._retirer.record(specs) else None
        for ref, why in standing.refused.items():
            with self._acting(unit_id(ref.namespace, ref.name)) as still:
                if ref in served and still is not None and still():
                    written = self._status.write(live[ref], PassOutcome(Phase.FAILED, live[ref].generation,
                                                 failure=Condition.INVALID_SPEC, message=why))  # fmt: skip
                    self._units_stale = self._units_stale or written.unit is not live[ref]
        with self._moved_lock:
            self._ours = standing.ids | {self.unit.name}

        def turn(ref: UnitRef, given: Mapping[UnitRef, Readiness]) -> Readiness | None:
            # what this round's turns of its dependencies gave, else their status as listed
            return self._serve_one(by_ref[ref], live[ref], collections.ChainMap(dict(given), ready))

        busy = self._busy.now()  # health waits of earlier rounds: they, and what needs them, wait for their end
        needs = standing.needs

        leases = self._leases
        held = leases.held() if leases is not None else None
        timed, due = self._schedule.due_now(live, commit, time.monotonic())  # one look for the round: what comes
        with self._moved_lock:  # due or moves meanwhile wakes the next one
            moved = frozenset(self._moved_units)
        looked = standing.to_look_at(timed, due, busy, (standing.by_id[i] for i in moved if i in standing.by_id))

        def rest(
            ref: UnitRef, given: Mapping[UnitRef, Readiness]
        ) -> Readiness | Literal[Turn.NEEDED, Turn.HERE] | None:
            # what its turn would give without a request: its status as listed, when another replica's or
            # not due (no status to write: not suspended, not waiting); else its turn
            spec = by_ref[ref]
            if leases is not None and held is not None and shard_of(spec.id, leases.shards) not in held:
                self._schedule.mark(ref, servable=False)
                return ready.get(ref)
            if spec.suspend or ref in due or spec.id in moved:
                return Turn.NEEDED
            if spec.depends_on and blocked([spec], collections.ChainMap(dict(given), ready)):
                return Turn.NEEDED
            # its interval ran out, nothing else: its pass most likely finds it at rest, with no request
            return Turn.HERE if ref in timed else ready.get(ref)

        served_now = serve_round(looked, needs, turn, self._workers, stop, held=busy, rest=rest)
        self._quiet(standing, looked, held)
        # retire after the passes: a Unit renamed or moved declares what its old name applied, and its pass has
        # relabelled it by now, so the old name's retirement finds it no longer its own and leaves it
        if not stop.is_set():
            self._retirer.round(self._declared, inventory, live_units, specs, self._revision, acting=self._acting)
        for ref in set(looked) - set(served_now):
            self._schedule.mark(ref, servable=False)  # not this round's: the end of what held it wakes a round
        # only the Units this round may pass count: a suspended, waiting or another replica's Unit whose time
        # came would otherwise make every round come at once (a change to them wakes the loop anyway)
        return self._next_due(self._schedule.next_times(order.order))

    def _quiet(self, standing: Standing, looked: tuple[UnitRef, ...], held: frozenset[int] | None) -> None:
        """The Units a round did not look at (``Standing.to_look_at``), as a look would have left them: another
        replica's, or without a readiness as listed (served by no one this round), not servable."""
        leases, ready = self._leases, standing.ready
        if leases is None and all(r in ready for r in standing.order.order):
            return
        seen = set(looked)
        for ref in standing.order.order:
            if ref in seen:
                continue
            if ready.get(ref) is None or (
                leases is not None and held is not None and shard_of(standing.by_ref[ref].id, leases.shards) not in held
            ):
                self._schedule.mark(ref, servable=False)

    def _stand(self, live_units: tuple[LiveUnit, ...], commit: str) -> Standing:
        """What the round serves: derived again only when the listed Units, the root's Units or inventory, or
        the commit moved (most rounds of a loop at rest reuse the last)."""
        specs, refused, inventory = self._root_specs()
        sources = (live_units, specs, inventory, commit)
        if self._standing is not None and self._stood == sources:
            # equal, but after a list not the same objects: comparing 1,000 Units' bodies cost 11 ms a round;
            # kept from now on, the next rounds compare them by identity (bench/units_1000.py's no-op window)
            self._stood = sources
            return self._standing
        self._standing, ignored = stand(self._root, sources, refused, self.unit.policies_path)
        self._stood = sources
        for why in ignored:
            self._note(why)
        return self._standing

    def _serve_one(self, spec: UnitSpec, live: LiveUnit, ready: Mapping[UnitRef, Readiness]) -> Readiness | None:
        """The Unit's turn, on a worker; its readiness for its dependents, or None when it is not done in this
        round (busy, its health wait under way, or its turn failed): its dependents then wait."""
        if not self._busy.take(spec.ref):  # its turn or wait of an earlier round is still under way
            return None
        pending: Pending | None = None
        try:
            readiness, pending = self._turn(spec, live, ready)
            if pending is not None:
                self._waits.start(spec.id, functools.partial(self._wait_then_write, pending))
            return readiness
        except Exception as error:  # a status that could not be written, or a bug: said; the others go on
            self._note(f"{spec.origin}: {spec.ref}: its turn failed, tried again next round: {error}")
            return None
        finally:
            if pending is None:
                self._busy.release(spec.ref)

    def _turn(
        self, spec: UnitSpec, live: LiveUnit, ready: Mapping[UnitRef, Readiness]
    ) -> tuple[Readiness | None, Pending | None]:
        """On the replica that holds its shard: suspended, waiting, or a pass when due. A pass whose Unit
        waits for health gives back its pending wait (and no readiness)."""
        as_is = readiness_of(live.status, live.generation, self._revision.commit if self._revision else "")
        self._schedule.mark(spec.ref, servable=False)
        with self._acting(spec.id) as still:
            if still is None:  # another replica's: its status, as that one wrote it, is what dependents read
                return as_is, None
            if spec.suspend:
                return self._write(still, live, PassOutcome(Phase.SUSPENDED, spec.generation)) or as_is, None
            waiting = blocked([spec], ready).get(spec.ref)
            if waiting is not None:
                outcome = PassOutcome(Phase.WAITING, spec.generation, message=waiting)
                return self._write(still, live, outcome) or as_is, None
            commit = self._revision.commit if self._revision else ""
            self._schedule.mark(spec.ref, servable=True)
            moved = self._take_moved(spec.id)
            if not self._schedule.is_due(spec.ref, live, commit, time.monotonic(), moved=moved):
                return ready.get(spec.ref) or as_is, None
            passed = self._pass(spec, still)
            if passed is None:  # the shard went while its folder was rendered: its new holder passes it
                return as_is, None
            result, applier = passed
            self._track(result)
            policies = result.policies
            if result.error is not None and self._governed.wants(spec.id):  # restarted: the applied commit's
                policies = applied_policies(self._store, self._source, unit_of(spec, self.unit))
            self._governed.passed(spec.id, spec.target_namespace or spec.ref.namespace, policies,
                                  failed=policies is None,
                                  commit="" if result.error else result.revision or "")  # fmt: skip
            self._on_result(result)
            wait = spec.interval.total_seconds()
            if result.failure is not None and result.failure.retryable:
                wait = min(wait, jittered(1, self._interval))
            if result.error is None and spec.wait.enabled:
                return None, Pending(spec, live, result, applier, commit, wait)
            self._schedule.passed(spec.ref, commit, due_after(wait, time.monotonic()))
            return self._write(still, live, outcome_of(result, spec.generation), result) or as_is, None

    def _wait_then_write(self, pending: Pending) -> None:
        """A Unit's health wait, off the workers: then its status, on its shard's claim; then a round, for
        its dependents (and for it, if its shard moved meanwhile)."""
        spec = pending.spec
        try:
            deadline = time.monotonic() + (spec.timeout or spec.interval).total_seconds()
            outcome = healthy(pending, deadline, self._stop)
            self._schedule.passed(spec.ref, pending.commit, due_after(pending.after, time.monotonic()))
            with self._acting(spec.id) as still:
                if still is not None:
                    self._write(still, pending.live, outcome, pending.result)
        except Exception as error:  # a status that could not be written, or a bug: said; the others go on
            self._note(f"{spec.origin}: {spec.ref}: its health wait failed, tried again next round: {error}")
        finally:
            self._busy.release(spec.ref)
            self._wake.set()

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

    def _pass(self, spec: UnitSpec, still: Callable[[], bool]) -> tuple[ReconcileResult, Applier] | None:
        """One pass over a Unit, on the round's revision, as its account (and that account's applier); None
        when the Unit stopped being ours before the pass began to write."""
        unit = unit_of(spec, self.unit)
        revision = self._revision
        head: Head
        if revision is None:  # nothing fetched yet in this process: repair drift from its last commit
            head = Head(None, refusal=UnitError(f"{spec.ref}: the repository was not fetched yet; trying again"))
        elif self._schedule.passed_at(spec.ref) == revision.commit:
            # passed at this commit already: most likely at rest, which needs no render; judged if it is not
            head = _Deferred(revision, judging=functools.cache(lambda: self._judged(unit, spec, revision)))
        else:
            head = self._judged(unit, spec, revision)
        if not still():
            return None
        applier = self._applier
        try:
            applier = self._account_of(spec)  # IdentityError: the Unit names no account it may act as
            applier.confirm_acting_as(unit.name)  # ImpersonationRefusedError: we may not act as it
            reconciler = replace(self._reconciler, applier=applier, live=self._cache.view(unit.name))
            return reconciler.reconcile(unit, head=head, want_policies=self._governed.wants(unit.name)), applier
        except GitOpsGuardError as error:  # the inventory itself could not be read or saved
            return ReconcileResult(unit.name, None, (), error=str(error), failure=error.with_traceback(None)), applier
        except Exception as error:  # a bug in one Unit's pass must not stop the others
            return ReconcileResult(unit.name, None, (), error=f"internal error: {error!r}"), applier

    def _judged(self, unit: Unit, spec: UnitSpec, revision: Revision) -> Head:
        """The Unit's folder at ``revision``, rendered and gated; refused whole when it declares a Unit."""
        head = judge(unit, revision, self._applier, renderer(self._stored), datetime.now(UTC))
        minted = minted_units(spec, head.manifests) if head.refusal is None else ()
        if not minted:
            return head
        more = f" ({len(minted) - 3} more)" if len(minted) > 3 else ""
        return Head(revision, refusal=UnitError("; ".join(minted[:3]) + more))

    def governance(self) -> Governance | None:
        """What the live scan judges each namespace by: the root's policies, and each Unit's own in its target
        namespace (None until the root applied a revision)."""
        return self._governed.governance(self.policies)

    def _next_due(self, scheduled: list[float]) -> float:
        soonest = min([self._root_due, *scheduled])
        return max(0.5, min(self._interval, soonest - time.monotonic()))

    def _watch_units(self, stop: threading.Event) -> None:
        """One informer on the Units the root applied (its label): any change wakes a round. Started once the
        Units can be listed (the CRD comes with ``manifests/``)."""
        if self._watching:
            return
        self._watching = True
        informer = Informer(self._applier, self._raw, (API_VERSION, "Unit"), keep_objects=False, what="Units",
                            selector=f"{UNIT_LABEL}={self.unit.name}",
                            on_event=self._units_changed, on_sync=self._units_synced)  # fmt: skip
        informer.start(stop)

    def _note(self, message: str) -> None:
        with self._said:
            if message not in self._noted:  # said once per process, not every round
                self._noted.add(message)
                self._on_note(message)


def unit_of(spec: UnitSpec, root: Unit) -> Unit:
    """The recipe's unit for a Unit: its id, folder, default namespace (targetNamespace, else its own),
    reportOnly and prune. Its policies are the root's (the platform's) plus its own ``policiesPath``, which
    may only restrict (``policy/compose.py``); the rest is the operator's."""
    return replace(root, name=spec.id, path=spec.path, default_namespace=spec.target_namespace or spec.ref.namespace,
                   report_only=spec.report_only or root.report_only, prune=spec.prune,
                   own_policies_path=spec.policies_path)  # fmt: skip


def _label(body: Mapping[str, Any]) -> object:
    labels = (body.get("metadata") or {}).get("labels")
    return labels.get(UNIT_LABEL) if isinstance(labels, Mapping) else None


def _where(body: Mapping[str, Any]) -> tuple[str, str]:
    metadata = body.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
