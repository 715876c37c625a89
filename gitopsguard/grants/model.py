"""Values of the temporary-access stage: escalation policies, grants, approval evidence and grant states."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

GRANT_LABEL = "gitopsguard.io/grant"
FUTURE_TOLERANCE = timedelta(minutes=5)  # an approval time later than this is refused
DEFAULT_WINDOW = timedelta(hours=24)  # a grant first seen longer than this after approval is not activated


class State(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    DENIED = "DENIED"


@dataclass(frozen=True)
class RoleRule:
    """A role a policy lets people ask for: where (namespaces) or cluster-wide."""

    kind: str  # Role or ClusterRole
    name: str
    namespaces: frozenset[str] = frozenset()
    cluster_wide: bool = False


@dataclass(frozen=True)
class People:
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def include(self, user: str, groups: frozenset[str]) -> bool:
        return user in self.users or bool(self.groups & groups)


@dataclass(frozen=True)
class EscalationPolicy:
    name: str
    origin: str
    requesters: People
    approvers: People
    approvals: int
    roles: tuple[RoleRule, ...]
    max_duration: timedelta
    reason_required: bool


@dataclass(frozen=True)
class Grant:
    name: str
    path: str  # the file in the repository, e.g. access/grants/alice.yaml
    origin: str  # file:line
    policy: str
    subject_kind: str  # User or Group
    subject: str
    role_kind: str
    role: str
    namespace: str  # "" for cluster-wide
    duration: timedelta
    reason: str
    content: str  # the file's blob id: an edited grant is a different request

    @property
    def id(self) -> str:
        return f"{self.name}@{self.content[:12]}"

    @property
    def scope(self) -> str:
        return f"namespace {self.namespace}" if self.namespace else "cluster-wide"


@dataclass(frozen=True)
class Identity:
    """Who someone is in Kubernetes, as the operator's trust configuration says."""

    user: str
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Approval:
    """What the trusted source says about how a grant reached the branch."""

    requester: Identity | None  # who signed (or authored, on the forge) the request; None when unknown
    approvers: tuple[Identity, ...]  # who approved the merge
    approved_at: datetime | None  # the trusted approval time; None when never approved
    problem: str = ""  # why the evidence does not count (unsigned, pushed without a merge, ...)


@dataclass(frozen=True)
class Decision:
    grant: Grant
    state: State
    reason: str = ""
    approver: str = ""
    start: datetime | None = None
    expires: datetime | None = None


@dataclass(frozen=True)
class Remembered:
    """What must survive restarts about one grant: its state and times, and when we first saw it."""

    state: State
    first_seen: datetime
    start: datetime | None = None
    expires: datetime | None = None
    approver: str = ""
    reason: str = ""
    extra: dict[str, str] = field(default_factory=dict)
