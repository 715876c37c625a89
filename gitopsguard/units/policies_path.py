"""Where a Unit's own policies (``spec.policiesPath``) may live.

Whoever may write that folder adds restrictions to the Unit (``policy/compose.py``: never loosens). So it
must be the Unit's team's own folder, and nobody else's: not the root path or the platform's policies (those
are the platform's, which governs every Unit already), and not another Unit's folder, whose team could then
hold this Unit's commits. ``..`` and absolute paths are refused when the spec is read (``units/spec.py``).
A policiesPath that holds the Unit's own folder would read its manifests as policies: refused too. One that
lies inside its own folder is the team's, and allowed (its kustomization decides what is applied).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from gitopsguard.units.identity import UnitRef
from gitopsguard.units.spec import UnitSpec, normal_path


def misplaced_policies(root_path: str, root_policies: str | None, specs: Sequence[UnitSpec]) -> dict[UnitRef, str]:
    """Why each Unit whose policiesPath is not its team's own folder is refused (its last applied commit
    stays). Each round asks: the answer is kept for the last few sets of Units (1,000 of them cost tens of
    milliseconds to check, and a thousandth of that to look up)."""
    if all(spec.policies_path is None for spec in specs):
        return {}
    units = tuple(_Placed(s.ref, s.origin, normal_path(s.path), s.policies_path) for s in specs)
    root_policies = None if root_policies is None else normal_path(root_policies)
    return dict(_misplaced(normal_path(root_path), root_policies, units))


@dataclass(frozen=True)
class _Placed:
    ref: UnitRef
    origin: str
    path: str  # normal
    policies_path: str | None  # as written


@functools.lru_cache(maxsize=4)
def _misplaced(
    root_path: str, root_policies: str | None, units: tuple[_Placed, ...]
) -> tuple[tuple[UnitRef, str], ...]:
    at: dict[str, _Placed] = {}  # a folder -> the Unit whose path it is (overlapping paths are refused)
    holding: dict[str, list[_Placed]] = {}  # a folder -> the Units whose path is it or lies in it
    for unit in units:
        at[unit.path] = unit
        for folder in _ancestors(unit.path):
            holding.setdefault(folder, []).append(unit)
    found = []
    for unit in units:
        if unit.policies_path is not None:
            why = _problem(unit, normal_path(unit.policies_path), (root_path, root_policies), (at, holding))
            if why:
                found.append((unit.ref, f"{unit.origin}: {unit.ref}: spec.policiesPath {unit.policies_path} {why}"))
    return tuple(found)


def _problem(
    unit: _Placed, path: str, platform: tuple[str, str | None],
    folders: tuple[dict[str, _Placed], dict[str, list[_Placed]]],
) -> str:  # fmt: skip
    mine = "; give the Unit a folder of its team's own, such as one beside its path"
    root_path, root_policies = platform
    if _nested(path, root_path):
        return f"overlaps the root path {root_path}, which is the platform's{mine}"
    if root_policies is not None and _nested(path, root_policies):
        return f"overlaps the platform's policies {root_policies}, which govern every Unit already{mine}"
    at, holding = folders
    inside = next((at[a] for a in _ancestors(path) if a in at and at[a].ref != unit.ref), None)
    held = holding.get(path, [])
    other = inside or next((o for o in held if o.ref != unit.ref), None)
    if other is not None:
        return f"overlaps {other.ref}'s path {other.path}: its team could hold this Unit's commits{mine}"
    if any(o.ref == unit.ref for o in held):
        return f"holds the Unit's own path {unit.path}: its manifests would be read as policies{mine}"
    return ""


def _ancestors(path: str) -> list[str]:
    """``teams/a/b``: ``.``, ``teams``, ``teams/a``, ``teams/a/b`` (the folders that hold it, and itself)."""
    parts = [] if path == "." else path.split("/")
    return ["."] + ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _nested(a: str, b: str) -> bool:
    """Whether either normal path holds the other (or they are the same folder)."""
    return "." in (a, b) or a == b or a.startswith(b + "/") or b.startswith(a + "/")
