"""The root path's part of a Units round (``fleet.py``): the Units listed (again only when something says they
changed), a reconcile request noticed, the branch fetched once when due and the root path judged at it (deferred
at a commit it was accepted at), the root path reconciled as the controller itself, and the Units of its applied
commit read with its inventory.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from gitopsguard.cluster.informer import Informer
from gitopsguard.cluster.units import API_VERSION, LiveUnit
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.fleet_core import Deferred, FleetCore
from gitopsguard.heads import Head, judge
from gitopsguard.model import UNIT_LABEL, KubeObject
from gitopsguard.reconcile import renderer
from gitopsguard.source import Revision
from gitopsguard.units import UnitRef, UnitSpec, request_answered
from gitopsguard.units.root import units_of_root


class RootPath(FleetCore):
    """The root path's part of ``Fleet``: a mixin on its state (``fleet_core.FleetCore``)."""

    def _listed_units(self) -> tuple[LiveUnit, ...]:
        """The Units as the last list gave them while nothing says they changed since; else listed now."""
        if self._listed is not None and self._units_in_sync and not self._units_stale:
            return self._listed
        return self._list_units()

    def _list_units(self) -> tuple[LiveUnit, ...]:
        self._units_stale = False  # before the list: a change during it is seen by the next round
        self._listed = self._units.list()
        return self._listed

    def _units_changed(self, _change: str, _body: KubeObject) -> None:
        self._units_stale = True
        self._wake.set()

    def _units_synced(self, synced: bool) -> None:
        self._units_in_sync = synced
        self._units_stale = True

    def _asked_for(self, units: tuple[LiveUnit, ...]) -> bool:
        """Whether a Unit of the root's label carries a reconcile request not seen before. Each request value
        fetches once: whoever copies the label onto a Unit of their own cannot make every round fetch. The same
        listed Units as the last round's hold the same requests: none new, not looked through again."""
        if units is self._asked_of:
            return False
        self._asked_of = units
        asked = {(u.namespace, u.name, u.requested_at) for u in units if u.requested_at is not None
                 and not request_answered(u.requested_at, u.status) and _label(u.body) == self.unit.name}  # fmt: skip
        new = asked - self._asked
        self._asked = asked
        return bool(new)

    def _pass_root(self) -> bool:
        """When due (its interval, a local commit, a reconcile request): fetch once; then reconcile the root path
        with the fetched revision, as the controller itself, on the replica that holds the root's shard (also
        when that shard came to it after the fetch). Whether the root's Units may have moved."""
        fetched = self._fetch_if_due()
        with self._acting(self.unit.name) as still:  # every replica fetches; the root's shard holder applies
            moved = self._take_moved(self.unit.name)
            if still is None or self._root_head is None or not (fetched or self._root_pending or moved):
                return fetched
            self._root_pending = False
            reconciler = replace(self._reconciler, live=self._cache.view(self.unit.name))
            result = reconciler.reconcile(self.unit, head=self._root_head, want_policies=self.policies is None)
        self._track(result)
        if result.policies is not None and not result.error:
            self.policies = result.policies
        self._on_result(result)
        return True

    def _fetch_if_due(self) -> bool:
        if not (self._fetch_now.is_set() or time.monotonic() >= self._root_due or self._revision is None):
            return False
        self._fetch_now.clear()
        self._root_due = time.monotonic() + self._interval
        inventory = self._store.load(self.unit.name)
        try:
            revision = self._source.fetch(last_applied=inventory.last_applied,
                                          allow_rewind=self._reconciler.allow_rewind,
                                          break_glass=self._reconciler.break_glass)  # fmt: skip
            self._root_head = self._root_judged(revision)
            self._revision = revision
        except GitOpsGuardError as error:  # unreachable, rewound, unreviewed: the root holds, Units keep theirs
            self._root_head = Head(None, refusal=error.with_traceback(None))
        self._root_pending = True
        return True

    def _root_judged(self, revision: Revision) -> Head:
        """The root path at ``revision``; at the commit it was judged at before and accepted, rendered and
        judged again only if its pass needs the objects (something moved), as a Unit's is (``Deferred``)."""

        def judged() -> Head:
            return judge(self.unit, revision, self._applier, renderer(self._stored), datetime.now(UTC))

        before = self._root_head
        if self.policies is None or before is None or before.refusal is not None or before.revision is None:
            return judged()  # policies None: the pass must read them (admission and the scan wait on them)
        if before.revision.commit != revision.commit:
            return judged()
        return Deferred(revision, judging=functools.cache(judged))

    def _root_specs(self) -> tuple[tuple[UnitSpec, ...], Mapping[UnitRef, str], frozenset[Any]]:
        """The Units of the root's last applied commit, the refused ones with why, and the root's inventory."""
        # read once per round: recalled when the watch vouches for it (it only decides which Units to serve)
        inventory = self._store.recall(self.unit.name) or self._store.load(self.unit.name)
        commit = inventory.last_applied
        if commit is None:
            return (), {}, frozenset()
        if self._declared is None or self._declared[0] != commit:  # rendered and read once per applied commit
            manifests = self._render_at(self.unit.path, commit)
            declared = units_of_root(self._root, manifests, self._defaults, namespace=self.unit.default_namespace)
            self._declared = (commit, declared)
        declared = self._declared[1]
        if self._inventory_keys is None or self._inventory_keys[0] is not inventory:  # the same kept inventory:
            self._inventory_keys = (inventory, frozenset(inventory.entries))  # the same keys, not built again
        return declared.units, declared.refused_units, self._inventory_keys[1]

    def _watch_units(self, stop: threading.Event) -> None:
        """One informer on the Units the root applied (its label): any change wakes a round. Started once the
        Units can be listed (the CRD comes with ``manifests/``)."""
        if self._watching:
            return
        self._watching = True
        informer = Informer(self._applier, self._raw, (API_VERSION, "Unit"), keep_objects=False, what="Units",
                            selector=f"{UNIT_LABEL}={self.unit.name}",
                            on_event=self._units_changed, on_sync=self._units_synced)  # fmt: skip
        informer.start(stop)


def _label(body: Mapping[str, Any]) -> object:
    labels = (body.get("metadata") or {}).get("labels")
    return labels.get(UNIT_LABEL) if isinstance(labels, Mapping) else None
