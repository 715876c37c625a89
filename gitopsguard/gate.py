"""The policy gate between render and apply: load the revision's own ``policies/``, mutate, validate, and
refuse the whole revision when anything is denied. A policy set that does not load is refused whole too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from gitopsguard.errors import PolicyBlockedError
from gitopsguard.model import KubeObject, Manifest
from gitopsguard.policy import DenyLevel, Evaluation, PolicySet, evaluate, load_policies


class RevisionBlockedError(PolicyBlockedError):
    """The gate refused a revision; ``evaluation`` holds every verdict, for reports and announcements."""

    def __init__(self, summary: str, problems: tuple[str, ...], evaluation: Evaluation) -> None:
        super().__init__(summary, problems)
        self.evaluation = evaluation


def policies_at(checkout: Path, path: str | None) -> PolicySet:
    """The policy set in the checkout (none when the unit has no policy folder)."""
    if path is None or not (checkout / path).is_dir():
        return PolicySet()
    return load_policies(checkout / path, root=checkout)


def gate(
    manifests: Sequence[Manifest], policies: PolicySet, *, deny_level: DenyLevel, now: datetime, commit: str,
    namespaces: Mapping[str, KubeObject],
) -> Evaluation:  # fmt: skip
    """The evaluation of a revision; raises PolicyBlockedError naming each denied object and finding."""
    evaluation = evaluate(manifests, policies, now=now, deny_level=deny_level, namespaces=namespaces)
    if evaluation.blocked:
        problems = tuple(
            f"{r.origin}: {r.key}: {f.code} {f.severity.value} {f.message} (policy {f.policy}"
            + (f"; fix: {f.fix})" if f.fix else ")")
            for r in evaluation.blocked for f in evaluation.blocking(r)
        )  # fmt: skip
        raise RevisionBlockedError(
            f"revision {commit[:12]} is blocked by policy: {len(evaluation.blocked)} objects denied at deny level "
            f"{deny_level.value}; nothing from it was applied. Fix the objects, or add a PolicyException.",
            problems,
            evaluation,
        )
    return evaluation
