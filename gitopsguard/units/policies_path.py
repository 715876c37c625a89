"""Where a Unit's own policies (``spec.policiesPath``) may live.

Whoever may write that folder adds restrictions to the Unit (``policy/compose.py``: never loosens). So it
must be the Unit's team's own folder, and nobody else's: not the root path or the platform's policies (those
are the platform's, which governs every Unit already), and not another Unit's folder, whose team could then
hold this Unit's commits. ``..`` and absolute paths are refused when the spec is read (``units/spec.py``).
A policiesPath that holds the Unit's own folder would read its manifests as policies: refused too. One that
lies inside its own folder is the team's, and allowed (its kustomization decides what is applied).
"""

from __future__ import annotations

from collections.abc import Sequence

from gitopsguard.units.identity import UnitRef
from gitopsguard.units.spec import UnitSpec, normal_path


def misplaced_policies(root_path: str, root_policies: str | None, specs: Sequence[UnitSpec]) -> dict[UnitRef, str]:
    """Why each Unit whose policiesPath is not its team's own folder is refused (its last applied commit
    stays). Each path's ancestors are looked up, not every pair compared."""
    holding: dict[str, list[UnitSpec]] = {}  # a folder -> the Units whose path is it or lies in it
    for spec in specs:
        for folder in _ancestors(normal_path(spec.path)):
            holding.setdefault(folder, []).append(spec)
    at = {normal_path(s.path): s for s in specs}  # a folder -> the Unit whose path it is (overlaps are refused)
    found: dict[UnitRef, str] = {}
    for spec in specs:
        if spec.policies_path is not None:
            why = _problem(spec, normal_path(spec.policies_path), root_path, root_policies, (at, holding))
            if why:
                found[spec.ref] = f"{spec.origin}: {spec.ref}: spec.policiesPath {spec.policies_path} {why}"
    return found


def _problem(
    spec: UnitSpec, path: str, root_path: str, root_policies: str | None,
    folders: tuple[dict[str, UnitSpec], dict[str, list[UnitSpec]]],
) -> str:  # fmt: skip
    mine = "; give the Unit a folder of its team's own, such as one beside its path"
    if _nested(path, root_path):
        return f"overlaps the root path {root_path}, which is the platform's{mine}"
    if root_policies is not None and _nested(path, normal_path(root_policies)):
        return f"overlaps the platform's policies {root_policies}, which govern every Unit already{mine}"
    at, holding = folders
    inside = next((at[a] for a in _ancestors(path) if a in at and at[a].ref != spec.ref), None)
    other = inside or next((o for o in holding.get(path, ()) if o.ref != spec.ref), None)
    if other is not None:
        return f"overlaps {other.ref}'s path {other.path}: its team could hold this Unit's commits{mine}"
    if spec in holding.get(path, ()):
        return f"holds the Unit's own path {spec.path}: its manifests would be read as policies{mine}"
    return ""


def _ancestors(path: str) -> list[str]:
    parts = [] if path == "." else path.split("/")
    return ["."] + ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _nested(one: str, other: str) -> bool:
    a, b = normal_path(one), normal_path(other)
    return "." in (a, b) or a == b or a.startswith(b + "/") or b.startswith(a + "/")
