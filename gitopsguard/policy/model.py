"""Values of the policy stage: severities, deny levels, policies, exceptions and findings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from gitopsguard.model import KubeObject


class Severity(StrEnum):
    LOW = "LOW"
    MED = "MED"
    HIGH = "HIGH"

    @property
    def rank(self) -> int:
        return ("LOW", "MED", "HIGH").index(self.value)


class DenyLevel(StrEnum):
    """MagTape's deny level: which severities block. LOW blocks HIGH; MED blocks MED and HIGH; HIGH blocks all."""

    OFF = "OFF"
    LOW = "LOW"
    MED = "MED"
    HIGH = "HIGH"

    def blocks(self, severity: Severity) -> bool:
        lowest_blocked = {"OFF": 3, "LOW": 2, "MED": 1, "HIGH": 0}[self.value]
        return severity.rank >= lowest_blocked


class Enforcement(StrEnum):
    AUDIT = "audit"
    ENFORCE = "enforce"


class LiveAction(StrEnum):
    REPORT = "report"
    NOTIFY = "notify"
    DELETE = "delete"


@dataclass(frozen=True)
class Hit:
    """One problem a check found in one object, before a policy gives it a name and enforcement."""

    code: str
    message: str
    path: str
    severity: Severity | None = None  # None: the policy's severity
    control: str = ""
    level: str = ""
    fix: str = ""


@dataclass(frozen=True)
class Finding:
    policy: str
    code: str
    control: str
    level: str
    severity: Severity
    message: str
    path: str
    fix: str
    enforced: bool  # the policy enforces (a deny level may then block it); else audit only

    def as_json(self) -> dict[str, str]:
        return {
            "policy": self.policy,
            "code": self.code,
            "control": self.control,
            "level": self.level,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.path,
        }


@dataclass(frozen=True)
class Selector:
    """Which objects a policy or exception is about; empty fields match everything."""

    kinds: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict)

    def matches(self, body: KubeObject) -> bool:
        metadata = body.get("metadata") or {}
        if self.kinds and body.get("kind") not in self.kinds:
            return False
        if self.namespaces and (metadata.get("namespace") or "") not in self.namespaces:
            return False
        if self.names and metadata.get("name") not in self.names:
            return False
        labels = metadata.get("labels") or {}
        return all(labels.get(k) == v for k, v in self.labels.items())

    @property
    def empty(self) -> bool:
        return not (self.kinds or self.namespaces or self.names or self.labels)


@dataclass(frozen=True)
class Context:
    """What a check may know besides the object: its Namespace, and the RBAC roles in the same set."""

    namespace: KubeObject | None = None
    roles: Mapping[tuple[str, str, str], list[Any]] = field(default_factory=dict)  # (kind, ns, name) -> rules


Check = Callable[[KubeObject, Context], list[Hit]]


@dataclass(frozen=True)
class Copy:
    """In a default's value: a copy of the object's own field at ``path`` (``{$copy: spec.selector}`` in a
    policy file), so that a default can refer to the object it completes (a Deployment's spread constraint
    selects that Deployment's Pods). A default whose copied field is absent is not set."""

    path: tuple[str, ...]


@dataclass(frozen=True)
class Mutation:
    """Applied before validation, in file order: add labels/annotations when absent, set defaults."""

    add_labels: Mapping[str, str] = field(default_factory=dict)
    add_annotations: Mapping[str, str] = field(default_factory=dict)
    defaults: tuple[tuple[frozenset[str], tuple[str, ...], Any], ...] = ()  # (kinds, field path, value)


@dataclass(frozen=True)
class Policy:
    name: str
    code: str
    severity: Severity
    origin: str  # file:line
    match: Selector
    exclude: Selector | None
    check: Check | None
    mutation: Mutation | None
    enforcement: Enforcement
    live: LiveAction
    grace: timedelta
    owner: str = ""  # the Unit whose own policies (``spec.policiesPath``) it came from; "": the platform's

    def applies_to(self, body: KubeObject) -> bool:
        return self.match.matches(body) and not (self.exclude is not None and self.exclude.matches(body))


@dataclass(frozen=True)
class PolicyException:
    name: str
    origin: str
    policies: frozenset[str]
    controls: frozenset[str]  # control names or check codes; empty: every finding of those policies
    match: Selector
    reason: str
    expires: datetime

    def __str__(self) -> str:
        return f"{self.name} (until {self.expires:%Y-%m-%dT%H:%M:%SZ}): {self.reason}"

    def covers(self, finding: Finding, body: KubeObject, now: datetime) -> bool:
        if now >= self.expires or finding.policy not in self.policies or not self.match.matches(body):
            return False
        return not self.controls or finding.control in self.controls or finding.code in self.controls


@dataclass(frozen=True)
class PolicySet:
    policies: tuple[Policy, ...] = ()
    exceptions: tuple[PolicyException, ...] = ()
    digest: str = ""  # changes whenever any policy or exception file changes: live results must be redone
