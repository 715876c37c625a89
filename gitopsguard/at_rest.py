"""Passes over the commit a unit last applied cleanly: whether the cluster still holds it, found without
preparing or dry-running what did not move. This is the common pass (nothing changed, or controllers wrote
status), so it reads as little as it can; anything it cannot vouch for goes the full way (reconcile)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gitopsguard.cluster.apply import OwnedSnapshot
from gitopsguard.cluster.inventory import Inventory
from gitopsguard.errors import ApplyError
from gitopsguard.model import Action, Change, KubeObject, Manifest, ObjectKey
from gitopsguard.plan.diff import resource_version, still_as_applied
from gitopsguard.plan.prepare import Desired, placed_key, placements, prepare, split_first


def at_rest(inventory: Inventory, commit: str, settings: str) -> bool:
    """The commit is the applied one, with the unit's settings as they are (``Unit.settings``), and the
    last pass over it ended cleanly (no error, no brake)."""
    return (commit, settings) == (inventory.last_applied, inventory.applied_as) and not inventory.last_error and (
        bool(inventory.entries) and not inventory.scans_unmanaged)  # fmt: skip


def untouched(inventory: Inventory, commit: str, settings: str, owned: OwnedSnapshot) -> tuple[Change, ...] | None:
    """Every object unchanged, when the commit is at rest and each owned object still has the
    resourceVersion it had when it last matched Git; else None."""
    if not at_rest(inventory, commit, settings) or _moved(inventory, owned)[1]:
        return None
    return _unchanged(inventory)


def only_status_moved(
    manifests: Sequence[Manifest], unit: str, default_namespace: str, namespaced: Callable[[Manifest], bool],
    inventory: Inventory, applied: tuple[str, str], owned: OwnedSnapshot,
) -> tuple[Change, ...] | None:  # fmt: skip
    """Every object unchanged, when the commit is at rest, its render still places exactly the objects
    the unit owns, all live, and those that moved since they last matched Git (a controller wrote their
    status, say) still hold every field Git sets; else None. Only the moved objects are prepared and
    compared: the full pass would prepare and digest every object (0.1 s at 2,020) to find the same.
    ``applied`` is the commit and the unit's settings."""
    if not at_rest(inventory, *applied):
        return None
    entries = inventory.entries
    live, moved = _moved(inventory, owned)
    placed: list[ObjectKey] = []
    desired: list[Desired] = []
    try:
        for stage, (namespace, scoped) in zip(split_first(manifests), placements(default_namespace, namespaced),
                                              strict=True):  # fmt: skip
            keys = [placed_key(m, namespace, scoped(m)) for m in stage]
            chosen = tuple(m for m, key in zip(stage, keys, strict=True) if key in moved)
            desired += prepare(chosen, unit=unit, default_namespace=namespace, namespaced=scoped)
            placed += keys
    except ApplyError:
        return None  # a kind the server does not serve: the full pass says where
    if len(placed) != len(entries) or not entries.keys() == set(placed) <= live.keys():
        return None  # objects added, renamed, placed elsewhere or deleted
    if any(d.digest != entries[d.key].digest or not still_as_applied(live[d.key], d.body) for d in desired):
        return None
    return _unchanged(inventory)


def _moved(inventory: Inventory, owned: OwnedSnapshot) -> tuple[dict[ObjectKey, KubeObject], set[ObjectKey]]:
    """The owned objects as they are, and the keys of those whose resourceVersion is not the one they had
    when they last matched Git (changed since, or gone)."""
    live = owned.of((e.api_version, k.kind) for k, e in inventory.entries.items())
    return live, {k for k, e in inventory.entries.items() if resource_version(live.get(k)) != e.resource_version}


def _unchanged(inventory: Inventory) -> tuple[Change, ...]:
    return tuple(Change(key, Action.UNCHANGED) for key in sorted(inventory.entries))
