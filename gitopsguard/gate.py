"""The policy gate between render and apply: load the revision's own ``policies/``, mutate, validate, and
refuse the whole revision when anything is denied. A policy set that does not load is refused whole too.

Objects are also judged under their Namespace's ``pod-security.kubernetes.io`` labels, as Kubernetes Pod
Security Admission would judge them at apply (``policy/podsecurity_revision.py``): a Pod the ``enforce``
level refuses blocks the revision at any deny level; workload templates get warnings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from gitopsguard.errors import PolicyBlockedError, PolicyError
from gitopsguard.model import KubeObject, Manifest
from gitopsguard.policy import DenyLevel, Evaluation, PolicySet, evaluate, load_policies
from gitopsguard.policy.compose import restricting
from gitopsguard.policy.load import load_own_policies
from gitopsguard.policy.podsecurity import NO_EXEMPTIONS, Exemptions
from gitopsguard.policy.podsecurity_revision import LABELS_HINT, enforced_by_labels, with_pod_security


class RevisionBlockedError(PolicyBlockedError):
    """The gate refused a revision; ``evaluation`` holds every verdict, for reports and announcements."""

    def __init__(self, summary: str, problems: tuple[str, ...], evaluation: Evaluation) -> None:
        super().__init__(summary, problems)
        self.evaluation = evaluation


# What a policy, pack or mutation raises on an object of a shape it did not expect (a string where a map
# belongs). Render checks the shapes every stage relies on; this is the gate's own wall behind that check:
# the revision is refused (fail closed) with the object named, never let through or reported as a crash.
_SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError, RecursionError)


def policies_at(checkout: Path, path: str | None, *, own: str | None = None, unit: str = "") -> PolicySet:
    """The policy set in the checkout (none when the unit has no policy folder); with ``own``, a Unit's own
    policiesPath, those added to it, which may only restrict (``policy/compose.py``)."""
    root = load_policies(checkout / path, root=checkout) if path is not None and (checkout / path).is_dir() else None
    if own is None:
        return root or PolicySet()
    return restricting(root or PolicySet(), load_own_policies(checkout, own), unit=unit)


def gate(
    manifests: Sequence[Manifest], policies: PolicySet, *, deny_level: DenyLevel, now: datetime, commit: str,
    namespaces: Mapping[str, KubeObject], exemptions: Exemptions = NO_EXEMPTIONS,
) -> Evaluation:  # fmt: skip
    """The evaluation of a revision; raises PolicyBlockedError naming each denied object and finding, and
    PolicyError naming the object when the policies cannot judge one at all. ``namespaces`` are the live
    Namespaces (their labels count where the revision does not define the Namespace); ``exemptions`` are the
    operator's Pod Security exemptions."""
    try:
        evaluation = evaluate(manifests, policies, now=now, deny_level=deny_level, namespaces=namespaces)
    except _SHAPE_ERRORS as error:
        raise _unjudgeable(manifests, policies, now, deny_level, commit, error) from error
    evaluation = with_pod_security(evaluation, namespaces, exemptions)
    if evaluation.blocked:
        problems = tuple(
            f"{r.origin}: {r.key}: {f.code} {f.severity.value} {f.message} (policy {f.policy}"
            + (f"; fix: {f.fix})" if f.fix else ")")
            for r in evaluation.blocked for f in evaluation.blocking(r)
        )  # fmt: skip
        raise RevisionBlockedError(
            f"revision {commit[:12]} is blocked by policy: {len(evaluation.blocked)} objects denied at deny level "
            f"{deny_level.value}; nothing from it was applied. Fix the objects, or add a PolicyException."
            + (f" {LABELS_HINT}" if any(enforced_by_labels(f) for r in evaluation.blocked for f in r.findings) else ""),
            problems,
            evaluation,
        )
    return evaluation


def _unjudgeable(
    manifests: Sequence[Manifest], policies: PolicySet, now: datetime, deny_level: DenyLevel, commit: str,
    error: Exception,
) -> PolicyError:  # fmt: skip
    """A PolicyError naming the first object the policies fail on when judged alone (else the revision)."""
    for manifest in manifests:
        try:
            evaluate([manifest], policies, now=now, deny_level=deny_level, namespaces={})
        except _SHAPE_ERRORS as alone:
            return PolicyError(
                f"{manifest.origin}: {manifest.key}: the policies cannot judge this object "
                f"({type(alone).__name__}: {str(alone)[:200]}); fix the object's shape. Nothing from revision "
                f"{commit[:12]} was applied."
            )
    return PolicyError(
        f"revision {commit[:12]}: the policies cannot judge it ({type(error).__name__}: {str(error)[:200]}); "
        "nothing from it was applied."
    )
