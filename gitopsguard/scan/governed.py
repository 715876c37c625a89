"""Which Unit's own policies govern which namespace, for the live scan and admission of ``run --root``: the Units
loop (``fleet.py``) tells it each pass, every replica's follower of the Units' inventories
(``scan/following.py``) tells it what each Unit last applied, and the scan's thread and each admission request
read a ``Governance`` (``policy/compose.py``), made once per change.

A Unit's own policies govern its target namespace (``targetNamespace``, else its own) as it last applied them:
a refused revision changes nothing here, as it changes nothing in the cluster. Where several Units target one
namespace, all of their policies add to the platform's there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace

from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.gate import policies_at
from gitopsguard.policy import PolicySet
from gitopsguard.policy.compose import Governance, governance, own_part
from gitopsguard.reconcile import Unit
from gitopsguard.source import GitSource


@dataclass(frozen=True)
class Applied:
    """What one Unit last applied, as far as policies go: where (its target namespace), at which commit and
    with which settings (``Inventory.applied_as``), and what its own policies added (None: not readable yet)."""

    namespace: str
    policies: PolicySet | None
    commit: str = ""
    settings: str = ""


class Governed:
    """What each Unit's last applied revision added to the platform's policies, and where. Thread-safe. Fed by
    the Units loop after each pass (``passed``) and, on every replica, by the follower of the Units'
    inventories (``scan/following.py``: ``settle``, ``unreadable``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._added: dict[str, Applied] = {}  # unit id -> what it last applied
        self._made: tuple[PolicySet, int, Governance] | None = None  # the last answer, until anything changes
        self._version = 0

    def wants(self, unit: str) -> bool:
        """Whether the Unit's policies are unknown here yet (just started): its next pass should give them."""
        with self._lock:
            entry = self._added.get(unit)
            return entry is None or entry.policies is None

    def passed(self, unit: str, namespace: str, policies: PolicySet | None, *, failed: bool, commit: str = "") -> None:
        """A pass of ``unit``: with the policies of the revision it applied (None at rest: unchanged)."""
        if failed or policies is None:
            return
        entry = Applied(namespace, PolicySet(own_part(policies), (), policies.digest), commit)
        with self._lock:
            self._put(unit, entry)

    def known(self, unit: str) -> Applied | None:
        """What is known of ``unit`` now: a follower's read replaces it only if it is still this (``settle``)."""
        with self._lock:
            return self._added.get(unit)

    def settle(self, unit: str, entry: Applied, *, began: Applied | None) -> None:
        """A follower's read of ``unit``'s applied policies: taken only if nothing changed since it began (a
        pass of the loop meanwhile may have offered a newer commit's)."""
        own = entry.policies
        kept = replace(entry, policies=None if own is None else PolicySet(own_part(own), (), own.digest))
        with self._lock:
            if self._added.get(unit) is began:
                self._put(unit, kept)

    def unreadable(self, unit: str, namespace: str) -> None:
        """``unit`` governs ``namespace`` but its applied policies cannot be read: its last known ones stay;
        with none known, the namespace is ``unknown`` (admission refuses there)."""
        with self._lock:
            if unit not in self._added:
                self._put(unit, Applied(namespace, None))

    def _put(self, unit: str, entry: Applied) -> None:
        before = self._added.get(unit)
        if before is None or _compared(before) != _compared(entry):
            self._added[unit] = entry  # compared by digest: the same files load into new check functions
            self._version += 1
        else:  # the same policies: only what they were read at moves (a follower then need not read them again)
            merged = replace(before, commit=entry.commit or before.commit, settings=entry.settings or before.settings)
            if merged != before:
                self._added[unit] = merged

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
            entries = sorted(self._added.items())
            added = [(u, e.namespace, e.policies) for u, e in entries if e.policies is not None]
            unknown = {e.namespace: u for u, e in reversed(entries) if e.policies is None}
            made = governance(root, added, unknown)
            self._made = (root, self._version, made)
            return made


def _compared(entry: Applied) -> tuple[str, str | None]:
    return entry.namespace, None if entry.policies is None else entry.policies.digest


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
