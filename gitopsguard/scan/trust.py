"""Checking who manages a workload, instead of believing what its labels and ownerReferences say.

Anyone who may create a Pod may label it ``gitopsguard.io/unit: x`` and give it an ownerReference. A unit
label counts only when that unit's inventory (written by the controller alone) lists the object; a controller
owner counts only when its kind really controls the object's kind (``CONTROLLERS``: a tenant may name a
ConfigMap, or a Deployment of their own, as a Pod's controller) and an object of that kind and name exists
with the referenced uid. The tenant may make that owner too: the scan still judges a child on its own when
it has findings its owner is not itself judged for, with the same value (``scan/template.py``). Owner
answers are cached by the whole reference: a uid is never reused, so the answer for one reference never changes while
its owner lives (a deleted owner is forgotten when its DELETED event comes).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ApplyError, ClusterError, GitOpsGuardError, NotFoundError, UnreachableError
from gitopsguard.model import UNIT_LABEL, KubeObject, ObjectKey
from gitopsguard.plan.prepare import Desired
from gitopsguard.plan.unmanaged import WORKLOAD_KINDS
from gitopsguard.policy.live import Standing

DISCOVERY_INTERVAL = 30.0  # seconds between readings of the kinds the server serves, whatever owners name
SKEW = timedelta(seconds=5)  # between our clock and the API server's creation timestamps
MAX_CACHED = 100_000  # owner answers kept; past this the cache starts again (a bound, not a tuning knob)
_Reference = tuple[str, str, str, str, str]  # namespace, apiVersion, kind, name, uid
TRACKED_KINDS = frozenset(WORKLOAD_KINDS)  # what unmanaged tracking lists and judges itself
MAX_HOPS = 3  # owners followed up from one workload (a Pod, its Job, the Job's CronJob)
CONTROLLERS: dict[tuple[str, str], frozenset[tuple[str, str]]] = {  # (group, kind) -> what really controls it
    ("", "Pod"): frozenset({("apps", "ReplicaSet"), ("apps", "StatefulSet"), ("apps", "DaemonSet"),
                            ("batch", "Job"), ("", "ReplicationController")}),
    ("apps", "ReplicaSet"): frozenset({("apps", "Deployment")}),
    ("batch", "Job"): frozenset({("batch", "CronJob")}),
}  # fmt: skip


class Trust:
    def __init__(
        self, applier: Applier, raw: RawApi, inventories: InventoryStore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._applier, self._raw, self._inventories, self._clock = applier, raw, inventories, clock
        self._units: dict[str, frozenset[ObjectKey]] = {}
        self.loaded_at = float("-inf")  # when the inventories were last read (monotonic)
        self.unreadable = False  # the last reading failed: claims stand unconfirmed
        self._owners: dict[_Reference, bool] = {}
        self._by_uid: dict[str, set[_Reference]] = {}
        self._served: frozenset[tuple[str, str]] = frozenset()  # (apiVersion, kind) at the last discovery
        self._served_at: datetime | None = None  # wall clock of the last discovery
        self._discovered_at = float("-inf")  # monotonic, for the rate
        self.discoveries = 0

    def refresh(self) -> None:
        """Read every unit's inventory again. Raises ClusterError; the last good view is kept then."""
        units = self._inventories.units()
        self._units = {name: frozenset(inventory.entries) for name, inventory in units.items()}
        self.loaded_at, self.unreadable = self._clock(), False

    def standing(self, body: KubeObject) -> Standing:
        """What the cluster confirms about who manages ``body`` (lookups only for claims not seen before)."""
        metadata = body.get("metadata") or {}
        claimed = str((metadata.get("labels") or {}).get(UNIT_LABEL) or "")
        if claimed and self.loaded_at == float("-inf"):
            self._first_reading()
        listed = bool(claimed) and ObjectKey.of(body) in self._units.get(claimed, frozenset())
        unit, claims = (claimed, "") if listed else ("", claimed)
        ref = controller_reference(body)
        if ref is None:  # none, or one of a kind that does not control this kind: it proves nothing
            return Standing(unit=unit, claims=claims)
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        try:
            exists = self._owner_exists(str(metadata.get("namespace") or ""), ref, _created(metadata))
        except GitOpsGuardError as error:  # cannot tell now: held (not deleted), checked again later
            why = f"its controller {kind}/{name} could not be checked ({error}): held until it can be"
            return Standing(unit=unit, claims=claims, unverified=why)
        if not exists:
            return Standing(unit=unit, claims=claims)
        return Standing(unit=unit, owner_kind=kind, owner_name=name, claims=claims)

    def _first_reading(self) -> None:
        """The inventories are read when a workload first claims a unit, not before: a scan of namespaces
        where nothing claims one never reads them. Unread, no claim is confirmed (and the scan reads them
        again before deleting anything that claims one)."""
        try:
            self.refresh()
        except GitOpsGuardError:
            self.unreadable = True
            self.loaded_at = self._clock()  # not again for every object; the scan's timer tries again

    def _kind_served(self, api_version: str, kind: str, created: datetime | None) -> bool | None:
        """Whether the server serves this kind; None when that cannot be told without a discovery the rate
        does not allow yet. A kind missing from a discovery made after the dependent was created proves its
        owner forged: the owner, and so its kind, had to exist first. Each unknown kind costing a discovery
        of every API group would let a tenant's forged references slow the scan to a crawl."""
        if (api_version, kind) in self._served:
            return True
        if self._served_at is not None and created is not None and created + SKEW < self._served_at:
            return False
        if self._clock() - self._discovered_at < DISCOVERY_INTERVAL:
            return None
        self._discover()
        return (api_version, kind) in self._served

    def _discover(self) -> None:
        self._discovered_at, started = self._clock(), datetime.now(UTC)
        served: set[tuple[str, str]] = set()
        try:
            groups = self._raw.get("/apis", "/apis")
        except UnreachableError:
            raise
        except ClusterError as error:
            reason = str(error).removeprefix("/apis: ")
            raise ApplyError(f"/apis: cannot discover the served kinds: {reason}") from error
        versions = ["v1"] + [
            str(v.get("groupVersion")) for g in groups.get("groups") or [] for v in g.get("versions") or []
        ]
        for group_version in versions:
            path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
            try:
                listed = self._raw.get(path, path)
            except UnreachableError:
                raise
            except ClusterError:  # an aggregated API that is down serves nothing now
                continue
            served |= {(group_version, str(r.get("kind"))) for r in listed.get("resources") or []}
        self.discoveries += 1
        self._served, self._served_at = frozenset(served), started

    def forget(self, uid: str) -> None:
        """An object is gone: references to it no longer name a live owner."""
        for reference in self._by_uid.pop(uid, set()):
            self._owners.pop(reference, None)

    def _owner_exists(self, namespace: str, ref: Mapping[str, Any], created: datetime | None) -> bool:
        api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
        name, uid = str(ref.get("name") or ""), str(ref.get("uid") or "")
        reference = (namespace, api_version, kind, name, uid)
        known = self._owners.get(reference)
        if known is not None:
            return known
        exists = bool(name and uid) and self._look_up(reference, created)
        if len(self._owners) >= MAX_CACHED:
            self._owners.clear()
            self._by_uid.clear()
        self._owners[reference] = exists
        if exists:
            self._by_uid.setdefault(uid, set()).add(reference)
        return exists

    def _look_up(self, reference: _Reference, created: datetime | None) -> bool:
        """Whether the referenced object exists with that uid; ApplyError when the server cannot say now."""
        _, api_version, kind, _, _ = reference
        served = self._kind_served(api_version, kind, created)
        if served is None:
            raise ApplyError(f"{kind} ({api_version}) was not served at the last discovery; asked again within "
                             f"{DISCOVERY_INTERVAL:.0f} s")  # fmt: skip
        return served and self._read(reference) is not None

    def controller(self, body: KubeObject) -> KubeObject | None:
        """The controller ``body`` names, read now (its template may have changed since its existence was
        confirmed); None when it names none that controls its kind, or it is gone. ApplyError when unreadable."""
        ref = controller_reference(body)
        if ref is None:
            return None
        namespace = str((body.get("metadata") or {}).get("namespace") or "")
        api_version, kind, name, uid = (str(ref.get(k) or "") for k in ("apiVersion", "kind", "name", "uid"))
        return self._read((namespace, api_version, kind, name, uid))

    def _read(self, reference: _Reference) -> KubeObject | None:
        """The referenced object when it exists with that uid; ApplyError when the server cannot say now."""
        namespace, api_version, kind, name, uid = reference
        try:
            resource = self._applier.resource(api_version, kind, f"{kind}/{namespace}/{name}")
        except ApplyError:  # a kind the server does not serve: no such owner
            return None
        path = self._applier.object_path(
            api_version, ObjectKey("", kind, namespace if resource.namespaced else "", name)
        )
        where = f"{kind}/{namespace}/{name}"
        try:
            answer = self._raw.get(path, where)
        except NotFoundError:
            return None
        except UnreachableError:
            raise
        except ClusterError as error:
            raise ApplyError(f"{where}: cannot read it: {str(error).removeprefix(where + ': ')}") from error
        found = str((answer.get("metadata") or {}).get("uid") or "") == uid
        return {"apiVersion": api_version, "kind": kind, **answer} if found else None


def _created(metadata: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(metadata.get("creationTimestamp")))
    except ValueError:
        return None


def controller_reference(body: KubeObject) -> Mapping[str, Any] | None:
    """The controller ownerReference of ``body`` when its kind really controls objects of this kind; None
    otherwise. Anyone who may create a Pod may name any object as its controller (a ConfigMap, their own
    Deployment): only the kinds whose controllers create and replace such objects count."""
    metadata = body.get("metadata") or {}
    owners = metadata.get("ownerReferences") or []
    if not isinstance(owners, list):
        return None
    ref = next((o for o in owners if isinstance(o, Mapping) and o.get("controller") is True), None)
    if ref is None:
        return None
    owner = (str(ref.get("apiVersion") or "").rpartition("/")[0], str(ref.get("kind") or ""))
    dependent = (str(body.get("apiVersion") or "").rpartition("/")[0], str(body.get("kind") or ""))
    return ref if owner in CONTROLLERS.get(dependent, frozenset()) else None


def managed_check(applier: Applier, desired: Sequence[Desired]) -> Callable[[ObjectKey, KubeObject], bool]:
    """For a unit's pass: whether a live workload is managed, by Git (this pass applies it, or a unit's
    inventory lists it) or by a controller that really controls its kind, exists with the referenced uid, and
    is itself tracked here or managed (a tenant's own owner passes management on to nothing). When the
    inventories or an owner cannot be read, the claim is taken for this pass: nothing is deleted on a guess.
    Nothing is read until some workload is asked about (most passes opt no namespace in)."""
    trust = Trust(applier, applier.raw, InventoryStore(applier.raw))

    @functools.cache
    def applying() -> frozenset[ObjectKey]:
        return frozenset(d.key for d in desired)

    def managed(key: ObjectKey, body: KubeObject, hops: int = 0) -> bool:
        if key in applying():
            return True
        standing = trust.standing(body)
        unreadable = bool(standing.claims) and trust.unreadable
        if standing.unit or standing.unverified or unreadable:
            return True
        if not standing.owner_kind:
            return False
        ref = controller_reference(body) or {}
        if (str(ref.get("apiVersion") or ""), standing.owner_kind) in TRACKED_KINDS:
            return True  # tracked itself: judged on its own, and its dependents go with it
        return hops < MAX_HOPS and _owner_managed(trust, body, lambda k, b: managed(k, b, hops + 1))

    return managed


def _owner_managed(trust: Trust, body: KubeObject, managed: Callable[[ObjectKey, KubeObject], bool]) -> bool:
    try:
        owner = trust.controller(body)
    except GitOpsGuardError:  # cannot tell now: taken as managed for this pass
        return True
    return owner is not None and managed(ObjectKey.of(owner), owner)
