"""``dependsOn`` as a graph: the order Units are applied in, and which wait for which.

The order is stable and deterministic (dependencies first, ties by namespace and name), so two replicas or
two runs agree. A Unit in a cycle, naming a Unit that does not exist, or depending on one of those is
refused by name; the rest are ordered as usual: one team's mistake does not stop the others.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gitopsguard.units.identity import UnitRef
from gitopsguard.units.spec import UnitSpec


@dataclass(frozen=True)
class Order:
    """``order``: every Unit that can be served, each after its dependencies. ``refused``: the others, and why."""

    order: tuple[UnitRef, ...]
    refused: Mapping[UnitRef, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Readiness:
    """What a dependent needs to know of a Unit: whether it is Ready for its latest spec, and if not, why."""

    ready: bool
    reason: str = ""
    message: str = ""


def apply_order(units: Sequence[UnitSpec]) -> Order:
    """Dependencies first; Units in a cycle, with a missing dependency, or behind such a Unit, refused."""
    known = {unit.ref: unit for unit in units}
    refused: dict[UnitRef, str] = {}
    for unit in sorted(units, key=lambda u: u.ref):
        missing = [ref for ref in unit.depends_on if ref not in known]
        if missing:
            refused[unit.ref] = (f"{unit.ref}: dependsOn {missing[0]}: no such Unit in the root path; add it or "
                                 "remove the dependency")  # fmt: skip
    for cycle in _cycles(known):
        path = " -> ".join(str(ref) for ref in (*cycle, cycle[0]))
        for ref in cycle:
            refused.setdefault(ref, f"{ref}: dependsOn forms a cycle: {path}; remove one of these dependencies")
    _refuse_dependents(known, refused)
    return Order(_topological(known, set(refused)), refused)


def blocked(units: Iterable[UnitSpec], ready: Mapping[UnitRef, Readiness]) -> dict[UnitRef, str]:
    """The Units that must wait this round, each with the first dependency it waits for and why."""
    waiting: dict[UnitRef, str] = {}
    for unit in units:
        for dependency in unit.depends_on:
            state = ready.get(dependency)
            if state is None:
                waiting[unit.ref] = f"waiting for {dependency}: it has no status yet (not reconciled)"
            elif not state.ready:
                # another namespace's message names its objects and what the server said of them: the reason only
                told = state.message and dependency.namespace == unit.ref.namespace
                why = f"{state.reason}: {state.message}" if told else state.reason or "unknown"
                waiting[unit.ref] = f"waiting for {dependency}: not Ready: {why}"
            else:
                continue
            break
    return waiting


def _topological(known: Mapping[UnitRef, UnitSpec], refused: set[UnitRef]) -> tuple[UnitRef, ...]:
    """Kahn's algorithm over the Units not refused, always taking the smallest ready ref next."""
    pending = {ref: set(known[ref].depends_on) for ref in known if ref not in refused}
    dependents: dict[UnitRef, list[UnitRef]] = {ref: [] for ref in pending}
    for ref, needs in pending.items():
        for dependency in needs:
            dependents[dependency].append(ref)
    free = [ref for ref, needs in pending.items() if not needs]
    heapq.heapify(free)
    order: list[UnitRef] = []
    while free:
        ref = heapq.heappop(free)
        order.append(ref)
        for dependent in dependents[ref]:
            pending[dependent].discard(ref)
            if not pending[dependent]:
                heapq.heappush(free, dependent)
    return tuple(order)


def _cycles(known: Mapping[UnitRef, UnitSpec]) -> list[tuple[UnitRef, ...]]:
    """Each cycle of the graph once (as found by a depth-first walk in ref order), without recursion: a
    thousand Units in a chain must not reach Python's recursion limit."""
    state: dict[UnitRef, int] = {}  # 1: on the current path, 2: done
    found: list[tuple[UnitRef, ...]] = []
    for start in sorted(known):
        if state.get(start):
            continue
        path: list[UnitRef] = [start]
        stack = [iter(sorted(d for d in known[start].depends_on if d in known))]
        state[start] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                found.append(tuple(path[path.index(step) :]))
            elif not state.get(step):
                state[step] = 1
                path.append(step)
                stack.append(iter(sorted(d for d in known[step].depends_on if d in known)))
    return found


def _refuse_dependents(known: Mapping[UnitRef, UnitSpec], refused: dict[UnitRef, str]) -> None:
    """A Unit behind a refused one is refused too, naming the dependency it waits for and the first cause
    (not the whole chain: a chain of a thousand Units would make messages of a million characters)."""
    dependents: dict[UnitRef, list[UnitRef]] = {}
    for ref in sorted(known):
        for dependency in known[ref].depends_on:
            dependents.setdefault(dependency, []).append(ref)
    cause = dict(refused)
    queue = deque(sorted(refused))
    while queue:
        behind = queue.popleft()
        for ref in dependents.get(behind, ()):
            if ref not in refused:
                cause[ref] = cause[behind]
                refused[ref] = f"{ref}: dependsOn {behind}, which cannot be served: {cause[behind]}"
                queue.append(ref)
