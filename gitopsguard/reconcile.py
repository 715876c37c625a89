"""One reconcile pass of a unit, as a recipe: fetch -> render -> gate -> apply -> inventory diff -> prune ->
status. ``Reconciler`` holds what a pass needs besides the unit and the time (the source, the applier, the
inventory store, the caches a long-running loop keeps, the clock); the verbs live in ``sync/``, one module
each, and return their changes as data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from gitopsguard import at_rest
from gitopsguard.backup import Backups
from gitopsguard.cluster.apply import Applier, KindCache, OwnedSnapshot
from gitopsguard.cluster.inventory import Entry, Inventory, InventoryStore
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.gate import RevisionBlockedError, policies_at
from gitopsguard.heads import Head, Render, judge
from gitopsguard.model import Action, Change, Manifest, ObjectKey
from gitopsguard.plan.diff import resource_version
from gitopsguard.plan.prune import RELEASE_MARKER, BrakePolicy
from gitopsguard.policy import DenyLevel, Evaluation, PolicySet, evaluate
from gitopsguard.policy.podsecurity import NO_EXEMPTIONS, Exemptions
from gitopsguard.render import render
from gitopsguard.render.settings import DEFAULT as DEFAULT_RENDER
from gitopsguard.render.settings import RenderSettings
from gitopsguard.render.stored import RenderStore
from gitopsguard.source import GitSource, Revision
from gitopsguard.source.review import Review, UnreviewedRevisionError
from gitopsguard.sync import (
    Applied,
    Holding,
    Pruned,
    RefusedObjectsError,
    RolledBackError,
    Swept,
    Target,
    apply_revision,
    prune,
    sweep,
)

DEFAULT_BRAKE = BrakePolicy()
RenderCache = dict[str, tuple[Manifest, ...]]  # commit -> its rendered manifests (never mutated downstream)
# A held commit is rendered from the source's one second working tree (``GitSource.checkout_of``); passes run
# side by side (``fleet_pool.py``), so one's checkout must not move under another's render
_HELD_CHECKOUT = threading.Lock()


@dataclass(frozen=True)
class Unit:
    name: str
    path: str
    default_namespace: str = "default"
    report_only: bool = False  # find and report drift and pending prunes; write nothing to workloads
    backup_dir: Path | Backups | None = None  # where unmanaged workloads are backed up before deletion
    policies_path: str | None = "policies"  # the repository's policy folder, read at each revision
    deny_level: DenyLevel = DenyLevel.LOW  # operator configuration, never taken from the repository
    render_settings: RenderSettings = DEFAULT_RENDER  # the bounds of a render, and whether remote bases may load
    pod_security_exemptions: Exemptions = NO_EXEMPTIONS  # operator configuration, as for Pod Security Admission
    prune: bool = True  # False (a Unit's spec.prune): what left Git is left in the cluster, no longer owned
    own_policies_path: str | None = None  # a Unit's spec.policiesPath: adds to policies_path's, never loosens

    @property
    def settings(self) -> str:
        """What decides the objects a commit becomes: another path or namespace at the same commit is
        another revision to apply, not one at rest."""
        policies = (self.policies_path or "") + (f"+{self.own_policies_path}" if self.own_policies_path else "")
        remote = " remote-bases" if self.render_settings.allow_remote_bases else ""
        return (
            f"path={self.path} namespace={self.default_namespace} policies={policies} "
            f"deny={self.deny_level.value}{remote}"
        )

    @property
    def target(self) -> Target:
        return Target(self.name, self.default_namespace, self.report_only)


@dataclass(frozen=True)
class ReconcileResult:
    unit: str
    revision: str | None
    changes: tuple[Change, ...]
    error: str | None = None
    brake: str | None = None
    kinds: frozenset[tuple[str, str]] = frozenset()  # (apiVersion, kind) of what the unit owns: what to watch
    evaluation: Evaluation | None = None  # the policy verdict on a revision this pass rendered
    policies: PolicySet | None = None  # the policies of the revision this pass applied (for the live scan)
    review: Review | None = None  # who approved what, when this pass applied a new commit
    unreviewed: UnreviewedRevisionError | None = None  # the head held a change nobody allowed reviewed
    refused: tuple[Change, ...] = ()  # a failed pass: each object the server refused, its error as data
    failure: GitOpsGuardError | None = None  # the typed error behind ``error``: whether the loop retries soon


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Reconciler:
    """What a pass needs besides the unit and the time. ``renders`` and ``live`` are a long-running loop's
    (the renders it keeps, the watch-fed cache of owned objects); a one-off pass has neither."""

    source: GitSource
    applier: Applier
    store: InventoryStore
    brake: BrakePolicy = DEFAULT_BRAKE
    allow_rewind: bool = False
    break_glass: str = ""
    renders: RenderCache | None = None
    live: KindCache | None = None
    stored: RenderStore | None = None
    clock: Callable[[], datetime] = field(default=_utc_now)

    def reconcile(
        self, unit: Unit, now: datetime | None = None, *, head: Head | None = None, want_policies: bool = False
    ) -> ReconcileResult:
        """One pass. With ``head``, the loop's worker fetched, rendered and judged the revision already."""
        now = now or self.clock()
        owned = OwnedSnapshot(self.applier, unit.name, self.live)  # each owned kind read once, before any write
        # 0. The loop's common pass: the inventory the loop's watch vouches for, applied at the judged commit,
        #    nothing owned moved since: done, reading nothing at all. Anything else reads the inventory.
        rested = self._rests(unit, head, owned, want_policies)
        if rested is not None:
            return rested
        # 1. What this unit applied last, and at which commit (as stored now: read before anything is written);
        #    what it owns (from the loop's watches, if any).
        inventory = self.store.load(unit.name)
        commit = None
        try:
            # 2. Fetch; the branch may only move forward from the applied commit.
            revision = head.fetched() if head else self._fetch(inventory)
            commit = revision.commit
            # 3. Stop here, writing nothing, if this commit is applied and no owned object has moved since.
            resting = at_rest.standing(inventory, commit, unit.settings, owned)
            if resting is not None and not resting.moved:
                policies = self._policies(unit, revision, head) if want_policies else None
                return _at_rest(unit, inventory, commit, None, policies)
            # 4. Render and gate: mutations, then validation; a denied object, or any failure to render or
            #    judge, refuses the whole revision.
            evaluation, policies, manifests = self._rendered_and_judged(unit, revision, inventory, head, now)
            #    Stop here too if only status moved: the objects that changed since they matched Git still do.
            if resting is not None and at_rest.only_status_moved(
                manifests, unit.name, unit.default_namespace, self.applier.namespaced, inventory, resting
            ):  # kept in memory: the next pass finds these versions at rest without rendering (``_rests``)
                self.store.vouch(unit.name, {k: resource_version(resting.live[k]) for k in resting.moved})
                return _at_rest(unit, inventory, commit, evaluation, policies)
            # 5. Apply: CRDs and Namespaces, then everything else; what may have changed passes a dry run first.
            applied = apply_revision(unit.target, manifests, self.applier, inventory, owned)
            # 6. Inventory diff and prune: delete what left Git, unless the brake engages (the commit can release
            #    it). Deletes check the label on the object as it is now, never on the loop's cached view.
            brake = replace(self.brake, released=True) if RELEASE_MARKER in revision.message else self.brake
            listed = owned if self.live is None else OwnedSnapshot(self.applier, unit.name)
            pruned = prune(unit.name, inventory, applied.desired, self.applier, listed, brake,
                           report_only=unit.report_only) if unit.prune else Pruned(())  # fmt: skip
            # 7. Workloads Git does not describe, in namespaces that opted in: report, or back up and delete.
            holding = Holding(unit.name, unit.report_only, unit.backup_dir)
            swept = sweep(holding, applied.desired, inventory.unmanaged, self.applier, now)
            # 8. Status: what this unit owns now, and the state each object was last seen to match Git in.
            return self._remember(unit, inventory, revision, applied, pruned, swept, evaluation, policies)
        except GitOpsGuardError as error:
            return self._refused(unit, inventory, commit, error)

    def _rests(
        self, unit: Unit, head: Head | None, owned: OwnedSnapshot, want_policies: bool
    ) -> ReconcileResult | None:
        """The result of a pass at rest, found from the inventory the store recalls (``InventoryStore.recall``:
        kept in memory, its version seen stored by the watch); None when it recalls none or the unit is not at
        rest, and then the pass reads the inventory and goes the usual way. Writes nothing, so a watch that lags
        a moment behind another writer of the inventory can make it report at rest once, never act on it."""
        if head is None or head.revision is None or (recalled := self.store.recall(unit.name)) is None:
            return None
        commit = head.revision.commit
        try:
            resting = at_rest.standing(recalled, commit, unit.settings, owned)
        except GitOpsGuardError:
            return None  # the usual way reads again, and says why it cannot
        if resting is None or resting.moved:
            return None
        policies = self._policies(unit, head.revision, head) if want_policies else None
        return _at_rest(unit, recalled, commit, None, policies)

    def hold(self, unit: Unit) -> ReconcileResult:
        """A pass over the last applied commit alone, for the loop while its worker has not judged a head yet
        (just started, the head slow to render): drift is repaired from that commit. Applies only; never
        prunes."""
        inventory = self.store.load(unit.name)
        # nothing written in this pass yet: the loop's watches may serve what the unit owns
        held, repaired = self._hold_last_applied(
            unit, inventory, None, OwnedSnapshot(self.applier, unit.name, self.live)
        )
        if _versions_apart(held) != _versions_apart(inventory) or any(
            c.action is not Action.UNCHANGED for c in repaired
        ):
            self.store.save(unit.name, held)
        return ReconcileResult(unit.name, inventory.last_applied, repaired, kinds=_kinds(held.entries))

    def owned_kinds(self, unit: Unit) -> frozenset[tuple[str, str]]:
        """The kinds the unit's stored inventory names, for the loop to watch before its first pass; none when
        the inventory cannot be read (the pass then says why)."""
        try:
            return _kinds(self.store.load(unit.name).entries)
        except GitOpsGuardError:
            return frozenset()

    def _fetch(self, inventory: Inventory) -> Revision:
        return self.source.fetch(last_applied=inventory.last_applied, allow_rewind=self.allow_rewind,
                                 break_glass=self.break_glass)  # fmt: skip

    def _policies(self, unit: Unit, revision: Revision, head: Head | None) -> PolicySet | None:
        if head is not None:  # the worker read them with the head; the checkout is the worker's to change
            return head.policies
        return policies_at(revision.checkout, unit.policies_path, own=unit.own_policies_path, unit=unit.name)

    def _rendered_and_judged(
        self, unit: Unit, revision: Revision, inventory: Inventory, head: Head | None, now: datetime
    ) -> tuple[Evaluation | None, PolicySet | None, tuple[Manifest, ...]]:
        """The revision's manifests, judged; from the loop's kept render when it has this commit's (judged
        when it was kept). A long-running loop keeps this commit's render and the last applied one's."""
        commit = revision.commit
        kept = self.renders.get(commit) if self.renders is not None else None
        if kept is not None:
            return None, None, kept
        judged = head or judge(unit, revision, self.applier, renderer(self.stored, unit.render_settings), now)
        evaluation, policies, manifests = judged.accepted()
        if self.renders is not None:
            for old in [c for c in self.renders if c != inventory.last_applied]:
                del self.renders[old]
            self.renders[commit] = manifests
        return evaluation, policies, manifests

    def _remember(
        self, unit: Unit, inventory: Inventory, revision: Revision, applied: Applied, pruned: Pruned, swept: Swept,
        evaluation: Evaluation | None, policies: PolicySet | None,
    ) -> ReconcileResult:  # fmt: skip
        """Save what the pass leaves the unit owning, and return its result. A report-only unit keeps what
        its inventory says was applied; a pass whose only news is status updates writes nothing."""
        commit = revision.commit
        entries = {d.key: Entry(d.api_version, applied.versions.get(d.key, ""), d.digest) for d in applied.desired}
        entries |= pruned.still_owned
        changes = (*applied.changes, *pruned.changes, *swept.changes)
        done = "\n".join(str(c) for c in changes if c.action is not Action.UNCHANGED)
        if unit.report_only:
            report = replace(inventory, last_attempted=commit, last_error="", last_changes=done, unmanaged=swept.seen)
            self.store.save(unit.name, report)
            return ReconcileResult(unit.name, commit, changes, kinds=_kinds(inventory.entries) | _kinds(entries),
                                   evaluation=evaluation, policies=policies)  # fmt: skip
        new = commit != inventory.last_applied
        reviewed = (revision.review.summary() if revision.review else "") if new else inventory.reviewed
        after = Inventory(entries, commit, commit, "", done or inventory.last_changes, swept.seen,
                          swept.scans, unit.settings, reviewed, pruned.brake or "")  # fmt: skip
        if done or _versions_apart(after) != _versions_apart(inventory):  # status updates alone write nothing
            self.store.save(unit.name, after)
        return ReconcileResult(unit.name, commit, changes, brake=pruned.brake, kinds=_kinds(entries),
                               evaluation=evaluation, policies=policies,
                               review=revision.review if new else None)  # fmt: skip

    def _refused(
        self, unit: Unit, inventory: Inventory, commit: str | None, error: GitOpsGuardError
    ) -> ReconcileResult:
        """A failed pass: the last applied commit is held (its drift repaired) and the failure remembered."""
        unreviewed = error if isinstance(error, UnreviewedRevisionError) else None
        commit = commit or (unreviewed.head if unreviewed else None)
        attempted = commit or inventory.last_attempted
        inventory, repaired = self._hold_last_applied(unit, inventory, commit)
        self.store.save(unit.name, replace(inventory, last_attempted=attempted, last_error=str(error)))
        blocked = error.evaluation if isinstance(error, RevisionBlockedError) else None
        undone = error.undone if isinstance(error, RolledBackError) else ()
        refused = error.refused if isinstance(error, RefusedObjectsError | RolledBackError) else ()
        return ReconcileResult(unit.name, commit, (*undone, *repaired), error=str(error),
                               failure=error.with_traceback(None),  # the pass's frames are not kept alive
                               kinds=_kinds(inventory.entries), evaluation=blocked, unreviewed=unreviewed,
                               refused=refused)  # fmt: skip

    def _hold_last_applied(
        self, unit: Unit, inventory: Inventory, commit: str | None, owned: OwnedSnapshot | None = None
    ) -> tuple[Inventory, tuple[Change, ...]]:
        """While a new commit fails, keep repairing drift from the last applied one: from the render a
        long-running loop keeps, or, after a restart, rendered again from that commit. Applies only; never
        prunes. Returns the inventory with refreshed versions. ``owned``: what the unit owns, where nothing was
        written since it could be read; by default listed afresh (a failed pass may have written)."""
        last = inventory.last_applied
        if unit.report_only or last is None or commit == last:
            return inventory, ()
        try:
            manifests = self.renders.get(last) if self.renders is not None else None
            if manifests is None:
                manifests = self._render_last_applied(unit, last)
                if self.renders is not None:
                    self.renders[last] = manifests
            # after a failed pass (no ``owned``) list again: that pass may have written
            fresh = owned if owned is not None else OwnedSnapshot(self.applier, unit.name)
            applied = apply_revision(unit.target, manifests, self.applier, inventory, fresh)
        except RolledBackError as error:
            return inventory, error.undone  # what it deleted again is reported all the same
        except GitOpsGuardError:
            return inventory, ()  # the API server itself is failing, or the commit is gone: nothing more to do
        held = {d.key: Entry(d.api_version, applied.versions.get(d.key, ""), d.digest) for d in applied.desired}
        return replace(inventory, entries=inventory.entries | held), applied.changes

    def _render_last_applied(self, unit: Unit, commit: str) -> tuple[Manifest, ...]:
        """The bodies the last applied commit produced: rendered and mutated by its own policies, never gated
        (they passed the gate when applied; an exception expired since must not stop the repair)."""
        with _HELD_CHECKOUT:
            checkout = self.source.checkout_of(commit)
            manifests = _rendered(checkout, unit.path, commit, self.stored, unit.render_settings)
            policies = policies_at(checkout, unit.policies_path)
        return evaluate(manifests, policies, now=self.clock(), deny_level=DenyLevel.OFF).manifests


def reconcile(
    unit: Unit, source: GitSource, applier: Applier, store: InventoryStore, *,
    brake: BrakePolicy = DEFAULT_BRAKE, allow_rewind: bool = False, renders: RenderCache | None = None,
    now: datetime | None = None, want_policies: bool = False, live: KindCache | None = None,
    stored: RenderStore | None = None, head: Head | None = None, break_glass: str = "",
) -> ReconcileResult:  # fmt: skip
    """One pass with a Reconciler made for it (tests, benchmarks); the loop and the CLI keep one."""
    reconciler = Reconciler(source, applier, store, brake=brake, allow_rewind=allow_rewind, break_glass=break_glass,
                            renders=renders, live=live, stored=stored)  # fmt: skip
    return reconciler.reconcile(unit, now, head=head, want_policies=want_policies)


def hold(
    unit: Unit, source: GitSource, applier: Applier, store: InventoryStore, *, renders: RenderCache | None = None,
    stored: RenderStore | None = None,
) -> ReconcileResult:  # fmt: skip
    """``Reconciler.hold`` with a Reconciler made for it."""
    return Reconciler(source, applier, store, renders=renders, stored=stored).hold(unit)


def renderer(stored: RenderStore | None, settings: RenderSettings = DEFAULT_RENDER) -> Render:
    """Render a commit's checkout: from the store on disk where there is one (the store's own settings)."""
    return lambda checkout, path, commit: _rendered(checkout, path, commit, stored, settings)


def _rendered(
    checkout: Path, path: str, commit: str, stored: RenderStore | None, settings: RenderSettings
) -> tuple[Manifest, ...]:
    if stored is not None:
        return stored.render(checkout, path, commit)
    return render(checkout, path, settings=settings).manifests


def _at_rest(
    unit: Unit, inventory: Inventory, commit: str, evaluation: Evaluation | None, policies: PolicySet | None
) -> ReconcileResult:
    return ReconcileResult(unit.name, commit, at_rest.unchanged(inventory), kinds=_kinds(inventory.entries),
                           evaluation=evaluation, policies=policies)  # fmt: skip


def _kinds(entries: dict[ObjectKey, Entry]) -> frozenset[tuple[str, str]]:
    return frozenset((entry.api_version, key.kind) for key, entry in entries.items())


def _versions_apart(inventory: Inventory) -> Inventory:
    return replace(inventory, entries={k: replace(e, resource_version="") for k, e in inventory.entries.items()})
