"""The policies admission judges by: those of the revision the controller last applied, on every replica.

The replica that leads offers each revision's policies as its controller applies them. Every replica also
follows the unit's inventory (the ConfigMap in the controller's namespace, which names the last applied
commit) and reads that commit's ``policies/`` from its own clone, so replicas that do not lead, and a
restarted leader before its first pass, judge by the same policies. Until one is known, ``get`` is None
and admission denies (fail closed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from gitopsguard.admission.review import Judgement
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.gate import policies_at
from gitopsguard.policy import DenyLevel, PolicySet
from gitopsguard.source import GitSource


class AppliedPolicies:
    def __init__(self, deny_level: DenyLevel) -> None:
        self._deny_level = deny_level
        self._current: Judgement | None = None  # replaced whole: a reader sees the old or the new, never a mix
        self._lock = threading.Lock()

    def get(self) -> Judgement | None:
        return self._current

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
    ) -> threading.Thread:  # fmt: skip
        """Follow the unit's last applied commit in a thread until ``stop`` (see the module docstring)."""

        def run() -> None:
            while True:
                try:
                    self.follow_once(store, source, unit, policies_path)
                except GitOpsGuardError as error:  # unreachable, or a policy folder that does not load
                    on_error(f"admission: unit {unit}: cannot read the applied revision's policies: {error}")
                if stop.wait(interval):
                    return

        thread = threading.Thread(target=run, name="admission-policies", daemon=True)
        thread.start()
        return thread

    def follow_once(self, store: InventoryStore, source: GitSource, unit: str, policies_path: str | None) -> None:
        current = self._current
        last = store.load(unit).last_applied
        if last is None or (current is not None and current.revision == last):
            return
        source.fetch(last_applied=last)  # the branch must still contain it (forward only)
        self.offer_read(policies_at(source.checkout_of(last), policies_path), last, began=current)
