"""A Unit's own policies (``spec.policiesPath``) on top of the platform's (the root's ``--policies-path``):
they can only add restrictions. Pure.

Whoever writes a team's policy folder is its team, not the platform, so nothing in it may let through what
the platform's policies alone refuse. Every way a policy file can loosen is refused, naming the file and line,
and the Unit's revision is refused whole (its last applied commit stays):

- a ``PolicyException``: it covers findings, so it could cover the platform's;
- a mutation (``mutate``): it runs before every validation, so it could add the label a platform policy
  excludes, or fill in a field a platform check then reads as the team chose;
- a policy named as one of the platform's: however it is meant, it reads as replacing or relaxing that one.

What stays is checks (``builtin``, ``validations``), enforced or audit-only, at any severity, with their own
``match``, ``exclude`` and ``live`` settings: each only adds findings. They are renamed ``UNIT/NAME`` (and
marked with their Unit, ``Policy.owner``), so two Units' policies never meet under one name where both govern
(the live scan of a namespace two Units share). The deny level stays the operator's.

``Governance`` is what the live scan and admission judge by: the platform's policies everywhere, plus in each
Unit's target namespace that Unit's own (every such Unit's, where several share one). A namespace whose Unit's
applied policies could not be read yet is ``unknown``: admission refuses there rather than judge by less.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from gitopsguard.errors import PolicyError
from gitopsguard.policy.model import Policy, PolicySet

_WHY = "a Unit's own policies can only add restrictions to the platform's"


def restricting(root: PolicySet, own: PolicySet, *, unit: str) -> PolicySet:
    """The platform's policies and exceptions, then ``own`` renamed ``UNIT/NAME``; raises PolicyError, naming
    the first file and line (by name) that would loosen the platform's policies, and how many more there are."""
    problems = sorted(_loosening(root, own), key=_by_place)
    if problems:
        more = f" ({len(problems) - 1} more in the Unit's policies)" if len(problems) > 1 else ""
        raise PolicyError(f"{problems[0]}; Unit {unit}'s revision is refused whole{more}")
    added = tuple(replace(p, name=f"{unit}/{p.name}", owner=unit) for p in own.policies)
    digest = _digest(root.digest, f"{unit}\0{own.digest}")
    return PolicySet(root.policies + added, root.exceptions, digest)


def own_part(policies: PolicySet) -> tuple[Policy, ...]:
    """The policies a Unit added to the platform's in ``policies`` (a set ``restricting`` made)."""
    return tuple(p for p in policies.policies if p.owner)


def _loosening(root: PolicySet, own: PolicySet) -> Iterable[str]:
    platform = {p.name: p for p in root.policies}
    for exception in own.exceptions:
        yield (
            f"{exception.origin}: PolicyException {exception.name}: {_WHY}, and an exception lifts them; "
            "ask the platform to add it to its own policies"
        )
    for policy in own.policies:
        if policy.mutation is not None:
            yield (
                f"{policy.origin}: policy {policy.name} mutates objects: {_WHY}, and a mutation runs "
                "before every check (it could add the label a platform policy excludes); ask the platform"
            )
        if policy.name in platform:
            yield (
                f"{policy.origin}: policy {policy.name} is the platform's already ({platform[policy.name].origin}): "
                f"{_WHY}, never replace or relax one; give yours another name"
            )


def _by_place(problem: str) -> tuple[str, int, str]:
    """File, then line as a number (``a.yaml:10`` after ``a.yaml:9``)."""
    where = problem.split(": ", 1)[0]
    name, _, line = where.rpartition(":")
    return (name, int(line), problem) if line.isdigit() else (where, 0, problem)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Governance:
    """The policies that govern each namespace: ``root`` (the platform's) everywhere; where Units target a
    namespace, ``root`` plus what each of them added (``by_namespace``). ``unknown``: namespaces a Unit targets
    whose applied policies are not known yet (just started, its commit unreadable), each with the Unit's id."""

    root: PolicySet
    by_namespace: Mapping[str, PolicySet] = field(default_factory=dict)
    digest: str = ""  # changes whenever the policies of any namespace change
    unknown: Mapping[str, str] = field(default_factory=dict)

    def for_namespace(self, namespace: str) -> PolicySet:
        return self.by_namespace.get(namespace, self.root)

    def every_policy(self) -> tuple[Policy, ...]:
        """The root's policies, then each Unit's added ones once (what the webhooks must be sent kinds for)."""
        seen = {p.name for p in self.root.policies}
        added = {p.name: p for s in self.by_namespace.values() for p in s.policies if p.name not in seen}
        return self.root.policies + tuple(added[name] for name in sorted(added))


def governance(
    root: PolicySet, added: Iterable[tuple[str, str, PolicySet]], unknown: Mapping[str, str] | None = None
) -> Governance:
    """``added``: (Unit, its target namespace, the set it was gated by, from ``restricting``) for each Unit.
    Only what each Unit added is taken from its set; the platform's part is ``root``, as applied now.
    ``unknown``: target namespace -> the Unit whose applied policies are not known yet."""
    per_namespace: dict[str, list[tuple[str, PolicySet]]] = {}
    for unit, namespace, policies in added:
        if own_part(policies):
            per_namespace.setdefault(namespace, []).append((unit, policies))
    by_namespace = {}
    for namespace, units in per_namespace.items():
        units.sort(key=lambda pair: pair[0])
        extra = tuple(p for _, policies in units for p in own_part(policies))
        digest = _digest(root.digest, *(f"{u}\0{p.digest}" for u, p in units))
        by_namespace[namespace] = PolicySet(root.policies + extra, root.exceptions, digest)
    pending = dict(sorted((unknown or {}).items()))
    parts = (*(f"{n}\0{s.digest}" for n, s in sorted(by_namespace.items())),
             *(f"?{n}\0{u}" for n, u in pending.items()))  # fmt: skip
    overall = _digest(root.digest, *parts)
    return Governance(root, by_namespace, overall if parts else root.digest, pending)
