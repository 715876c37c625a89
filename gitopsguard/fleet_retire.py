"""Units that left the root path garbage-collect what they applied (``plan/retire.py`` decides; this acts).

Each round of the Units loop, after it read the Units of the root's applied commit (``Fleet._serve``):

1. **record** each Unit served as the root's render gives it (``Served``: its account, ``prune``, ``suspend``),
   in one ConfigMap per root (``gitopsguard-units-<root>``, written only when a record changes), so that what
   retiring a Unit needs survives the Unit object, which the root's prune deletes; this, before the passes;
   the rest after them (``round``), so that a Unit renamed or moved has taken back what its old name applied
   (its pass relabels it) before the old name's retirement looks for what is still labelled its own;
2. **decide**: the recorded Units the applied commit no longer declares, whose object is gone (``retiring``);
3. **plan** what each would delete (its inventory, what still carries its label), read as the controller, and
   judge them all together with the brake (``retirement_brake``): a bad commit that removes every Unit holds,
   with a note and one audited result naming the Units and counts;
4. **delete**, on the replica that holds the Unit's shard, **as the Unit's account** (its recorded
   ``serviceAccountName``, else the operator's default): a retirement deletes nothing the team could not;
5. **forget**: its live-scan state, its Lease (when nobody holds it), its inventory, then its record.

Restart-safe: the record goes last, so a crash anywhere leaves the Unit recorded and the next round takes the
retirement up again (deleted objects are gone, so they are skipped). A Unit declared again before its record
goes is no longer retiring: it is served again, and its pass re-creates whatever was deleted meanwhile.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gitopsguard.cluster.apply import Applier, OwnedSnapshot
from gitopsguard.cluster.configmaps import COMPONENT, ConfigMapStore, Content, Packed, Stored, damaged
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, Inventory, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.units import LiveUnit
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.model import Action, Change, Failure, KubeObject, ObjectKey, Reason
from gitopsguard.plan.prune import RELEASE_MARKER, BrakePolicy
from gitopsguard.plan.retire import (
    Declared,
    RetirePlan,
    Served,
    declared_of,
    gone,
    plan_retirement,
    recorded,
    retirement_brake,
    retiring,
)
from gitopsguard.reconcile import ReconcileResult
from gitopsguard.scan.state import COMPONENT as SCAN_COMPONENT
from gitopsguard.scan.state import SCAN_LABEL, scan_id
from gitopsguard.source import Revision
from gitopsguard.units import UnitRef, UnitSpec
from gitopsguard.units.root import Root, RootUnits

Acting = Callable[[str], contextlib.AbstractContextManager[Callable[[], bool] | None]]  # Fleet._acting
Found = Mapping[ObjectKey, tuple[KubeObject, str]]  # a retiring Unit's labelled objects, with their apiVersion
RECORDS = "units.json.gz"


class Records:
    """The Units a root served, by ref, kept in ``gitopsguard-units-<root>`` and in memory (read once)."""

    def __init__(self, raw: RawApi, root: str) -> None:
        self._store, self.name = ConfigMapStore(raw, CONTROLLER_NAMESPACE), f"gitopsguard-units-{root}"
        self._root = root
        self._known: dict[UnitRef, Served] | None = None

    def get(self) -> dict[UnitRef, Served]:
        """The records; ClusterError (naming the ConfigMap) when they cannot be read: nothing retires then."""
        if self._known is None:
            self._known = _parsed(self._store.read(self.name))
        return dict(self._known)

    def change(self, put: Mapping[UnitRef, Served], drop: Sequence[UnitRef] = ()) -> None:
        """Add or replace ``put``, remove ``drop``, merged into what is stored now (other replicas write too)."""

        merged: dict[UnitRef, Served] = {}

        def changed(current: Stored | None) -> Content:
            merged.clear()
            merged.update({**_parsed(current), **put})
            for ref in drop:
                merged.pop(ref, None)
            return _content(self._root, merged)

        self._store.update(self.name, changed)
        self._known = merged  # only once stored: a failed write is tried again by the next round


def _parsed(stored: Stored | None) -> dict[UnitRef, Served]:
    if stored is None:
        return {}
    try:
        rows = stored.json(RECORDS) or []
        return {(s := Served.of_row(row)).ref: s for row in rows}
    except (ValueError, TypeError) as error:
        raise damaged(stored.where, str(error)) from error


def _content(root: str, records: Mapping[UnitRef, Served]) -> Content:
    rows = [records[ref].row() for ref in sorted(records)]
    return Content({"root": root, "count": str(len(rows))},
                   {RECORDS: Packed.of(json.dumps(rows, separators=(",", ":")).encode())},
                   {COMPONENT: "unit-records"})  # fmt: skip


class Retirer:
    """Retires the Units that leave ``root``'s applied commit. ``applier`` is the controller's own (reads);
    ``account_of`` gives a Unit's applier (its deletes); ``on_note`` says each thing once (``Fleet._note``)."""

    def __init__(
        self, root: Root, raw: RawApi, applier: Applier, store: InventoryStore, *,
        account_of: Callable[[UnitSpec], Applier], on_result: Callable[[ReconcileResult], None],
        on_note: Callable[[str], None], brake: BrakePolicy, report_only: bool = False,
    ) -> None:  # fmt: skip
        self.root, self.raw, self.applier, self.store = root, raw, applier, store
        self.account_of, self.on_result, self.on_note, self.brake = account_of, on_result, on_note, brake
        self.records, self.report_only = Records(raw, root.unit), report_only  # the operator's, for every Unit
        self._held: tuple[str, frozenset[UnitRef], bool] | None = None  # held last: (commit, Units, released)

    def round(
        self, declared: tuple[str, RootUnits] | None, root_owns: frozenset[ObjectKey], live: Sequence[LiveUnit],
        served: Sequence[UnitSpec], revision: Revision | None, *, acting: Acting,
    ) -> None:  # fmt: skip
        """Record what is served; retire what left the root's applied commit (``declared``: the loop's
        ``(commit, Units)``, None without one). A round with nothing recorded gone makes no request. A failure
        is said and retires nothing; it never stops the round that serves the Units."""
        try:
            self._round(declared, root_owns, live, served, revision, acting)
        except GitOpsGuardError as error:
            self.on_note(f"Units that left the root path {self.root.path}: retiring waits: {error}")

    def record(self, served: Sequence[UnitSpec]) -> None:
        """Record what is served, before its passes write (a crash after them leaves it recorded); a failure is
        said, and tried again by ``round``."""
        try:
            self._record(served)
        except GitOpsGuardError as error:
            self.on_note(f"Units that left the root path {self.root.path}: recording waits: {error}")

    def _record(self, served: Sequence[UnitSpec]) -> dict[UnitRef, Served]:
        records = self.records.get()
        if changes := recorded(records, served, report_only=self.report_only):
            self.records.change(changes)
            records |= changes
        return records

    def _round(
        self, declared: tuple[str, RootUnits] | None, root_owns: frozenset[ObjectKey], live: Sequence[LiveUnit],
        served: Sequence[UnitSpec], revision: Revision | None, acting: Acting,
    ) -> None:  # fmt: skip
        records = self._record(served)
        facts = declared_of(declared)
        if not gone(records, facts):
            return
        decision = retiring(records, facts, root_owns, {UnitRef(u.namespace, u.name) for u in live},
                            root_path=self.root.path)  # fmt: skip
        for why in decision.waiting:
            self.on_note(why)
        if decision.units:
            self._retire(decision.units, records, facts, revision, acting)

    def _retire(
        self, units: Sequence[Served], records: Mapping[UnitRef, Served], facts: Declared, revision: Revision | None,
        acting: Acting,
    ) -> None:  # fmt: skip
        """Plan every retiring Unit (reads), judge them together, then retire those whose shard is ours. Once
        held, the same retirements are not read again until a commit or a restart may release them."""
        commit = facts.commit or ""
        released = self.brake.released or (revision is not None and revision.commit == commit
                                           and RELEASE_MARKER in revision.message)  # fmt: skip
        judged = (commit, frozenset(u.ref for u in units), released)
        if judged == self._held:
            return
        planned = [p for u in units if (p := self._plan(u)) is not None]
        if len(planned) < len(units):
            return  # an inventory could not be read: what it would delete is unknown, so nothing is judged
        owned = sum(len(i.entries) for i in self._inventories(records).values())
        held = retirement_brake([p for p, _ in planned], owned, replace(self.brake, released=released),
                                root_path=self.root.path)  # fmt: skip
        self._held = judged if held is not None else None
        if held is not None:
            self._hold(held, planned, commit)
            return
        for plan, live in planned:
            with acting(plan.unit.id) as still:
                if still is not None and still():
                    self._retire_one(plan, live, commit)

    def _plan(self, unit: Served) -> tuple[RetirePlan, Found] | None:
        """What retiring ``unit`` would delete, and each object it names as now labelled the Unit's (with the
        apiVersion it was applied as); None when its inventory or objects cannot be read (said)."""
        try:
            inventory = self.store.load(unit.id)
            pairs = [(e.api_version, k) for k, e in inventory.entries.items()]  # only what it applied, where
            live = OwnedSnapshot(self.applier, unit.id).of(pairs) if pairs and not unit.orphans else {}
        except GitOpsGuardError as error:
            self.on_note(f"{unit.ref}: left the root path {self.root.path}; retiring it waits: {error}")
            return None
        return plan_retirement(unit, frozenset(inventory.entries), live), {
            k: (b, inventory.entries[k].api_version) for k, b in live.items() if k in inventory.entries
        }

    def _inventories(self, records: Mapping[UnitRef, Served]) -> dict[str, Inventory]:
        ids = {s.id for s in records.values()}
        return {name: inventory for name, inventory in self.store.units().items() if name in ids}

    def _hold(self, why: str, planned: Sequence[tuple[RetirePlan, Found]], commit: str) -> None:
        """Nothing deleted: said (a note, and one audited result under the root's name, as a brake is)."""
        self.on_note(
            f"mass-prune brake: {why}: nothing was deleted; if intended, put {RELEASE_MARKER} in a commit "
            "message of the root path (or start with --allow-mass-prune), else restore the Units' files"
        )
        changes = tuple(Change(k, live[k][1], Action.SKIPPED, Reason.BRAKE, note=why)
                        for plan, live in planned for k in plan.delete)  # fmt: skip
        self.on_result(ReconcileResult(self.root.unit, commit, changes, brake=why))

    def _retire_one(self, plan: RetirePlan, live: Found, commit: str) -> None:
        """Delete as the Unit's account; then forget it, unless a delete may succeed later (tried next round)."""
        unit = plan.unit
        try:
            applier = self.account_of(unit.spec()) if plan.delete else self.applier
            applier.confirm_acting_as(unit.id)
        except GitOpsGuardError as error:  # its account is not one we may act as: nothing is deleted, retried
            self.on_note(f"{unit.ref}: left the root path {self.root.path}; retiring it waits: {error}")
            return
        changes = [Change(k, live[k][1] if k in live else "", Action.SKIPPED, why) for k, why in plan.keep]
        again = False
        for key in sorted(plan.delete, key=lambda k: (not k.namespace, k.kind == "Namespace")):
            body, api_version = live[key]
            refused = applier.delete(key, api_version, uid=str((body.get("metadata") or {}).get("uid") or "") or None)
            if refused is None:
                changes.append(Change(key, api_version, Action.DELETED, Reason.PRUNED, note=f"{unit.ref} retired"))
            else:  # refused for good (its account may not): left in place, and said
                changes.append(Change(key, api_version, Action.FAILED, Reason.DELETE_FAILED, error=Failure.of(refused)))
                again = again or refused.retryable
        if not again:
            self._forget(unit)
            deleted = sum(c.action is Action.DELETED for c in changes)
            left = "its objects are left in place" if unit.orphans else f"{deleted} of {plan.owned} objects deleted"
            self.on_note(f"{unit.ref}: left the root path {self.root.path} at {commit[:12]}: retired ({left})")
        if changes:
            self.on_result(ReconcileResult(unit.id, commit, tuple(changes)))

    def _forget(self, unit: Served) -> None:
        """Its live-scan state, its Lease, its inventory, then its record (last: a crash before it resumes)."""
        try:
            scans = ConfigMapStore(self.raw, CONTROLLER_NAMESPACE)
            found, _ = scans.list(selector=f"{COMPONENT}={SCAN_COMPONENT},{SCAN_LABEL}={scan_id(unit.id)}")
            for name in found:
                scans.delete(name)
            self._drop_lease(unit)
            self.store.delete(unit.id)
            self.records.change({}, [unit.ref])
        except GitOpsGuardError as error:
            self.on_note(f"{unit.ref}: retired, but its state could not all be removed yet (tried again): {error}")

    def _drop_lease(self, unit: Served) -> None:
        """The Lease a one-off ``reconcile`` of the Unit took, unless someone holds it now."""
        path = f"/apis/coordination.k8s.io/v1/namespaces/{CONTROLLER_NAMESPACE}/leases/gitopsguard-{unit.id}"
        status, lease = self.raw.request("GET", path)
        if status != 200 or _held(lease):
            return
        version = (lease.get("metadata") or {}).get("resourceVersion")
        self.raw.request("DELETE", path, body={"preconditions": {"resourceVersion": version}})


def _held(lease: Mapping[str, Any]) -> bool:
    spec = lease.get("spec") or {}
    renewed, seconds = str(spec.get("renewTime") or ""), spec.get("leaseDurationSeconds")
    try:
        at = datetime.strptime(renewed, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return bool(spec.get("holderIdentity"))
    ttl = timedelta(seconds=seconds if type(seconds) is int and 0 < seconds < 86400 else 15)
    return bool(spec.get("holderIdentity")) and datetime.now(UTC) < at + ttl
