"""Values of the temporary-access stage: escalation policies, grants, approval evidence and grant states."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from gitopsguard.evidence.identity import Identity as Identity

GRANT_LABEL = "gitopsguard.io/grant"
# Which keeper made a binding: each keeper sweeps only its own (and, unmarked, only names it makes), so two
# keepers (two `run` processes with grants) never delete each other's access.
KEEPER_LABEL = "gitopsguard.io/grant-keeper"
DEFAULT_KEEPER = "gitopsguard-grants"  # the cluster's keeper; also the name of its state ConfigMap
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
    content: str  # the file's full blob id: an edited grant is a different request
    index: int = 0  # which document of the file it is (from 0)

    @property
    def id(self) -> str:
        """What the grant is: this document of this file at this exact content. The full blob id (a prefix can be
        made to collide), the path (a copy elsewhere is another, unreviewed request) and the index (another
        document of the same file is another grant). The blob id has a fixed length, so the text is unambiguous."""
        return f"{self.content}:{self.index}:{self.path}"

    @property
    def scope(self) -> str:
        return f"namespace {self.namespace}" if self.namespace else "cluster-wide"


@dataclass(frozen=True)
class Approval:
    """What the trusted source says about how a grant reached the branch."""

    requester: Identity | None  # who signed (or authored, on the forge) the request; None when unknown
    approvers: tuple[Identity, ...]  # who approved the merge
    approved_at: datetime | None  # the trusted approval time; None when never approved
    problem: str = ""  # why the evidence does not count (unsigned, pushed without a merge, ...)
    merge: str = ""  # the commit that brought the blob onto the branch (the approving merge), where known


@dataclass(frozen=True)
class Decision:
    grant: Grant
    state: State
    reason: str = ""
    approver: str = ""
    start: datetime | None = None
    expires: datetime | None = None
    merge: str = ""  # the approving merge an ACTIVE grant was activated on


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
    merge: str = ""  # the approving merge it was activated on: it must stay where the blob's run starts
