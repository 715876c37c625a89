"""Passes over the commit a unit last applied cleanly: whether the cluster still holds it, found without
preparing or dry-running what did not move. This is the common pass (nothing changed, or controllers wrote
status), so it reads as little as it can; anything it cannot vouch for goes the full way (reconcile)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gitopsguard.cluster.apply import OwnedSnapshot
from gitopsguard.cluster.inventory import Inventory
from gitopsguard.errors import ApplyError
from gitopsguard.model import Action, Change, KubeObject, Manifest, ObjectKey, Reason
from gitopsguard.plan.diff import resource_version, still_as_applied
from gitopsguard.plan.prepare import Desired, placed_key, placements, prepare, split_first


@dataclass(frozen=True)
class Standing:
    """The owned objects as they are, and the keys of those whose resourceVersion is not the one they had
    when they last matched Git (changed since, or gone)."""

    live: dict[ObjectKey, KubeObject]
    moved: set[ObjectKey]


def standing(inventory: Inventory, commit: str, settings: str, owned: OwnedSnapshot) -> Standing | None:
    """What moved, when the commit is the applied one with the unit's settings as they are
    (``Unit.settings``) and the last pass over it ended cleanly (no error, no brake); else None."""
    clean = not inventory.last_error and not inventory.brake
    at_rest = (commit, settings) == (inventory.last_applied, inventory.applied_as) and clean
    if not at_rest or not inventory.entries or inventory.scans_unmanaged:
        return None
    live = owned.of((e.api_version, k) for k, e in inventory.entries.items())
    moved = {k for k, e in inventory.entries.items() if resource_version(live.get(k)) != e.resource_version}
    return Standing(live, moved)


def only_status_moved(
    manifests: Sequence[Manifest], unit: str, default_namespace: str, namespaced: Callable[[Manifest], bool],
    inventory: Inventory, state: Standing,
) -> bool:  # fmt: skip
    """Whether the commit's render still places exactly the objects the unit owns, all live, and those that
    moved since they last matched Git (a controller wrote their status, say) still hold every field Git
    sets. Only the moved objects are prepared and compared: the full pass would prepare and digest every
    object (0.1 s at 2,020) to find the same."""
    entries = inventory.entries
    placed: list[ObjectKey] = []
    desired: list[Desired] = []
    try:
        for stage, (namespace, scoped) in zip(split_first(manifests), placements(default_namespace, namespaced),
                                              strict=True):  # fmt: skip
            keys = [placed_key(m, namespace, scoped(m)) for m in stage]
            chosen = tuple(m for m, key in zip(stage, keys, strict=True) if key in state.moved)
            desired += prepare(chosen, unit=unit, default_namespace=namespace, namespaced=scoped)
            placed += keys
    except ApplyError:
        return False  # a kind the server does not serve: the full pass says where
    if len(placed) != len(entries) or not entries.keys() == set(placed) <= state.live.keys():
        return False  # objects added, renamed, placed elsewhere or deleted
    return all(d.digest == entries[d.key].digest and still_as_applied(state.live[d.key], d.body) for d in desired)


def unchanged(inventory: Inventory) -> tuple[Change, ...]:
    """Every object the unit owns, unchanged."""
    entries = inventory.entries
    return tuple(Change(key, entries[key].api_version, Action.UNCHANGED, Reason.IN_SYNC) for key in sorted(entries))
