"""Delete what left Git: only what is still labelled this unit's and not marked prune: disabled, and
nothing at all when the mass-prune brake engages (``plan.prune`` decides; this module acts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gitopsguard.cluster.apply import Applier, OwnedSnapshot
from gitopsguard.cluster.inventory import Entry, Inventory
from gitopsguard.model import Action, Change, Failure, ObjectKey, Reason
from gitopsguard.plan.prepare import Desired
from gitopsguard.plan.prune import BrakePolicy, PrunePlan, plan_prune


@dataclass(frozen=True)
class Pruned:
    """What pruning did to each object that left Git, the inventory entries still owned (not deleted, to be
    tried again or released later), and why the brake engaged (None when it did not)."""

    changes: tuple[Change, ...]
    still_owned: dict[ObjectKey, Entry] = field(default_factory=dict)
    brake: str | None = None


def plan_pruning(
    unit: str, inventory: Inventory, keys: frozenset[ObjectKey], owned: OwnedSnapshot, brake: BrakePolicy
) -> tuple[PrunePlan, dict[ObjectKey, Entry]]:
    """The prune plan for a revision rendering ``keys``, and the inventory entries that left Git."""
    gone = {k: e for k, e in inventory.entries.items() if k not in keys}
    live = owned.of((e.api_version, k) for k, e in gone.items())
    plan = plan_prune(inventory=frozenset(inventory.entries), desired=keys, live=live, unit=unit, policy=brake)
    return plan, gone


def prune(
    unit: str, inventory: Inventory, desired: Sequence[Desired], applier: Applier, owned: OwnedSnapshot,
    brake: BrakePolicy, *, report_only: bool = False,
) -> Pruned:  # fmt: skip
    """Delete what left Git, cluster-scoped objects and Namespaces last."""
    plan, gone = plan_pruning(unit, inventory, frozenset(d.key for d in desired), owned, brake)
    kept = [Change(key, gone[key].api_version, Action.SKIPPED, why) for key, why in plan.keep]
    held = {key: gone[key] for key in plan.delete}
    if report_only:
        would = [Change(k, gone[k].api_version, Action.SKIPPED, Reason.REPORT_ONLY, would=Action.DELETED)
                 for k in plan.delete]  # fmt: skip
        return Pruned((*kept, *would), held)
    if plan.brake:
        braked = [Change(k, gone[k].api_version, Action.SKIPPED, Reason.BRAKE, note=plan.brake) for k in plan.delete]
        return Pruned((*kept, *braked), held, plan.brake)
    changes, still_owned = list(kept), {}
    for key in sorted(plan.delete, key=lambda k: (not k.namespace, k.kind == "Namespace")):
        entry = gone[key]
        refused = applier.delete(key, entry.api_version)
        if refused is None:
            changes.append(Change(key, entry.api_version, Action.DELETED, Reason.PRUNED))
        else:
            changes.append(Change(key, entry.api_version, Action.FAILED, Reason.DELETE_FAILED,
                                  error=Failure.of(refused)))  # fmt: skip
            still_owned[key] = entry  # try again next time
    return Pruned(tuple(changes), still_owned)
