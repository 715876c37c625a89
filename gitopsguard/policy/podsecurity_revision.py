"""Pod Security Admission on a whole revision, for the Git gate and ``gitopsguard check``: every object is
judged under the ``pod-security.kubernetes.io`` labels of its Namespace, as the revision defines it (else as
the cluster has it, when the caller knows), exactly as the API server's Pod Security Admission would judge
the object when it is applied. A Pod the namespace's ``enforce`` level refuses blocks the revision whatever
the deny level (the API server would refuse it mid-apply); workloads' templates get non-blocking findings,
as PSA's warnings; a Namespace with invalid labels blocks, as PSA refuses it, and so does a Pod the controls
cannot read (a string where a map belongs), with the object named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from gitopsguard.model import KubeObject, Manifest
from gitopsguard.policy.evaluate import Evaluation, ObjectResult
from gitopsguard.policy.model import Finding
from gitopsguard.policy.podsecurity import NO_EXEMPTIONS, PREFIX, Exemptions, labels_of, pod_security

LABELS_HINT = (
    "Findings of pod-security.kubernetes.io labels take no PolicyException (as in Kubernetes): fix the "
    "object, or change its Namespace's labels."
)


def enforced_by_labels(finding: Finding) -> bool:
    """A finding of a namespace's Pod Security ``enforce`` level (or of its invalid labels)."""
    return finding.enforced and finding.policy.startswith(PREFIX)


@dataclass(frozen=True)
class LabelledEvaluation(Evaluation):
    """An evaluation that also holds the namespace labels' verdicts; theirs block at any deny level."""

    def blocking(self, result: ObjectResult) -> tuple[Finding, ...]:
        return tuple(
            f for f in result.findings if f.enforced and (self.deny_level.blocks(f.severity) or enforced_by_labels(f))
        )


def with_pod_security(
    evaluation: Evaluation, namespaces: Mapping[str, KubeObject] | None = None, exemptions: Exemptions = NO_EXEMPTIONS
) -> LabelledEvaluation:
    """``evaluation`` with each object's Pod Security verdict added to its findings: the revision's own
    Namespaces first, then ``namespaces`` (live ones, by name)."""
    known = dict(namespaces or {}) | {m.key.name: m.body for m in evaluation.manifests if m.key.kind == "Namespace"}
    results = []
    for manifest, result in zip(evaluation.manifests, evaluation.results, strict=True):
        extra = _verdict(manifest, known, exemptions)
        denied = result.denied or any(enforced_by_labels(f) for f in extra)
        results.append(replace(result, findings=result.findings + extra, denied=denied) if extra else result)
    return LabelledEvaluation(evaluation.manifests, tuple(results), evaluation.deny_level)


def _verdict(manifest: Manifest, known: Mapping[str, KubeObject], exemptions: Exemptions) -> tuple[Finding, ...]:
    key = manifest.key
    namespace = key.name if key.kind == "Namespace" else key.namespace
    labels = labels_of(known.get(namespace)) if key.kind != "Namespace" else {}
    verdict = pod_security(manifest.body, labels, namespace=namespace, exemptions=exemptions)
    return verdict.enforce + verdict.warn
