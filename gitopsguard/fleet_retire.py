"""Units that left the root path garbage-collect what they applied (``plan/retire.py`` decides; this acts).

Each round of the Units loop, after it read the Units of the root's applied commit (``Fleet._serve``):

1. **record** each Unit served as the root's render gives it (``Served``: its account, ``prune``, ``suspend``),
   in one ConfigMap per root (``gitopsguard-units-<root>``, written only when a record changes), so that what
   retiring a Unit needs survives the Unit object, which the root's prune deletes; this, before the passes;
   the rest after them (``round``), so that a Unit renamed or moved has taken back what its old name applied
   (its pass relabels it) before the old name's retirement looks for what is still labelled its own;
2. **decide**: the recorded Units the applied commit no longer declares, whose object is gone (``retiring``);
3. **plan** what each would delete (its inventory, what still carries its label), read as the controller,
   keep what a Unit the applied commit declares claims (``_unclaimed``: its inventory, else its folder rendered
   at that commit), and judge the rest together with the brake (``retirement_brake``): a bad commit that
   removes every Unit holds, with a note and one audited result naming the Units and counts;
4. **delete**, on the replica that holds the Unit's shard, **as the Unit's account** (its recorded
   ``serviceAccountName``, else the operator's default), each object only as it was read (its uid and
   resourceVersion): a retirement deletes nothing the team could not, nor anything relabelled since;
5. **forget**: its live-scan state, its Lease (when nobody holds it), its inventory, then its record.

Renamed or moved Units, under ``--shards``: the new name's pass may run on another replica, after the old name's
retirement; what the new name declares is kept all the same, since its folder at the applied commit claims it
(rendered here, once per commit, only for the declared Units whose inventory is not at that commit and only
while something is still to be deleted). Nothing waits on another Unit's status, so a Unit stuck for good
(suspended, waiting for a dependency, refused, failing) holds no retirement.

Restart-safe: the record goes last, so a crash anywhere leaves the Unit recorded and the next round takes the
retirement up again (deleted objects are gone, so they are skipped). A Unit declared again before its record
goes is no longer retiring: it is served again, and its pass re-creates whatever was deleted meanwhile.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gitopsguard.cluster.apply import Applier, OwnedSnapshot
from gitopsguard.cluster.configmaps import COMPONENT, ConfigMapStore, Content, Packed, Stored, damaged
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, Inventory, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.units import LiveUnit
from gitopsguard.errors import ConflictError, GitOpsGuardError, RenderError
from gitopsguard.model import Action, Change, Failure, KubeObject, Manifest, ObjectKey, Reason
from gitopsguard.plan.prune import RELEASE_MARKER, BrakePolicy
from gitopsguard.plan.retire import (
    Declared,
    RetirePlan,
    Served,
    claimed_by_render,
    claims_text,
    declared_of,
    gone,
    plan_retirement,
    recorded,
    retirement_brake,
    retiring,
    unclaimed,
)
from gitopsguard.reconcile import ReconcileResult
from gitopsguard.scan.state import COMPONENT as SCAN_COMPONENT
from gitopsguard.scan.state import SCAN_LABEL, scan_id
from gitopsguard.source import Revision
from gitopsguard.units import UnitRef, UnitSpec
from gitopsguard.units.root import Root, RootUnits

Acting = Callable[[str], contextlib.AbstractContextManager[Callable[[], bool] | None]]  # Fleet._acting
Found = Mapping[ObjectKey, tuple[KubeObject, str]]  # a retiring Unit's labelled objects, with their apiVersion
Render = Callable[[str, str], tuple[Manifest, ...]]  # (a folder, a commit) -> its documents (Fleet._render_at)
RECORDS = "units.json.gz"
RECORDS_REREAD = 60.0  # seconds the records in memory are used before they are read again (one GET a minute)
CLAIMS_KEPT = 60.0  # seconds the claims found for the same objects at the same commit are trusted without a read


class Records:
    """The Units a root served, by ref, kept in ``gitopsguard-units-<root>`` and in memory, read again once the
    copy in memory is ``reread`` seconds old: under ``--shards`` other replicas record the Units they serve, and
    one that takes a dead replica's shard must see what that replica recorded to retire its Units."""

    def __init__(self, raw: RawApi, root: str, *, reread: float = RECORDS_REREAD) -> None:
        self._store, self.name = ConfigMapStore(raw, CONTROLLER_NAMESPACE), f"gitopsguard-units-{root}"
        self._root, self._reread = root, reread
        self._known: dict[UnitRef, Served] | None = None
        self._read_at = 0.0  # time.monotonic() of the copy in memory
        self.version = 0  # moves on when the records in memory change

    def get(self) -> dict[UnitRef, Served]:
        """The records; ClusterError (naming the ConfigMap) when they cannot be read: nothing retires then."""
        if self._known is None or time.monotonic() - self._read_at >= self._reread:
            known = _parsed(self._store.read(self.name))
            self._read_at = time.monotonic()
            if known != self._known:
                self._known = known
                self.version += 1
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
        self._read_at = time.monotonic()  # what is stored now, merged with the other replicas' records
        self.version += 1


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
    ``account_of`` gives a Unit's applier (its deletes); ``render`` a folder at a commit (what a declared Unit
    claims); ``on_note`` says each thing once (``Fleet._note``)."""

    def __init__(
        self, root: Root, raw: RawApi, applier: Applier, store: InventoryStore, *,
        account_of: Callable[[UnitSpec], Applier], render: Render, on_result: Callable[[ReconcileResult], None],
        on_note: Callable[[str], None], brake: BrakePolicy, report_only: bool = False,
    ) -> None:  # fmt: skip
        self.root, self.raw, self.applier, self.store = root, raw, applier, store
        self.account_of, self.on_result, self.on_note, self.brake = account_of, on_result, on_note, brake
        self.render = render
        # what each declared Unit's folder claims at one commit (the last one asked about): rendered once
        self._folder_claims: tuple[str, dict[tuple[UnitRef, str, str | None], dict[ObjectKey, UnitRef]]] = ("", {})
        self._claimed: tuple[str, frozenset[ObjectKey], dict[ObjectKey, UnitRef], float] = ("", frozenset(), {}, 0.0)
        self.records, self.report_only = Records(raw, root.unit), report_only  # the operator's, for every Unit
        self._held: tuple[str, frozenset[UnitRef], bool] | None = None  # held last: (commit, Units, released)
        # the round that last found nothing gone: its declared Units, served Units and records' version
        self._none_gone: tuple[object, object, int] | None = None

    def round(
        self, declared: tuple[str, RootUnits] | None, root_owns: frozenset[ObjectKey], live: Sequence[LiveUnit],
        served: Sequence[UnitSpec], revision: Revision | None, *, acting: Acting,
    ) -> None:  # fmt: skip
        """Record what is served; retire what left the root's applied commit (``declared``: the loop's
        ``(commit, Units)``, None without one). A round with nothing recorded gone makes no request but, once a
        minute, a read of the records (``Records``: other replicas record the Units they serve). A failure
        is said and retires nothing; it never stops the round that serves the Units."""
        try:
            self._round(declared, root_owns, live, served, revision, acting)
        except GitOpsGuardError as error:
            self.on_note(f"Units that left the root path {self.root.path}: retiring waits: {error}")

    def record(self, served: Sequence[UnitSpec]) -> bool:
        """Record what is served, before its passes write (a crash after them leaves it recorded); a failure is
        said, and tried again by ``round``. Whether it is recorded."""
        try:
            self._record(served)
        except GitOpsGuardError as error:
            self.on_note(f"Units that left the root path {self.root.path}: recording waits: {error}")
            return False
        return True

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
        self.records.get()  # read again once a minute old: another replica's record moves its version
        at_rest = self._none_gone  # the same objects declared, served and recorded: nothing to record, none gone
        if (
            at_rest is not None
            and at_rest[0] is declared
            and at_rest[1] is served
            and at_rest[2] == self.records.version
        ):
            return
        records = self._record(served)
        facts = declared_of(declared)
        if not gone(records, facts):
            self._none_gone = (declared, served, self.records.version)
            return
        self._none_gone = None
        decision = retiring(records, facts, root_owns, {UnitRef(u.namespace, u.name) for u in live},
                            root_path=self.root.path)  # fmt: skip
        for why in decision.waiting:
            self.on_note(why)
        if decision.units and declared is not None:
            self._retire(decision.units, records, (facts, declared[1].units), revision, acting)

    def _retire(
        self, units: Sequence[Served], records: Mapping[UnitRef, Served], declared: tuple[Declared, Sequence[UnitSpec]],
        revision: Revision | None, acting: Acting,
    ) -> None:  # fmt: skip
        """Plan every retiring Unit (reads), judge them together, then retire those whose shard is ours. Once
        held, the same retirements are not read again until a commit or a restart may release them."""
        facts, specs = declared
        commit = facts.commit or ""
        released = self.brake.released or (revision is not None and revision.commit == commit
                                           and RELEASE_MARKER in revision.message)  # fmt: skip
        judged = (commit, frozenset(u.ref for u in units), released)
        if judged == self._held:
            return
        planned = [p for u in units if (p := self._plan(u)) is not None]
        if len(planned) < len(units):
            return  # an inventory could not be read: what it would delete is unknown, so nothing is judged
        inventories = functools.cache(self.store.units)  # every inventory: listed once, and only if needed
        planned = self._unclaimed(planned, specs, inventories, commit)
        ids = {s.id for s in records.values()}
        # nothing left to delete (what is left is claimed, and waited for): no brake to judge, no list to read
        owned = sum(len(i.entries) for n, i in inventories().items() if n in ids) if _deleting(planned) else 0
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

    def _unclaimed(
        self, planned: Sequence[tuple[RetirePlan, Found]], specs: Sequence[UnitSpec],
        inventories: Callable[[], Mapping[str, Inventory]], commit: str,
    ) -> list[tuple[RetirePlan, Found]]:  # fmt: skip
        """The plans without what a Unit the applied commit declares claims: what its inventory names, and, unless
        that inventory is at the commit, what its folder names there (rendered only while something is left to
        delete). Its pass takes them over, here or on another replica, now or later. While the same objects wait
        at the same commit, the claims found last are kept for ``CLAIMS_KEPT`` (no list of every inventory each
        round): a claim that goes at one commit is mostly a Unit taking the object over, which takes it out of
        ``deleting``; the rest (an inventory entry its Unit drops) is seen within that time."""
        deleting = _deleting(planned)
        if not deleting:
            return list(planned)
        if self._claimed[:2] != (commit, deleting) or time.monotonic() > self._claimed[3]:
            claims = self._claims_on(deleting, specs, inventories(), commit)
            self._claimed = (commit, deleting, claims, time.monotonic() + CLAIMS_KEPT)
        return [(unclaimed(plan, self._claimed[2]), live) for plan, live in planned]

    def _claims_on(
        self, deleting: frozenset[ObjectKey], specs: Sequence[UnitSpec], inventories: Mapping[str, Inventory],
        commit: str,
    ) -> dict[ObjectKey, UnitRef]:  # fmt: skip
        claimed: dict[ObjectKey, UnitRef] = {}
        for spec in specs:
            inventory = inventories.get(spec.id)
            claimed |= {k: spec.ref for k in (inventory.entries if inventory else ()) if k in deleting}
        for spec in specs:
            if not deleting - claimed.keys():
                break
            inventory = inventories.get(spec.id)
            if inventory is None or inventory.last_applied != commit:
                claimed |= {k: ref for k, ref in self._rendered_claims(spec, commit).items() if k in deleting}
        return claimed

    def _rendered_claims(self, spec: UnitSpec, commit: str) -> dict[ObjectKey, UnitRef]:
        """What ``spec``'s folder names at ``commit``. A folder that does not render claims nothing: the Unit's own
        pass is refused there for the same reason, and applies nothing (said once). Any other failure (the
        commit cannot be checked out) ends the retirement for this round, deleting nothing."""
        if self._folder_claims[0] != commit:
            self._folder_claims = (commit, {})
        memo, key = self._folder_claims[1], (spec.ref, spec.path, spec.target_namespace)
        if key not in memo:
            try:
                manifests = self.render(spec.path, commit)
            except RenderError as error:
                self.on_note(
                    f"{spec.origin}: {spec.ref}: its folder {spec.path} does not render at {commit[:12]}, "
                    f"so it takes nothing over there; retirements keep what its inventory names: {error}"
                )
                manifests = ()
            memo[key] = claimed_by_render(spec, manifests)
        return memo[key]

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
        """Delete as the Unit's account; then forget it, unless a delete may succeed later (tried next round) or a
        declared Unit has yet to take over what it claims (its inventory stays the handle that deletes them, should
        that Unit leave before it does)."""
        unit = plan.unit
        try:
            applier = self.account_of(unit.spec()) if plan.delete else self.applier
            applier.confirm_acting_as(unit.id)
        except GitOpsGuardError as error:  # its account is not one we may act as: nothing is deleted, retried
            self.on_note(f"{unit.ref}: left the root path {self.root.path}; retiring it waits: {error}")
            return
        changes, again = self._delete(plan, live, applier)
        ended = not again and not plan.claimed
        if ended:
            self._forget(unit)
            deleted = sum(c.action is Action.DELETED for c in changes)
            left = "its objects are left in place" if unit.orphans else f"{deleted} of {plan.owned} objects deleted"
            self.on_note(f"{unit.ref}: left the root path {self.root.path} at {commit[:12]}: retired ({left})")
        elif plan.claimed:
            self.on_note(f"{unit.ref}: left the root path {self.root.path} at {commit[:12]}: it retires once the Units "
                         f"that declare its objects now have taken them over: {claims_text(plan)}")  # fmt: skip
        if changes or ended:  # what it keeps is said with what it deletes, or as it ends: not every round it waits
            kept = [Change(k, live[k][1] if k in live else "", Action.SKIPPED, why) for k, why in plan.keep]
            if kept or changes:
                self.on_result(ReconcileResult(unit.id, commit, tuple(kept + changes)))

    @staticmethod
    def _delete(plan: RetirePlan, live: Found, applier: Applier) -> tuple[list[Change], bool]:
        """Each delete as a change; and whether the retirement must be tried again (a delete that may pass
        later, or an object changed since it was read: read again)."""
        changes, again = [], False
        for key in sorted(plan.delete, key=lambda k: (not k.namespace, k.kind == "Namespace")):
            body, api_version = live[key]
            metadata = body.get("metadata") or {}
            # only as read: relabelled since (a new name's pass on another replica) is a conflict, read again
            refused = applier.delete(key, api_version, uid=str(metadata.get("uid") or "") or None,
                                     resource_version=str(metadata.get("resourceVersion") or "") or None)  # fmt: skip
            if refused is None:
                changes.append(Change(key, api_version, Action.DELETED, Reason.PRUNED, note=f"{plan.unit.ref} retired"))
            else:  # refused for good (its account may not): left in place, and said; changed since: next round
                changes.append(Change(key, api_version, Action.FAILED, Reason.DELETE_FAILED, error=Failure.of(refused)))
                again = again or refused.retryable or isinstance(refused, ConflictError)
        return changes, again

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


def _deleting(planned: Sequence[tuple[RetirePlan, Found]]) -> frozenset[ObjectKey]:
    return frozenset(k for plan, _ in planned for k in plan.delete)


def _held(lease: Mapping[str, Any]) -> bool:
    spec = lease.get("spec") or {}
    renewed, seconds = str(spec.get("renewTime") or ""), spec.get("leaseDurationSeconds")
    try:
        at = datetime.strptime(renewed, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return bool(spec.get("holderIdentity"))
    ttl = timedelta(seconds=seconds if type(seconds) is int and 0 < seconds < 86400 else 15)
    return bool(spec.get("holderIdentity")) and datetime.now(UTC) < at + ttl
