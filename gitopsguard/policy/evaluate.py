"""The one evaluator behind every path: the offline check, the gate before apply, the live scan and the
removal of what stays non-compliant. Pure: the clock and any live Namespaces come from the caller."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from gitopsguard.model import KubeObject, Manifest, ObjectKey
from gitopsguard.policy.model import Context, DenyLevel, Finding, Policy, PolicyException, PolicySet, Severity
from gitopsguard.policy.mutate import mutate

MAX_REASON = 500  # characters of an evaluation error kept in a finding (the object's author may choose them)


@dataclass(frozen=True)
class ObjectResult:
    key: ObjectKey
    api_version: str
    origin: str  # file:line
    findings: tuple[Finding, ...]  # what stands, after exceptions
    excepted: tuple[tuple[Finding, PolicyException], ...]  # (finding, the exception that covers it)
    denied: bool


@dataclass(frozen=True)
class Evaluation:
    manifests: tuple[Manifest, ...]  # after mutation: what would be applied
    results: tuple[ObjectResult, ...]
    deny_level: DenyLevel

    @property
    def blocked(self) -> tuple[ObjectResult, ...]:
        return tuple(r for r in self.results if r.denied)

    def blocking(self, result: ObjectResult) -> tuple[Finding, ...]:
        return tuple(f for f in result.findings if f.enforced and self.deny_level.blocks(f.severity))


def evaluate(
    manifests: Sequence[Manifest],
    policies: PolicySet,
    *,
    now: datetime,
    deny_level: DenyLevel,
    namespaces: Mapping[str, KubeObject] | None = None,
) -> Evaluation:
    """Mutate, then validate every manifest; an object is denied when a finding of an enforcing policy
    reaches the deny level and no unexpired exception covers it."""
    mutated = tuple(_mutated(m, policies.policies) for m in manifests)
    known = dict(namespaces or {}) | {m.key.name: m.body for m in mutated if m.key.kind == "Namespace"}
    roles = {
        (m.key.kind, m.key.namespace, m.key.name): m.body.get("rules") or []
        for m in mutated
        if m.key.kind in ("Role", "ClusterRole")
    }
    results = []
    for manifest in mutated:
        ctx = Context(known.get(manifest.key.namespace), roles)
        standing, excepted = judge_object(manifest.body, policies, ctx, now)
        denied = any(f.enforced and deny_level.blocks(f.severity) for f in standing)
        results.append(
            ObjectResult(
                manifest.key, str(manifest.body.get("apiVersion", "")), manifest.origin, standing, excepted, denied
            )
        )
    return Evaluation(mutated, tuple(results), deny_level)


def _mutated(manifest: Manifest, policies: Iterable[Policy]) -> Manifest:
    body = manifest.body
    for policy in policies:
        if policy.mutation is not None and policy.applies_to(body):
            body = mutate(body, policy.mutation)
    return manifest if body is manifest.body else replace(manifest, body=body)


def findings(body: KubeObject, policies: Iterable[Policy], ctx: Context) -> list[Finding]:
    """Every finding of every matching policy on one object (before exceptions)."""
    found = []
    for policy in policies:
        if policy.check is None or not policy.applies_to(body):
            continue
        try:
            hits = policy.check(body, ctx)
        except Exception as error:  # fail closed on this object alone; an escaping error would end the caller
            found.append(_unevaluated(body, policy, error))
            continue
        for hit in hits:
            found.append(
                Finding(
                    policy.name,
                    hit.code or policy.code,
                    hit.control,
                    hit.level,
                    hit.severity or policy.severity,
                    hit.message,
                    hit.path,
                    hit.fix,
                    policy.enforcement == "enforce",
                )
            )
    return found


def _unevaluated(body: KubeObject, policy: Policy, error: Exception) -> Finding:
    """A policy whose check raised on an object: the object is not compliant with it (checks are pure, so
    the same object fails the same way again: nothing to retry). What cannot be judged is taken as the worst
    it could be (HIGH), so an enforced policy denies it at every deny level: fail closed."""
    reason = (str(error) or type(error).__name__)[:MAX_REASON]
    message = f"{ObjectKey.of(body)}: policy {policy.name} cannot be evaluated on it ({reason}); not compliant"
    fix = f"fix the object or the policy at {policy.origin}"
    return Finding(policy.name, policy.code, "", "", Severity.HIGH, message, "", fix, policy.enforcement == "enforce")


def judge_object(
    body: KubeObject, policies: PolicySet, ctx: Context, now: datetime
) -> tuple[tuple[Finding, ...], tuple[tuple[Finding, PolicyException], ...]]:
    """(findings that stand, findings an unexpired exception covers with its description) for one object."""
    found = findings(body, policies.policies, ctx)
    standing, excepted = [], []
    for finding in found:
        cover = next((e for e in policies.exceptions if e.covers(finding, body, now)), None)
        if cover is None:
            standing.append(finding)
        else:
            excepted.append((finding, cover))
    return tuple(standing), tuple(excepted)
