"""Showing a planned change as a unified diff, with Secret values masked (pure)."""

from __future__ import annotations

import copy
import difflib

import yaml

from gitopsguard.model import KubeObject
from gitopsguard.plan.diff import normalized

MASK = "***"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def masked_pair(live: KubeObject | None, desired: KubeObject) -> tuple[KubeObject | None, KubeObject]:
    """Copies of both with every Secret value replaced: equal values by ***, changed ones marked."""
    if desired.get("kind") != "Secret":
        return live, desired
    live_copy, desired_copy = copy.deepcopy(live), copy.deepcopy(desired)
    for field in ("data", "stringData"):
        old = (live_copy or {}).get(field) or {}
        new = desired_copy.get(field) or {}
        for key in set(old) | set(new):
            changed = old.get(key) != new.get(key)
            if key in old:
                old[key] = f"{MASK} (old value)" if changed else MASK
            if key in new:
                new[key] = f"{MASK} (new value)" if changed else MASK
    for body in (live_copy, desired_copy):  # client-side kubectl keeps the whole Secret in an annotation
        annotations = ((body or {}).get("metadata") or {}).get("annotations") or {}
        if LAST_APPLIED in annotations:
            annotations[LAST_APPLIED] = MASK
    return live_copy, desired_copy


def unified(title: str, origin: str, live: KubeObject | None, result: KubeObject) -> str:
    """The diff from the live object to what the server would store, both normalised and masked."""
    live, result = masked_pair(live, result)
    before = _yaml(normalized(live)) if live is not None else []
    after = _yaml(normalized(result))
    lines = difflib.unified_diff(before, after, fromfile=f"live {title}", tofile=f"git {title} ({origin})")
    return "".join(lines)


def _yaml(body: KubeObject) -> list[str]:
    return yaml.safe_dump(body, sort_keys=True, default_flow_style=False).splitlines(keepends=True)
