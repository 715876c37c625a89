"""What each unit applied, kept in the cluster: one ConfigMap per unit, its entries gzip-compressed.

20,000 entries of about 60 bytes compress to a few hundred kilobytes, well inside a ConfigMap's 1 MiB; a larger
inventory is split into parts by the ConfigMap store.
Unmanaged workloads (which tenants create, not Git) are compressed too and kept within ``UNMANAGED_BYTES``:
past it the newest sightings are left out (their grace starts again: later deletion, never earlier).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.configmaps import COMPONENT, ConfigMapStore, Content, Packed, Stored, damaged
from gitopsguard.cluster.informer import Informer
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import KubeObject, ObjectKey

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
    object. A save replaces the whole inventory (one writer per unit: the leader of its Lease).

    A long-running loop also ``follow``s the inventories (one watch for all units): each unit's inventory as last
    loaded or saved is kept with its resourceVersion, and ``recall`` gives it back without a request while the
    watch sees that same version stored. Safe to share between threads (several units' passes at once)."""

    def __init__(self, api: client.ApiClient | RawApi, namespace: str = CONTROLLER_NAMESPACE) -> None:
        self._raw = api if isinstance(api, RawApi) else RawApi(api)
        self.namespace = namespace
        self._store = ConfigMapStore(self._raw, namespace)
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[str, Inventory]] = {}  # ConfigMap name -> (resourceVersion, inventory)
        self._watched: dict[str, str] = {}  # ConfigMap name -> resourceVersion, as the watch last saw it
        self._in_sync = False  # the watch is listed and running: ``_watched`` is what is stored, but for its lag

    def load(self, unit: str) -> Inventory:
        """The unit's inventory, empty when it has none. Raises ClusterError (naming the ConfigMap) when it
        cannot be read: a pass must not run, let alone prune, from an inventory it cannot read."""
        stored = self._store.read(_name(unit))
        if stored is None:
            return Inventory()
        with self._lock:
            kept = self._kept.get(stored.name)
        if kept is not None and kept[0] == stored.resource_version:
            return _parsed(stored)  # the same version stored: the kept copy stays, with what was vouched for it
        return self._keep(stored, _parsed(stored))

    def recall(self, unit: str) -> Inventory | None:
        """The unit's inventory as last loaded or saved here, when the watch (``follow``) sees that version stored
        now: no request. None when not followed, not in sync, or stored otherwise since (another replica took the
        unit's shard, a human deleted it): then ``load``. A watch lags the server by a moment, so a recalled
        inventory may only decide that nothing is to be written (a pass at rest); load before any write."""
        name = _name(unit)
        with self._lock:
            kept = self._kept.get(name)
            if kept is None or not self._in_sync or self._watched.get(name) != kept[0]:
                return None
            return kept[1]

    def vouch(self, unit: str, versions: Mapping[ObjectKey, str]) -> None:
        """Remember, for the inventory kept in memory alone, that these owned objects were found still as applied
        at these resourceVersions (a controller wrote their status, or a field beside ours): the next pass then
        finds them at rest without rendering again. Nothing is written (a pass with nothing to do writes
        nothing); a load gives the stored inventory, and replaces the kept copy only when it finds another
        version stored."""
        name = _name(unit)
        with self._lock:
            kept = self._kept.get(name)
            if kept is None:
                return
            version, inventory = kept
            entries = inventory.entries
            moved = {k: replace(entries[k], resource_version=v) for k, v in versions.items() if k in entries}
            self._kept[name] = (version, replace(inventory, entries=entries | moved))

    def follow(self, applier: Applier, stop: threading.Event) -> None:
        """Watch this namespace's inventories until ``stop`` (one informer, for every unit), so that ``recall``
        can vouch for what is kept."""
        informer = Informer(applier, self._raw, ("v1", "ConfigMap"), namespace=self.namespace, keep_objects=False,
                            selector=f"{COMPONENT}=inventory", what=f"inventories in {self.namespace}",
                            on_event=self._seen, on_sync=self._synced)  # fmt: skip
        informer.start(stop)

    def units(self) -> dict[str, Inventory]:
        """Every unit with an inventory here, by name."""
        prefix = _name("")
        found, unreadable = self._store.list(prefix=prefix)  # parsed from the one list: no read per unit
        if unreadable:
            raise unreadable[0]
        return {name.removeprefix(prefix): _parsed(stored) for name, stored in sorted(found.items())}

    def save(self, unit: str, inventory: Inventory) -> None:
        """Replace the unit's ConfigMap; create it (and the namespace) the first time."""
        stored = self._store.put(_name(unit), _content(unit, inventory))
        if stored is not None:
            self._keep(stored, inventory)

    def _keep(self, stored: Stored, inventory: Inventory) -> Inventory:
        with self._lock:
            self._kept[stored.name] = (stored.resource_version, inventory)
        return inventory

    def _seen(self, change: str, body: KubeObject) -> None:
        metadata = body.get("metadata") or {}
        name, version = str(metadata.get("name") or ""), str(metadata.get("resourceVersion") or "")
        with self._lock:
            if change == "DELETED":
                self._watched.pop(name, None)
            else:
                self._watched[name] = version

    def _synced(self, synced: bool) -> None:
        """In sync after a list (whose differences came first, as events) or once a resumed watch answers; out of
        it after a failure, when changes may be missed: nothing is vouched for until then."""
        with self._lock:
            self._in_sync = synced

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
    except (ValueError, TypeError, KeyError, IndexError, RecursionError) as error:  # RecursionError: JSON too deep
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
        {COMPONENT: "inventory"},
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
