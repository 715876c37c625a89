"""Apply a revision: CRDs and Namespaces first, then everything else; only what may have changed is
dry-run, and only what the dry run shows would change is written ("do not apply objects that have not
drifted, to avoid bumping the resource version", as fluxcd/pkg's ssa manager puts it).

Every object of a revision passes a server-side dry run before any of it is written. The one exception is
forced by the API server: objects in a namespace (or of a CRD) that the same revision creates cannot be
dry-run before it exists, so new Namespaces and CRDs are created first, and removed again (``rollback``)
if the rest of the revision then fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gitopsguard.cluster.apply import Applier, Created, OwnedSnapshot, Refused, RefusedError, refusal
from gitopsguard.cluster.inventory import Inventory
from gitopsguard.cluster.rest import Written
from gitopsguard.errors import ApplyError
from gitopsguard.model import Action, Change, Drift, KubeObject, Manifest, ObjectKey, Reason
from gitopsguard.plan.diff import has_changed, resource_version, still_as_applied, who_changed
from gitopsguard.plan.prepare import Desired, in_apply_order, placements, prepare, split_first
from gitopsguard.sync.refused import RefusedObjectsError, refusals
from gitopsguard.sync.rollback import RolledBackError, roll_back

Versions = dict[ObjectKey, str]


@dataclass(frozen=True)
class Target:
    """Where and how a unit applies: its name (the label on what it owns), the namespace of objects that
    name none, and whether it only reports."""

    unit: str
    default_namespace: str
    report_only: bool = False


@dataclass(frozen=True)
class Applied:
    """A revision applied: its prepared objects, what happened to each, and the resourceVersion each was
    last seen with (what the inventory remembers)."""

    desired: tuple[Desired, ...]
    changes: tuple[Change, ...]
    versions: Versions


def apply_revision(
    target: Target, manifests: Sequence[Manifest], applier: Applier, inventory: Inventory, owned: OwnedSnapshot
) -> Applied:
    """Apply a revision; RolledBackError (with what was undone) when it fails after creating something."""
    first, rest = split_first(manifests)
    first_place, rest_place = placements(target.default_namespace, applier.namespaced)
    first_desired = prepare(first, unit=target.unit, default_namespace=first_place[0], namespaced=first_place[1])
    created: list[Created] = []
    first_changes, versions = apply_changed(first_desired, target, applier, inventory, owned, created)
    try:
        applier.wait_established(d for d in first_desired if d.key.kind == "CustomResourceDefinition")
        rest_desired = prepare(rest, unit=target.unit, default_namespace=rest_place[0], namespaced=rest_place[1])
        rest_changes, rest_versions = apply_changed(rest_desired, target, applier, inventory, owned)
    except ApplyError as error:
        if not created:
            raise
        raise RolledBackError(error, roll_back(target.unit, created, applier)) from error
    return Applied((*first_desired, *rest_desired), (*first_changes, *rest_changes), versions | rest_versions)


def apply_changed(
    desired: Sequence[Desired], target: Target, applier: Applier, inventory: Inventory, owned: OwnedSnapshot,
    created: list[Created] | None = None,
) -> tuple[list[Change], Versions]:  # fmt: skip
    """Dry-run what may have changed, then apply only what would change, stage by stage. With ``created``,
    what the server created for this unit is added to it (what a rollback may delete)."""
    live = owned.of((d.api_version, d.key) for d in desired)
    versions = {key: resource_version(body) for key, body in live.items()}

    def settled(d: Desired) -> bool:  # same body as last applied, and the object is still as we left it
        entry = inventory.entries.get(d.key)
        if entry is None or entry.digest != d.digest or d.key not in live:
            return False
        return entry.resource_version == versions[d.key] or still_as_applied(live[d.key], d.body)

    candidates = [d for d in desired if not settled(d)]
    try:
        dry = applier.dry_run(candidates, compare=live)  # a new object needs no comparing, only checking
    except RefusedError as error:
        refused = refusals(error.refused, desired, Reason.DRY_RUN_REFUSED)
        raise RefusedObjectsError(error.summary, refused, retryable=error.retryable, delay=error.delay) from error
    changes = []
    for stage in sorted({d.stage for d in candidates}):
        batch = in_apply_order(
            [d for d in candidates if d.stage == stage and (d.key not in dry or has_changed(dry[d.key], live[d.key]))]
        )
        if target.report_only:
            changes += [_reported(_change(d, live.get(d.key), inventory)) for d in batch]
            continue
        if created is None:
            results = applier.apply(batch)
        else:
            results, made = applier.apply_noting_created(batch, target.unit)
            created += made
        failures = [r for r in results if isinstance(r, Refused)]
        if failures:
            why = refusal(f"{len(failures)} objects failed to apply after passing the dry run", failures)
            refused = refusals(failures, batch, Reason.APPLY_REFUSED)
            raise RefusedObjectsError(why.summary, refused, retryable=why.retryable, delay=why.delay)
        versions |= {d.key: r.resource_version for d, r in zip(batch, results, strict=True) if isinstance(r, Written)}
        changes += [_change(d, live.get(d.key), inventory) for d in batch]
    changed_keys = {c.key for c in changes}
    changes += [Change(d.key, d.api_version, Action.UNCHANGED, Reason.IN_SYNC) for d in desired
                if d.key not in changed_keys]  # fmt: skip
    return changes, versions


def _reported(change: Change) -> Change:
    """What a report-only unit says instead of writing: the change it would have made."""
    return Change(change.key, change.api_version, Action.SKIPPED, Reason.REPORT_ONLY, drift=change.drift,
                  would=change.action)  # fmt: skip


def _change(desired: Desired, live: KubeObject | None, inventory: Inventory) -> Change:
    """Created or configured; when Git did not change the object since we applied it, that is drift."""
    action = Action.CREATED if live is None else Action.CONFIGURED
    entry = inventory.entries.get(desired.key)
    if entry is None or entry.digest != desired.digest:
        return Change(desired.key, desired.api_version, action, Reason.APPLIED)
    drift = Drift(deleted=True) if live is None else Drift(deleted=False, writer=who_changed(live))
    return Change(desired.key, desired.api_version, action, Reason.DRIFTED, drift=drift)
