"""One reconcile pass of a unit, as a recipe: fetch -> render -> policy gate -> apply -> prune -> inventory.

Every object of a revision passes a server-side dry run before any of it is applied. The one exception
is forced by the API server: objects in a namespace (or of a CRD) that the same revision creates cannot
be dry-run before it exists, so new Namespaces and CRDs are created first and removed again if the rest
of the revision then fails its dry run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from gitopsguard import at_rest
from gitopsguard.backup import Backups, storage
from gitopsguard.cluster.apply import Applier, Created, KindCache, OwnedSnapshot, Refused, refusal
from gitopsguard.cluster.inventory import Entry, Inventory, InventoryStore
from gitopsguard.cluster.rest import Written
from gitopsguard.errors import ApplyError, GitOpsGuardError
from gitopsguard.gate import RevisionBlockedError, policies_at
from gitopsguard.heads import Head, Render, judge
from gitopsguard.model import Action, Change, KubeObject, Manifest, ObjectKey
from gitopsguard.plan import unmanaged as stray
from gitopsguard.plan.diff import has_changed, resource_version, still_as_applied, who_changed
from gitopsguard.plan.prepare import Desired, in_apply_order, placements, prepare, prune_disabled, split_first
from gitopsguard.plan.prune import RELEASE_MARKER, BrakePolicy, PrunePlan, plan_prune
from gitopsguard.policy import DenyLevel, Evaluation, PolicySet, evaluate
from gitopsguard.policy.podsecurity import NO_EXEMPTIONS, Exemptions
from gitopsguard.render import render
from gitopsguard.render.settings import DEFAULT as DEFAULT_RENDER
from gitopsguard.render.settings import RenderSettings
from gitopsguard.render.stored import RenderStore
from gitopsguard.scan.trust import managed_check
from gitopsguard.source import GitSource
from gitopsguard.source.review import Review, UnreviewedRevisionError

DEFAULT_BRAKE = BrakePolicy()
DRIFT = "drift repaired"  # how a change repairing drift begins its detail
UNMANAGED_DELETED = "unmanaged past its grace period; backup: "  # how an unmanaged workload's deletion begins
RenderCache = dict[str, tuple[Manifest, ...]]  # commit -> its rendered manifests (never mutated downstream)


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

    @property
    def settings(self) -> str:
        """What decides the objects a commit becomes: another path or namespace at the same commit is
        another revision to apply, not one at rest."""
        policies = self.policies_path or ""
        remote = " remote-bases" if self.render_settings.allow_remote_bases else ""
        return (
            f"path={self.path} namespace={self.default_namespace} policies={policies} "
            f"deny={self.deny_level.value}{remote}"
        )


@dataclass(frozen=True)
class ReconcileResult:
    unit: str
    revision: str | None
    changes: tuple[Change, ...]
    error: str | None = None
    failure: GitOpsGuardError | None = None  # the typed error behind ``error``: whether the loop retries soon
    brake: str | None = None
    kinds: frozenset[tuple[str, str]] = frozenset()  # (apiVersion, kind) of what the unit owns: what to watch
    evaluation: Evaluation | None = None  # the policy verdict on a revision this pass rendered
    policies: PolicySet | None = None  # the policies of the revision this pass applied (for the live scan)
    review: Review | None = None  # who approved what, when this pass applied a new commit
    unreviewed: UnreviewedRevisionError | None = None  # the head held a change nobody allowed reviewed


def _kinds(entries: dict[ObjectKey, Entry]) -> frozenset[tuple[str, str]]:
    return frozenset((entry.api_version, key.kind) for key, entry in entries.items())


def reconcile(
    unit: Unit, source: GitSource, applier: Applier, store: InventoryStore, *,
    brake: BrakePolicy = DEFAULT_BRAKE, allow_rewind: bool = False, renders: RenderCache | None = None,
    now: datetime | None = None, want_policies: bool = False, live: KindCache | None = None,
    stored: RenderStore | None = None, head: Head | None = None, break_glass: str = "",
) -> ReconcileResult:  # fmt: skip
    # 1. What this unit applied last, and at which commit; what it owns (from the loop's watches, if any).
    inventory = store.load(unit.name)
    owned = OwnedSnapshot(applier, unit.name, live)  # each owned kind read once this pass, before any write
    commit = None
    try:
        # 2. Fetch; the branch may only move forward from the applied commit. (The loop's worker fetched,
        #    rendered and judged its ``head`` already, off the thread that repairs drift.)
        last_applied = inventory.last_applied
        revision = (
            head.fetched()
            if head
            else source.fetch(last_applied=last_applied, allow_rewind=allow_rewind, break_glass=break_glass)
        )
        commit = revision.commit
        # 3. Stop here, writing nothing, if this commit is applied and no owned object has moved since.
        resting = at_rest.standing(inventory, commit, unit.settings, owned)
        if resting is not None and not resting.moved:
            policies = None
            if want_policies:  # the worker read them with the head; the checkout is the worker's to change
                policies = head.policies if head else policies_at(revision.checkout, unit.policies_path)
            return ReconcileResult(unit.name, commit, at_rest.unchanged(inventory), kinds=_kinds(inventory.entries),
                                   policies=policies)  # fmt: skip
        # 4. Render the unit's path at that commit and pass it through the policy gate: mutations, then
        #    validation; a denied object, or any failure to render or judge, refuses the whole revision
        #    (a long-running loop keeps the result).
        evaluation = policies = None
        manifests = renders.get(commit) if renders is not None else None
        if manifests is None:
            judged = head or judge(unit, revision, applier, renderer(stored, unit.render_settings), now)
            evaluation, policies, manifests = judged.accepted()
            if renders is not None:  # keep this commit's render and the last applied one's, nothing else
                for old in [c for c in renders if c != inventory.last_applied]:
                    del renders[old]
                renders[commit] = manifests
        #    Stop here too if only status moved: the objects that changed since they matched Git still do.
        if resting is not None and at_rest.only_status_moved(
            manifests, unit.name, unit.default_namespace, applier.namespaced, inventory, resting
        ):
            return ReconcileResult(unit.name, commit, at_rest.unchanged(inventory), kinds=_kinds(inventory.entries),
                                   evaluation=evaluation, policies=policies)  # fmt: skip
        # 5. Apply: CRDs and Namespaces, then everything else; what may have changed passes a dry run first.
        desired, changes, versions = apply_revision(unit, manifests, applier, inventory, owned)
        # 6. Prune what left Git, unless the brake engages (the commit can release it).
        if RELEASE_MARKER in revision.message:
            brake = replace(brake, released=True)
        # Deletes check the label on the object as it is now: from the cluster, never from the loop's cache.
        listed = owned if live is None else OwnedSnapshot(applier, unit.name)
        pruned, still_owned, engaged = prune(unit, inventory, desired, applier, listed, brake)
        # 7. Workloads Git does not describe, in namespaces that opted in: report, or back up and delete.
        strays, seen, scans = unmanaged(unit, desired, inventory, applier, now or datetime.now(UTC))
        pruned = [*pruned, *strays]
        # 8. Remember what this unit owns now, and the state each object was last seen to match Git in.
        entries = {d.key: Entry(d.api_version, versions.get(d.key, ""), d.digest) for d in desired}
        entries |= still_owned
        done = "\n".join(str(c) for c in (*changes, *pruned) if c.action is not Action.UNCHANGED)
        if unit.report_only:  # nothing was applied: keep what the inventory says was, report the rest
            report = replace(inventory, last_attempted=commit, last_error="", last_changes=done, unmanaged=seen)
            store.save(unit.name, report)
            return ReconcileResult(
                unit.name, commit, (*changes, *pruned), kinds=_kinds(inventory.entries) | _kinds(entries),
                evaluation=evaluation, policies=policies,
            )  # fmt: skip
        brake_note = f"mass-prune brake: {engaged}" if engaged else ""
        new = commit != inventory.last_applied
        reviewed = (revision.review.summary() if revision.review else "") if new else inventory.reviewed
        after = Inventory(entries, commit, commit, brake_note, done or inventory.last_changes, seen, scans,
                          unit.settings, reviewed)  # fmt: skip
        if done or _versions_apart(after) != _versions_apart(inventory):  # status updates alone write nothing
            store.save(unit.name, after)
        return ReconcileResult(unit.name, commit, (*changes, *pruned), brake=engaged, kinds=_kinds(entries),
                               evaluation=evaluation, policies=policies,
                               review=revision.review if new else None)  # fmt: skip
    except GitOpsGuardError as error:
        unreviewed = error if isinstance(error, UnreviewedRevisionError) else None
        commit = commit or (unreviewed.head if unreviewed else None)
        attempted = commit or inventory.last_attempted
        inventory, repaired = _hold_last_applied(unit, inventory, commit, applier, renders, source, stored)
        store.save(unit.name, replace(inventory, last_attempted=attempted, last_error=str(error)))
        blocked = error.evaluation if isinstance(error, RevisionBlockedError) else None
        undone = error.undone if isinstance(error, RolledBackError) else ()
        return ReconcileResult(unit.name, commit, (*undone, *repaired), error=str(error),
                               failure=error.with_traceback(None),  # the pass's frames are not kept alive
                               kinds=_kinds(inventory.entries), evaluation=blocked, unreviewed=unreviewed)  # fmt: skip


def hold(
    unit: Unit, source: GitSource, applier: Applier, store: InventoryStore, *, renders: RenderCache | None = None,
    stored: RenderStore | None = None,
) -> ReconcileResult:  # fmt: skip
    """A pass over the last applied commit alone, for the loop while its worker has not judged a head yet
    (just started, the head slow to render): drift is repaired from that commit. Applies only; never prunes."""
    inventory = store.load(unit.name)
    held, repaired = _hold_last_applied(unit, inventory, None, applier, renders, source, stored)
    if _versions_apart(held) != _versions_apart(inventory) or any(c.action is not Action.UNCHANGED for c in repaired):
        store.save(unit.name, held)
    return ReconcileResult(unit.name, inventory.last_applied, repaired, kinds=_kinds(held.entries))


def _hold_last_applied(
    unit: Unit, inventory: Inventory, commit: str | None, applier: Applier, renders: RenderCache | None,
    source: GitSource, stored: RenderStore | None,
) -> tuple[Inventory, tuple[Change, ...]]:  # fmt: skip
    """While a new commit fails, keep repairing drift from the last applied one: from the render a
    long-running loop keeps, or, after a restart, rendered again from that commit. Applies only; never
    prunes. Returns the inventory with refreshed versions."""
    last = inventory.last_applied
    if unit.report_only or last is None or commit == last:
        return inventory, ()
    try:
        manifests = renders.get(last) if renders is not None else None
        if manifests is None:
            manifests = _render_last_applied(unit, source, last, stored)
            if renders is not None:
                renders[last] = manifests
        fresh = OwnedSnapshot(applier, unit.name)  # the failed pass may have written: list again
        desired, changes, versions = apply_revision(unit, manifests, applier, inventory, fresh)
    except RolledBackError as error:
        return inventory, error.undone  # what it deleted again is reported all the same
    except GitOpsGuardError:
        return inventory, ()  # the API server itself is failing, or the commit is gone: nothing more to do
    held = {d.key: Entry(d.api_version, versions.get(d.key, ""), d.digest) for d in desired}
    return replace(inventory, entries=inventory.entries | held), tuple(changes)


def _render_last_applied(
    unit: Unit, source: GitSource, commit: str, stored: RenderStore | None
) -> tuple[Manifest, ...]:
    """The bodies the last applied commit produced: rendered and mutated by its own policies, never gated
    (they passed the gate when applied; an exception expired since must not stop the repair)."""
    checkout = source.checkout_of(commit)
    manifests = _rendered(checkout, unit.path, commit, stored, unit.render_settings)
    policies = policies_at(checkout, unit.policies_path)
    return evaluate(manifests, policies, now=datetime.now(UTC), deny_level=DenyLevel.OFF).manifests


def renderer(stored: RenderStore | None, settings: RenderSettings = DEFAULT_RENDER) -> Render:
    """Render a commit's checkout: from the store on disk where there is one (the store's own settings)."""
    return lambda checkout, path, commit: _rendered(checkout, path, commit, stored, settings)


def _rendered(
    checkout: Path, path: str, commit: str, stored: RenderStore | None, settings: RenderSettings
) -> tuple[Manifest, ...]:
    if stored is not None:
        return stored.render(checkout, path, commit)
    return render(checkout, path, settings=settings).manifests


def _versions_apart(inventory: Inventory) -> Inventory:
    return replace(inventory, entries={k: replace(e, resource_version="") for k, e in inventory.entries.items()})


Versions = dict[ObjectKey, str]


class RolledBackError(ApplyError):
    """A revision failed after some of its Namespaces or CRDs were created; ``undone`` holds the rollback's
    changes (each deletion, or why an object was left alone), for the audit log and notices."""

    def __init__(self, error: ApplyError, undone: tuple[Change, ...]) -> None:
        super().__init__(str(error), retryable=error.retryable, delay=error.delay)
        self.problems, self.undone = error.problems, undone


def apply_revision(
    unit: Unit, manifests: Sequence[Manifest], applier: Applier, inventory: Inventory, owned: OwnedSnapshot
) -> tuple[list[Desired], list[Change], Versions]:
    """Apply a revision; returns the desired objects, what happened to each, and their resourceVersions."""
    first, rest = split_first(manifests)
    first_place, rest_place = placements(unit.default_namespace, applier.namespaced)
    first_desired = prepare(first, unit=unit.name, default_namespace=first_place[0], namespaced=first_place[1])
    created: list[Created] = []
    first_changes, versions = _apply_changed(first_desired, unit, applier, inventory, owned, created)
    try:
        applier.wait_established(d for d in first_desired if d.key.kind == "CustomResourceDefinition")
        rest_desired = prepare(rest, unit=unit.name, default_namespace=rest_place[0], namespaced=rest_place[1])
        rest_changes, rest_versions = _apply_changed(rest_desired, unit, applier, inventory, owned)
    except ApplyError as error:
        if not created:
            raise
        raise RolledBackError(error, roll_back(unit.name, created, applier)) from error
    return [*first_desired, *rest_desired], [*first_changes, *rest_changes], versions | rest_versions


def roll_back(unit: str, created: Sequence[Created], applier: Applier) -> tuple[Change, ...]:
    """Delete, newest first, what this pass created (answered 201, with this unit's label) and still finds
    as it was: the same uid, still labelled ours, not marked prune: disabled. Anything else is left alone,
    and so is everything when the objects cannot be read again."""
    try:
        live = OwnedSnapshot(applier, unit).of((c.api_version, c.key.kind) for c in created)  # read afresh
    except GitOpsGuardError as error:
        why = f"rollback: cannot be read again ({error}); left as it is, delete it by hand if it is not wanted"
        return tuple(Change(c.key, Action.FAILED, f"{c.key}: {why}") for c in created)
    changes = []
    for made in reversed(created):
        body = live.get(made.key)
        if body is None or (body.get("metadata") or {}).get("uid") != made.uid or prune_disabled(body):
            why = "rollback: no longer the object this pass created, or no longer ours; left alone"
            changes.append(Change(made.key, Action.SKIPPED, why))
            continue
        try:
            failure = applier.delete(made.key, made.api_version, uid=made.uid)
        except GitOpsGuardError as error:
            failure = f"{made.key}: rollback: delete failed ({error}); delete it by hand if it is not wanted"
        done = Change(made.key, Action.DELETED, "rolled back: created by this pass, whose revision then failed")
        changes.append(Change(made.key, Action.FAILED, failure) if failure else done)
    return tuple(changes)


def _apply_changed(
    desired: list[Desired], unit: Unit, applier: Applier, inventory: Inventory, owned: OwnedSnapshot,
    created: list[Created] | None = None,
) -> tuple[list[Change], Versions]:  # fmt: skip
    """Dry-run what may have changed, then apply only what would change, stage by stage. With ``created``,
    what the server created for this unit is added to it (what a rollback may delete)."""
    live = owned.of((d.api_version, d.key.kind) for d in desired)
    versions = {key: resource_version(body) for key, body in live.items()}

    def settled(d: Desired) -> bool:  # same body as last applied, and the object is still as we left it
        entry = inventory.entries.get(d.key)
        if entry is None or entry.digest != d.digest or d.key not in live:
            return False
        return entry.resource_version == versions[d.key] or still_as_applied(live[d.key], d.body)

    candidates = [d for d in desired if not settled(d)]
    dry = applier.dry_run(candidates, compare=live)  # a new object needs no comparing, only checking
    changes = []
    for stage in sorted({d.stage for d in candidates}):
        batch = in_apply_order(
            [d for d in candidates if d.stage == stage and (d.key not in dry or has_changed(dry[d.key], live[d.key]))]
        )
        if unit.report_only:
            changes += [_reported(_change(d, live.get(d.key), inventory)) for d in batch]
            continue
        if created is None:
            results = applier.apply(batch)
        else:
            results, made = applier.apply_noting_created(batch, unit.name)
            created += made
        failures = [r for r in results if isinstance(r, Refused)]
        if failures:
            raise refusal(f"{len(failures)} objects failed to apply after passing the dry run", failures)
        versions |= {d.key: r.resource_version for d, r in zip(batch, results, strict=True) if isinstance(r, Written)}
        changes += [_change(d, live.get(d.key), inventory) for d in batch]
    changed_keys = {c.key for c in changes}
    changes += [Change(d.key, Action.UNCHANGED) for d in desired if d.key not in changed_keys]
    return changes, versions


def _reported(change: Change) -> Change:
    detail = f"report-only: would be {change.action.value}" + (f"; {change.detail}" if change.detail else "")
    return Change(change.key, Action.SKIPPED, detail)


def _change(desired: Desired, live: KubeObject | None, inventory: Inventory) -> Change:
    """Created or configured; when Git did not change the object since we applied it, that is drift."""
    action = Action.CREATED if live is None else Action.CONFIGURED
    entry = inventory.entries.get(desired.key)
    if entry is None or entry.digest != desired.digest:
        return Change(desired.key, action)
    cause = "it was deleted outside Git" if live is None else f"it was changed by {who_changed(live)}"
    return Change(desired.key, action, f"{DRIFT}: {cause}")


def plan_pruning(
    unit: str, inventory: Inventory, keys: frozenset[ObjectKey], owned: OwnedSnapshot, brake: BrakePolicy
) -> tuple[PrunePlan, dict[ObjectKey, Entry]]:
    """The prune plan for a revision rendering ``keys``, and the inventory entries that left Git."""
    gone = {k: e for k, e in inventory.entries.items() if k not in keys}
    live = owned.of((e.api_version, k.kind) for k, e in gone.items())
    plan = plan_prune(inventory=frozenset(inventory.entries), desired=keys, live=live, unit=unit, policy=brake)
    return plan, gone


def prune(
    unit: Unit, inventory: Inventory, desired: list[Desired], applier: Applier, owned: OwnedSnapshot,
    brake: BrakePolicy,
) -> tuple[list[Change], dict[ObjectKey, Entry], str | None]:  # fmt: skip
    """Delete what left Git; returns the changes, the entries still owned, and why the brake engaged."""
    plan, gone = plan_pruning(unit.name, inventory, frozenset(d.key for d in desired), owned, brake)
    changes = [Change(key, Action.SKIPPED, why) for key, why in plan.keep]
    if unit.report_only:
        changes += [Change(key, Action.SKIPPED, "report-only: would be deleted") for key in plan.delete]
        return changes, {key: gone[key] for key in plan.delete}, None
    if plan.brake:
        changes += [Change(key, Action.SKIPPED, f"mass-prune brake: {plan.brake}") for key in plan.delete]
        return changes, {key: gone[key] for key in plan.delete}, plan.brake
    still_owned: dict[ObjectKey, Entry] = {}
    for key in sorted(plan.delete, key=lambda k: (not k.namespace, k.kind == "Namespace")):
        failure = applier.delete(key, gone[key].api_version)
        changes.append(Change(key, Action.FAILED, failure) if failure else Change(key, Action.DELETED))
        if failure:
            still_owned[key] = gone[key]  # try again next time
    return changes, still_owned, None


def unmanaged(
    unit: Unit, desired: list[Desired], inventory: Inventory, applier: Applier, now: datetime
) -> tuple[list[Change], dict[ObjectKey, datetime], bool]:
    """Changes for unmanaged workloads, when each was first seen, and whether any namespace opted in."""
    changes: list[Change] = []
    seen: dict[ObjectKey, datetime] = {}
    chosen = stray.policies(desired)
    managed = managed_check(applier, desired)  # labels and owners checked against the cluster, not believed
    for policy in chosen.values():
        live = applier.list_in_namespace(stray.WORKLOAD_KINDS, policy.namespace)
        for verdict in stray.judge(live, policy, inventory.unmanaged, now, managed):
            change = _act_on_stray(unit, verdict, applier, now)
            if change.action is not Action.DELETED and verdict.tracked:
                seen[verdict.key] = inventory.unmanaged.get(verdict.key, now)
            changes.append(change)
    return changes, seen, bool(chosen)


_WORKLOAD_VERSIONS = {kind: api_version for api_version, kind in stray.WORKLOAD_KINDS}


def _act_on_stray(unit: Unit, verdict: stray.Verdict, applier: Applier, now: datetime) -> Change:
    """Report an unmanaged workload, or back it up and delete it once its grace period is over."""
    if not verdict.tracked:
        return Change(verdict.key, Action.SKIPPED, stray.untracked_note(verdict.key.namespace))
    if verdict.deadline is None:
        return Change(verdict.key, Action.SKIPPED, "unmanaged: not in Git (reported only)")
    when = f"{verdict.deadline:%Y-%m-%d %H:%M:%S}Z"
    if not verdict.delete:
        return Change(verdict.key, Action.SKIPPED, f"unmanaged: not in Git; deleted at {when} unless added to Git")
    if unit.report_only or unit.backup_dir is None:
        why = "report-only" if unit.report_only else "no backup directory is configured"
        return Change(verdict.key, Action.SKIPPED, f"unmanaged: not in Git; due for deletion since {when}, held: {why}")
    try:
        why = "unmanaged: not in Git past its grace period"
        saved = storage(unit.backup_dir).under(unit.name).save(verdict.key, verdict.body, now, reason=why)
    except GitOpsGuardError as error:  # this workload alone is held: the unit's pass goes on
        return Change(verdict.key, Action.FAILED, str(error))
    failure = applier.delete(verdict.key, _WORKLOAD_VERSIONS[verdict.key.kind])
    if failure:
        return Change(verdict.key, Action.FAILED, failure)
    detail = f"{UNMANAGED_DELETED}{saved}; restore: {saved.restore}"
    return Change(verdict.key, Action.DELETED, detail)
