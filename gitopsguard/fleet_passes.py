"""A Unit's turn in a Units round (``fleet.py``), on a worker: suspended, waiting for a dependency, or when due
one pass with its own ``reconcile.Unit``, inventory and account, on the round's revision (its folder rendered and
judged only when the pass needs it, refused whole when it declares a Unit); then its health wait, on a thread of
its own, and its status.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from gitopsguard.backoff import jittered
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.units import LiveUnit
from gitopsguard.commands.units import outcome_of
from gitopsguard.errors import GitOpsGuardError, UnitError
from gitopsguard.fleet_core import Deferred, FleetCore
from gitopsguard.fleet_turns import Pending, due_after, healthy
from gitopsguard.heads import Head, judge
from gitopsguard.reconcile import ReconcileResult, Unit, renderer
from gitopsguard.scan.governed import applied_policies
from gitopsguard.source import Revision
from gitopsguard.units import PassOutcome, Phase, Readiness, UnitRef, UnitSpec, blocked, readiness_of
from gitopsguard.units.root import minted_units


class UnitPasses(FleetCore):
    """A Unit's turn, for ``Fleet``: a mixin on its state (``fleet_core.FleetCore``)."""

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
            head = Deferred(revision, judging=functools.cache(lambda: self._judged(unit, spec, revision)))
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


def unit_of(spec: UnitSpec, root: Unit) -> Unit:
    """The recipe's unit for a Unit: its id, folder, default namespace (targetNamespace, else its own),
    reportOnly and prune. Its policies are the root's (the platform's) plus its own ``policiesPath``, which
    may only restrict (``policy/compose.py``); the rest is the operator's."""
    return replace(root, name=spec.id, path=spec.path, default_namespace=spec.target_namespace or spec.ref.namespace,
                   report_only=spec.report_only or root.report_only, prune=spec.prune,
                   own_policies_path=spec.policies_path)  # fmt: skip
