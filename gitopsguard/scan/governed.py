"""Which Unit's own policies govern which namespace, for the live scan of ``run --root``: the Units loop
(``fleet.py``) tells it each pass, the scan's thread reads a ``Governance`` (``policy/compose.py``).

A Unit's own policies govern its target namespace (``targetNamespace``, else its own) as it last applied them:
a refused revision changes nothing here, as it changes nothing in the cluster. Where several Units target one
namespace, all of their policies add to the platform's there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.gate import policies_at
from gitopsguard.policy import PolicySet
from gitopsguard.policy.compose import Governance, governance, own_part
from gitopsguard.reconcile import Unit
from gitopsguard.source import GitSource


class Governed:
    """What each Unit's last applied revision added to the platform's policies, and where. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._added: dict[str, tuple[str, PolicySet]] = {}  # unit id -> (target namespace, its policies)
        self._made: tuple[PolicySet, int, Governance] | None = None  # the last answer, until anything changes
        self._version = 0

    def wants(self, unit: str) -> bool:
        """Whether the Unit's policies are unknown here yet (just started): its next pass should give them."""
        with self._lock:
            return unit not in self._added

    def passed(self, unit: str, namespace: str, policies: PolicySet | None, *, failed: bool) -> None:
        """A pass of ``unit``: with the policies of the revision it applied (None at rest: unchanged)."""
        if failed or policies is None:
            return
        entry = (namespace, PolicySet(own_part(policies), (), policies.digest))
        with self._lock:
            before = self._added.get(unit)
            if before is None or (before[0], before[1].digest) != (namespace, policies.digest):
                self._added[unit] = entry  # compared by digest: the same files load into new check functions
                self._version += 1

    def keep_only(self, units: Iterable[str]) -> None:
        """Forget the Units the root no longer declares."""
        keep = set(units)
        with self._lock:
            gone = [u for u in self._added if u not in keep]
            for unit in gone:
                del self._added[unit]
            self._version += bool(gone)

    def governance(self, root: PolicySet | None) -> Governance | None:
        """The platform's policies ``root`` (None until the root applied a revision), and each Unit's own where
        it governs; the same object while nothing changed."""
        if root is None:
            return None
        with self._lock:
            if self._made is not None and self._made[0] is root and self._made[1] == self._version:
                return self._made[2]
            added = [(unit, namespace, policies) for unit, (namespace, policies) in sorted(self._added.items())]
            made = governance(root, added)
            self._made = (root, self._version, made)
            return made


def applied_policies(store: InventoryStore, source: GitSource, unit: Unit) -> PolicySet | None:
    """``unit``'s policies as its last applied commit holds them: for a loop that restarted and whose first pass
    of the Unit was refused, so that the live scan keeps judging its namespace by them (None when it applied
    nothing yet, or that commit cannot be read now: the next pass tries again)."""
    try:
        last = store.load(unit.name).last_applied
        if last is None:
            return None
        return policies_at(source.checkout_of(last), unit.policies_path, own=unit.own_policies_path, unit=unit.name)
    except GitOpsGuardError:
        return None
