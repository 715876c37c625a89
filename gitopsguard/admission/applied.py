"""The policies admission judges by: those of the revision the controller last applied, on every replica; under
``run --root``, also each Unit's own, as that Unit last applied them, in the namespaces it targets.

The replica that leads offers each revision's policies as its controller applies them. Every replica also
follows the unit's inventory (the ConfigMap in the controller's namespace, which names the last applied
commit) and reads that commit's ``policies/`` from its own clone, so replicas that do not lead, and a
restarted leader before its first pass, judge by the same policies. Until one is known, ``get`` is None
and admission denies (fail closed).

Under ``run --root`` the same thread follows every Unit's inventory too (``scan/following.py``), into the
``Governed`` the Units loop feeds after each pass and the live scan reads: one ``Governance`` for the three
paths. Until the Units of the root's applied commit have been read once, ``get`` is ``pending`` and every
request is refused, with a 503 so that clients retry (a tenant cannot win a race at start against its own
policies); a Unit whose policies could not be read keeps its last known ones, and with none known its namespace
is refused (``Judgement.unknown``). Nothing is read per request: a request takes the Judgement made when
something last changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

from gitopsguard.admission.review import Judgement
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.gate import policies_at
from gitopsguard.policy import DenyLevel, PolicySet
from gitopsguard.policy.compose import Governance
from gitopsguard.scan.following import InventoryHeads, UnitsFollower, heads_of
from gitopsguard.source import GitSource

PENDING = "gitopsguard has not read the own policies of the Units its root path declares yet (it just started)"


class AppliedPolicies:
    def __init__(self, deny_level: DenyLevel, *, units: UnitsFollower | None = None) -> None:
        self._deny_level = deny_level
        self._current: Judgement | None = None  # replaced whole: a reader sees the old or the new, never a mix
        self._lock = threading.Lock()
        self.units = units  # None: the root's policies alone (``run --path``)
        self._units_read = False  # the Units of the root's applied commit were read once
        self._judged: Judgement | None = None  # ``_current`` with the governance last made from it ...
        self._made_from: tuple[Judgement, Governance | None, str] | None = None  # ... and what it was made from

    def get(self) -> Judgement | None:
        current = self._current
        if current is None or self.units is None:
            return current
        made = self.units.governed.governance(current.policies)  # the same object until something changes
        # fail closed at start: the root's alone would admit what a Unit forbids
        pending = "" if self._units_read else PENDING
        judged, made_from = self._judged, (current, made, pending)
        if judged is None or self._made_from != made_from:  # made once per change, never per request
            judged = self._judged = replace(current, governance=made, pending=pending)
            self._made_from = made_from
        return judged

    def judging(self) -> bool:
        """Whether requests are judged (a replica is ready for admission): policies known, the Units' read."""
        judged = self.get()
        return judged is not None and not judged.pending

    def governance(self) -> Governance | None:
        """What the live scan judges by: the root's applied policies and each Unit's own where it governs."""
        current = self._current
        if current is None or self.units is None:
            return None
        return self.units.governed.governance(current.policies)

    def offer(self, policies: PolicySet, revision: str) -> None:
        """The policies of ``revision``, just applied (the loop's offer)."""
        with self._lock:
            self._replace(policies, revision)

    def offer_read(self, policies: PolicySet, revision: str, began: Judgement | None) -> None:
        """A follower's offer: ``began`` is what ``get`` said when it began reading, so that a slower read of
        an older revision never replaces what the loop offered meanwhile."""
        with self._lock:
            if self._current is began:
                self._replace(policies, revision)

    def _replace(self, policies: PolicySet, revision: str) -> None:
        current = self._current
        if current is None or current.revision != revision or current.policies.digest != policies.digest:
            self._current = Judgement(policies, self._deny_level, revision)

    def follow(
        self, store: InventoryStore, source: GitSource, unit: str, policies_path: str | None, stop: threading.Event,
        *, interval: float = 10.0, on_error: Callable[[str], None] = lambda _: None,
        heads: InventoryHeads | None = None,
    ) -> threading.Thread:  # fmt: skip
        """Follow the unit's last applied commit (and with ``units``, every Unit's, through ``heads``) in a
        thread until ``stop`` (see the module docstring)."""

        def run() -> None:
            while True:
                try:
                    self.follow_once(store, source, unit, policies_path, heads=heads)
                except GitOpsGuardError as error:  # unreachable, or a policy folder that does not load
                    on_error(f"admission: unit {unit}: cannot read the applied revision's policies: {error}")
                if heads is not None:  # an inventory moved: read again at once (at most twice a second)
                    heads.wait(interval)
                    if stop.wait(0.5):
                        return
                elif stop.wait(interval):
                    return

        thread = threading.Thread(target=run, name="admission-policies", daemon=True)
        thread.start()
        return thread

    def follow_once(
        self, store: InventoryStore, source: GitSource, unit: str, policies_path: str | None, *,
        heads: InventoryHeads | None = None,
    ) -> None:  # fmt: skip
        current = self._current
        listed = None
        if self.units is not None:  # the watch holds the root's head too: no read of its inventory per round
            listed = heads.heads() if heads is not None else heads_of(store)
        last = listed[unit].last_applied if listed is not None and unit in listed else store.load(unit).last_applied
        if last is not None and (current is None or current.revision != last):
            source.fetch(last_applied=last)  # the branch must still contain it (forward only)
            self.offer_read(policies_at(source.checkout_of(last), policies_path), last, began=current)
        if self.units is None or listed is None:  # root only, or the inventories are not listed yet
            return
        self.units.follow_once(last, listed)
        self._units_read = True
