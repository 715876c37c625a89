"""Who someone is, as the operator's trust file says: never taken from text in the repository."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """Who someone is in Kubernetes, as the operator's trust configuration says."""

    user: str
    groups: frozenset[str] = frozenset()
