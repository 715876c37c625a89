"""The continuous loop: reconcile on a timer, and at once when something the unit owns changes.

Each owned kind is listed once and then watched (filtered by the unit's label) into a cache that passes
read instead of listing again; any event wakes the loop, and a burst of events becomes one pass. A pass
over an unchanged commit where nothing moved writes nothing, so the events our own writes cause end
after one quiet pass. A local repository is also watched on disk, so a commit there is picked up within
about a second.

New heads are fetched, rendered and judged by a worker thread (``heads.HeadWorker``), not by the loop:
while a slow or hostile commit is rendered (kustomize may take up to its time limit), the loop keeps
repairing drift on the last applied commit from its kept render, within a second. When the worker has a
new head, it wakes the loop, whose next pass applies it (or reports why it is refused, and holds on).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from gitopsguard.backoff import jittered, next_wait, worth_retrying
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.audittrail import AuditTrail, Writer
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.livecache import LiveCache
from gitopsguard.cluster.rest import RawApi
from gitopsguard.collector import Collector
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.heads import Head, HeadWorker
from gitopsguard.model import Change
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.policy import PolicySet
from gitopsguard.reconcile import DEFAULT_BRAKE, Reconciler, ReconcileResult, RenderCache, Unit, renderer
from gitopsguard.render.stored import RenderStore
from gitopsguard.source import GitSource
from gitopsguard.source.watch import watch_commits


class Controller:
    def __init__(
        self, unit: Unit, source: GitSource, applier: Applier, store: InventoryStore, raw: RawApi, *,
        interval: float = 30.0, on_result: Callable[[ReconcileResult], None] = lambda _: None,
        brake: BrakePolicy = DEFAULT_BRAKE, trail: AuditTrail | None = None,
    ) -> None:  # fmt: skip
        self.unit, self._applier, self._raw = unit, applier, raw
        self._trail = trail  # the API server's audit log, to name the user behind a drift
        self._interval, self._on_result = interval, on_result
        self._wake = threading.Event()
        self._live = LiveCache(applier, raw, unit.name, on_change=self._wake.set)  # any change wakes a pass
        self._renders: RenderCache = {}
        # after a restart, each commit is not rendered again
        self._stored = RenderStore(source.workdir / "renders", unit.render_settings)
        # The worker renders new heads with a store of its own (same folder): a store's memo serves one thread.
        worker_store = RenderStore(source.workdir / "renders", unit.render_settings)
        self._backoff = lambda failures: jittered(failures, interval)
        self._heads = HeadWorker(unit, source, applier, store, renderer(worker_store), on_ready=self._wake.set,
                                 delay=self._backoff)  # fmt: skip
        self._reconciler = Reconciler(source, applier, store, brake=brake, renders=self._renders, live=self._live,
                                      stored=self._stored)  # fmt: skip
        self.last_duration = 0.0  # seconds the last pass took (for metrics)
        self.policies: PolicySet | None = None  # the policies of the last applied revision (for the live scan)

    def run(self, stop: threading.Event, local_repository: Path | None = None) -> None:
        """Reconcile until ``stop`` is set."""
        observer = watch_commits(local_repository, self.wake) if local_repository else None
        self._heads.start(stop)  # its own thread: a bug there ends the process (lifeline)
        if self._trail:
            self._trail.follow(stop)
            self._introduce()
        for kind in self._reconciler.owned_kinds(self.unit):  # watched from the first pass on: listed once
            self._live.track(kind, stop)
        failures, collector = 0, Collector()
        try:
            with collector.passes():  # the cycle collector runs between passes, not in them
                while not stop.is_set():
                    self._wake.clear()
                    if self._heads.died.is_set():  # without the lifeline (tests, the demo), stop here
                        raise GitOpsGuardError(f"unit {self.unit.name}: the thread that fetches and judges new "
                                               "commits died (its error is above); restart gitopsguard")  # fmt: skip
                    started, head = time.monotonic(), self._heads.latest()
                    result = self._pass(head)
                    self._keep_one_render(head)
                    self.last_duration = time.monotonic() - started
                    result = self._attributed(result)
                    if result.policies is not None and not result.error:
                        self.policies = result.policies
                    self._on_result(result)
                    for kind in result.kinds:
                        self._live.track(kind, stop)
                    failures = failures + 1 if worth_retrying(result.failure) else 0
                    collector.between_passes(busy=self._wake.is_set())
                    # Throttled or the API server away: try again soon. Refused (an invalid object, RBAC, a bad
                    # commit): reported once, then wait for a change (an event, a new head) or the interval.
                    self._wake.wait(next_wait(result.failure, failures, self._backoff))
        finally:
            self._heads.fetch_now()  # let the worker see ``stop`` now rather than after its wait
            if observer:
                observer.stop()
                observer.join()

    def _pass(self, head: Head | None) -> ReconcileResult:
        try:
            if head is None:  # the first head is still being fetched and judged: hold the last applied commit
                return self._reconciler.hold(self.unit)
            return self._reconciler.reconcile(self.unit, head=head, want_policies=self.policies is None)
        except GitOpsGuardError as error:  # the inventory itself could not be read or saved
            return ReconcileResult(self.unit.name, None, (), error=str(error), failure=error.with_traceback(None))
        except Exception as error:  # a bug must not stop a controller silently: report it, retry at the interval
            return ReconcileResult(self.unit.name, None, (), error=f"internal error: {error!r}")

    def _keep_one_render(self, head: Head | None) -> None:
        """Keep the head's render as the kept render of its commit. The first passes hold the last applied commit
        from a render of their own while the worker judges the head, which is most often that very commit: two
        copies of every manifest (and the prepared forms of the loop's copy) for as long as the loop runs."""
        if head is None or head.revision is None or head.refusal is not None or head.evaluation is None:
            return
        commit = head.revision.commit
        if commit in self._renders and self._renders[commit] is not head.manifests:
            self._renders[commit] = head.manifests  # what the pass itself keeps when no hold rendered it first

    def _attributed(self, result: ReconcileResult) -> ReconcileResult:
        """The result, with the user behind each repaired drift where the audit log names one."""
        if self._trail is None or not any(c.repaired_drift for c in result.changes):
            return result
        if self._trail.me is None:  # the first probe was lost (server unreachable, log rotated): ask again
            self._introduce()
        deadline = time.monotonic() + 1.0  # the audit line may land just after the repair

        def named(change: Change) -> Change:
            if not change.repaired_drift or change.drift is None:
                return change
            writer = self._writer_of(change, deadline)
            return replace(change, drift=replace(change.drift, user=str(writer))) if writer else change

        return replace(result, changes=tuple(named(c) for c in result.changes))

    def _writer_of(self, change: Change, deadline: float) -> Writer | None:
        key = change.key
        if self._trail is None:
            return None
        try:
            resource = self._applier.resource(change.api_version, key.kind, str(key)).name
        except GitOpsGuardError:  # the kind went away meanwhile: nothing to look up
            return None
        wait = max(0.0, deadline - time.monotonic())
        return self._trail.writer((key.group, resource, key.namespace, key.name), wait=wait)

    def _introduce(self) -> None:
        """Let the audit trail learn which user the API server knows us as (``AuditTrail.learn_identity``)."""
        if self._trail is None:
            return
        with contextlib.suppress(GitOpsGuardError):  # unreachable: asked again at the next drift
            self._trail.learn_identity(self._raw)

    def wake(self) -> None:
        """Fetch now, and pass now."""
        self._heads.fetch_now()
        self._wake.set()
