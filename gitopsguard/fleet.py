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

The round's parts live beside this recipe: the state it keeps (``fleet_core.py``), the root path's part
(``fleet_root.py``) and a Unit's turn (``fleet_passes.py``).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from gitopsguard.backoff import jittered, next_wait, worth_retrying
from gitopsguard.cluster.namespaces import NamespaceView
from gitopsguard.cluster.shardleases import ShardLeases
from gitopsguard.cluster.units import API_VERSION, LiveUnit
from gitopsguard.collector import Collector
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.fleet_passes import UnitPasses
from gitopsguard.fleet_passes import unit_of as unit_of  # where check --root and tests find it
from gitopsguard.fleet_pool import Turn, WorkerDiedError, serve_round
from gitopsguard.fleet_root import RootPath
from gitopsguard.fleet_standing import Standing, stand
from gitopsguard.fleet_standing import refused_targets as refused_targets  # where check --root and tests find it
from gitopsguard.fleet_status import answering
from gitopsguard.fleet_turns import accounts as accounts  # where the CLI and the tests have found it
from gitopsguard.policy.compose import Governance
from gitopsguard.source.watch import watch_commits
from gitopsguard.units import PassOutcome, Phase, Readiness, UnitRef, blocked, unit_id
from gitopsguard.units import Reason as Condition
from gitopsguard.units.shards import shard_of

# Events wake a round at once, but whoever may label an object may wake it (a tenant patching a ConfigMap that
# carries any Unit's id, as fast as it can: tests/integration/redteam_units/). A round costs CPU for every Unit
# (tens of milliseconds at 1,000, more when it lists them again), so the loop rests this long after each round
# whatever woke it; what came meanwhile is served by the next round (its Units stay due), within a second still.
ROUND_REST = 0.5


class Fleet(RootPath, UnitPasses):
    """The root unit and the Units it declares, reconciled until ``stop``. ``account_of`` gives a Unit's
    applier (its service account); the root unit always uses ``applier``, the controller's own."""

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

    def governance(self) -> Governance | None:
        """What the live scan judges each namespace by: the root's policies, and each Unit's own in its target
        namespace (None until the root applied a revision)."""
        return self._governed.governance(self.policies)

    def _next_due(self, scheduled: list[float]) -> float:
        soonest = min([self._root_due, *scheduled])
        return max(0.5, min(self._interval, soonest - time.monotonic()))
