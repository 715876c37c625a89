"""What each unit applied, kept in the cluster: one ConfigMap per unit, its entries gzip-compressed.

20,000 entries of about 60 bytes compress to a few hundred kilobytes, well inside a ConfigMap's 1 MiB; a larger
inventory is split into parts by the ConfigMap store.
Unmanaged workloads (which tenants create, not Git) are compressed too and kept within ``UNMANAGED_BYTES``:
past it the newest sightings are left out (their grace starts again: later deletion, never earlier).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes import client

from gitopsguard.cluster.configmaps import ConfigMapStore, Content, Packed, Stored, damaged
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import ObjectKey

CONTROLLER_NAMESPACE = "gitopsguard-system"
UNMANAGED_BYTES = 192 * 1024  # compressed unmanaged sightings, whatever tenants create
_OLD_BRAKE = "mass-prune brake: "  # how inventories saved before the ``brake`` key kept it in ``lastError``


@dataclass(frozen=True)
class Entry:
    """One owned object: the apiVersion it was applied as, the resourceVersion last seen to match Git, and
    a digest of the body applied. Both unchanged since means the object needs no dry run."""

    api_version: str
    resource_version: str = ""
    digest: str = ""


@dataclass(frozen=True)
class Inventory:
    entries: dict[ObjectKey, Entry] = field(default_factory=dict)
    last_applied: str | None = None
    last_attempted: str | None = None
    last_error: str = ""
    last_changes: str = ""  # one line per object the last pass that did something changed
    unmanaged: dict[ObjectKey, datetime] = field(default_factory=dict)  # unmanaged workload -> first seen
    scans_unmanaged: bool = False  # the applied revision opts a namespace in: every pass must look
    applied_as: str = ""  # the unit's settings the last applied commit was applied with (Unit.settings)
    reviewed: str = ""  # who approved what brought the last applied commit (source/review.py's summary)
    brake: str = ""  # why the mass-prune brake held the last pass's deletions back ("" when it did not)


class InventoryStore:
    """Reads and writes plain JSON over ``RawApi``, through the one ConfigMap store (``configmaps.py``): through
    the generated client's models, a save and a load of 2,020 entries cost 0.06 s of a pass that changes one
    object. A save replaces the whole inventory (one writer per unit: the leader of its Lease)."""

    def __init__(self, api: client.ApiClient | RawApi, namespace: str = CONTROLLER_NAMESPACE) -> None:
        self._raw = api if isinstance(api, RawApi) else RawApi(api)
        self.namespace = namespace
        self._store = ConfigMapStore(self._raw, namespace)

    def load(self, unit: str) -> Inventory:
        """The unit's inventory, empty when it has none. Raises ClusterError (naming the ConfigMap) when it
        cannot be read: a pass must not run, let alone prune, from an inventory it cannot read."""
        stored = self._store.read(_name(unit))
        return Inventory() if stored is None else _parsed(stored)

    def units(self) -> dict[str, Inventory]:
        """Every unit with an inventory here, by name."""
        prefix = _name("")
        found, unreadable = self._store.list(prefix=prefix)  # parsed from the one list: no read per unit
        if unreadable:
            raise unreadable[0]
        return {name.removeprefix(prefix): _parsed(stored) for name, stored in sorted(found.items())}

    def save(self, unit: str, inventory: Inventory) -> None:
        """Replace the unit's ConfigMap; create it (and the namespace) the first time."""
        self._store.put(_name(unit), _content(unit, inventory))

    def delete(self, unit: str) -> None:
        """Remove the unit's ConfigMap (a retired Unit's, ``fleet_retire.py``); nothing when it is absent."""
        self._store.delete(_name(unit))


def _parsed(stored: Stored) -> Inventory:
    data = stored.content.data
    try:
        rows = stored.json("entries.json.gz") or []
        entries = {ObjectKey(*row[1:5]): Entry(row[0], *row[5:7]) for row in rows}
        packed = stored.json("unmanaged.json.gz")
        listed = packed if packed is not None else json.loads(data.get("unmanaged") or "[]")
        seen = {ObjectKey(*row[:4]): datetime.fromisoformat(row[4]) for row in listed}
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise damaged(stored.where, f"{type(error).__name__}: {error}") from error
    last_error, brake = _error_and_brake(data)
    return Inventory(entries, data.get("lastApplied") or None, data.get("lastAttempted") or None, last_error,
                     data.get("lastChanges", ""), seen, data.get("scansUnmanaged") == "true",
                     data.get("appliedAs", ""), data.get("reviewed", ""), brake)  # fmt: skip


def _error_and_brake(data: Mapping[str, str]) -> tuple[str, str]:
    """The last error and the brake's reason. An inventory saved before ``brake`` had a key of its own kept the
    brake in ``lastError`` as "mass-prune brake: <why>"; read once so, it is saved apart by the next pass."""
    error = data.get("lastError", "")
    if "brake" in data:
        return error, data["brake"]
    if error.startswith(_OLD_BRAKE):
        return "", error.removeprefix(_OLD_BRAKE)
    return error, ""


def _content(unit: str, inventory: Inventory) -> Content:
    rows = sorted(
        [e.api_version, k.group, k.kind, k.namespace, k.name, e.resource_version, e.digest]
        for k, e in inventory.entries.items()
    )
    entries = Packed.of(json.dumps(rows, separators=(",", ":")).encode())
    unmanaged, kept = _pack_unmanaged(inventory.unmanaged)
    return Content(
        {"unit": unit, "lastApplied": inventory.last_applied or "", "count": str(len(rows)),
         "lastAttempted": inventory.last_attempted or "", "lastError": inventory.last_error[:4000],
         "lastChanges": inventory.last_changes[:20000],
         "unmanagedCount": str(kept),
         "scansUnmanaged": "true" if inventory.scans_unmanaged else "false",
         "appliedAs": inventory.applied_as, "reviewed": inventory.reviewed[:4000],
         "brake": inventory.brake[:4000]},
        {"entries.json.gz": entries, "unmanaged.json.gz": unmanaged},
        {"app.kubernetes.io/component": "inventory"},
    )  # fmt: skip


def _pack_unmanaged(seen: dict[ObjectKey, datetime]) -> tuple[Packed, int]:
    """The oldest sightings that fit ``UNMANAGED_BYTES`` compressed, and how many are kept."""
    rows = sorted(([k.group, k.kind, k.namespace, k.name, t.isoformat()] for k, t in seen.items()),
                  key=lambda row: (row[4], row[:4]))  # fmt: skip
    while True:
        packed = Packed.of(json.dumps(rows, separators=(",", ":")).encode())
        if packed.size <= UNMANAGED_BYTES or not rows:
            return packed, len(rows)
        rows = rows[: int(len(rows) * UNMANAGED_BYTES / packed.size * 0.9)]


def _name(unit: str) -> str:
    return f"gitopsguard-inventory-{unit}"


def reference(unit: str, namespace: str = CONTROLLER_NAMESPACE) -> dict[str, Any]:
    """The unit's inventory ConfigMap as an object reference: what the unit's own Events are about."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": _name(unit), "namespace": namespace}}
