"""The grant keeper: turns the repository's grants into bindings while they are approved and unexpired,
and removes every labelled binding no active grant backs. Expiry is checked on a timer, by our clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from gitopsguard.errors import GitOpsGuardError
from gitopsguard.grants.bindings import Binder, binding_name, matches
from gitopsguard.grants.decide import decide
from gitopsguard.grants.load import load_escalation_policies, load_grants
from gitopsguard.grants.model import DEFAULT_WINDOW, Approval, Decision, Grant, Remembered, State
from gitopsguard.grants.store import Entry, GrantStore
from gitopsguard.model import KubeObject


class ApprovalSource(Protocol):
    """Where approval evidence comes from: signed merges in git, or the forge's pull requests."""

    def approval(self, path: str) -> Approval: ...


@dataclass(frozen=True)
class Transition:
    grant: str  # the grant's name and file
    event: str  # requested | activated | expired | revoked | denied
    detail: str
    binding: tuple[str, str] | None = None  # (namespace or "", binding name) when one is made or removed


class GrantKeeper:
    def __init__(
        self, binder: Binder, store: GrantStore, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        window: timedelta = DEFAULT_WINDOW,
    ) -> None:  # fmt: skip
        self._binder, self._store, self._clock, self._window = binder, store, clock, window
        self.entries = store.load()
        self._active: dict[str, Grant] = {}
        self._reported: set[str] = set()  # broken grant files already reported
        self.problems: list[str] = []

    def sync(self, checkout: Path, approvals: ApprovalSource, blob_of: Callable[[str], str]) -> list[Transition]:
        """Decide every grant in the checkout, bind what is active, sweep the rest, remember it all.
        Escalation policies that do not load raise, and nothing changes."""
        policies = load_escalation_policies(checkout)
        grants, broken = load_grants(checkout, blob_of)
        now = self._clock()
        transitions = [Transition(where, "denied", why) for where, why in broken if where not in self._reported]
        self._reported = {where for where, _ in broken}
        seen: set[str] = set()
        for grant in grants:
            seen.add(grant.id)
            entry = self.entries.get(grant.id)
            settled = entry is not None and entry.memory.state in (State.ACTIVE, State.EXPIRED)
            evidence = None if settled else approvals.approval(grant.path)
            decision = decide(grant, policies, evidence, entry.memory if entry else None, now, self._window)
            transitions += self._record(grant, decision, entry, now)
        for gid, entry in list(self.entries.items()):
            if gid not in seen and entry.memory.state in (State.ACTIVE, State.PENDING):
                self.entries[gid] = replace(entry, memory=replace(entry.memory, state=State.REVOKED))
                transitions.append(Transition(f"{entry.name} ({entry.path})", "revoked", "its file left the branch"))
        self._active = {g.id: g for g in grants if self.entries[g.id].memory.state is State.ACTIVE}
        transitions += self._bind_and_sweep()
        self._store.save(self.entries)
        return transitions

    def expire_due(self) -> list[Transition]:
        """Expire what is due by our clock, and remove its binding at once."""
        now = self._clock()
        due = [gid for gid, g in self._active.items() if (e := self.entries[gid].memory.expires) and e <= now]
        if not due:
            return []
        transitions = []
        for gid in due:
            entry = self.entries[gid]
            self.entries[gid] = replace(entry, memory=replace(entry.memory, state=State.EXPIRED))
            grant = self._active.pop(gid)
            when = f"{entry.memory.expires:%Y-%m-%dT%H:%M:%SZ}" if entry.memory.expires else "?"
            detail = f"at {when}, by the controller clock"
            binding = (grant.namespace, binding_name(grant))
            transitions.append(Transition(f"{entry.name} ({entry.path})", "expired", detail, binding))
        transitions += self._bind_and_sweep()
        self._store.save(self.entries)
        return transitions

    def next_expiry(self) -> datetime | None:
        times = [e for gid in self._active if (e := self.entries[gid].memory.expires)]
        return min(times, default=None)

    def run(
        self, stop: threading.Event, sync: Callable[[], list[Transition]],
        report: Callable[[list[Transition]], None], interval: float = 30.0,
    ) -> None:  # fmt: skip
        """Sync every ``interval`` seconds; between syncs, wake for each expiry (precise to about 0.2 s)."""
        next_sync = 0.0
        while not stop.is_set():
            clock = self._clock().timestamp()
            if clock >= next_sync:
                try:
                    report(sync())
                except GitOpsGuardError as error:
                    self.problems.append(str(error))
                next_sync = clock + interval
            report(self.expire_due())
            expiry = self.next_expiry()
            until = min(next_sync, expiry.timestamp() if expiry else next_sync) - self._clock().timestamp()
            stop.wait(max(0.05, min(until, 0.2 if expiry else until)))

    def _record(self, grant: Grant, decision: Decision, entry: Entry | None, now: datetime) -> list[Transition]:
        before = entry.memory.state if entry else None
        memory = Remembered(decision.state, entry.memory.first_seen if entry else now, decision.start,
                            decision.expires, decision.approver, decision.reason)  # fmt: skip
        self.entries[grant.id] = Entry(memory, grant.name, f"{grant.subject_kind} {grant.subject}",
                                       f"{grant.role_kind} {grant.role}", grant.scope, grant.path)  # fmt: skip
        if before == decision.state:
            return []
        who = f"{grant.name} ({grant.origin})"
        out = [] if entry else [Transition(who, "requested", f"{grant.subject} asks for {grant.role} {grant.scope} "
                                                             f"for {grant.duration}: {grant.reason}")]  # fmt: skip
        event = {State.ACTIVE: "activated", State.EXPIRED: "expired", State.DENIED: "denied",
                 State.PENDING: "pending", State.REVOKED: "revoked"}[decision.state]  # fmt: skip
        detail = decision.reason
        binding = None
        if decision.state is State.ACTIVE:
            detail = f"approved by {decision.approver}; until {decision.expires:%Y-%m-%dT%H:%M:%SZ}"
            binding = (grant.namespace, binding_name(grant))
        return [*out, Transition(who, event, detail, binding)]

    def _bind_and_sweep(self) -> list[Transition]:
        """Keep a labelled binding only when it is exactly what an active grant makes (kind, namespace, name,
        subjects, roleRef); delete every other one, then make each active grant's binding that is missing."""
        wanted = {binding_name(g): g for g in self._active.values()}
        try:
            present = self._binder.listed()
        except GitOpsGuardError as error:
            self.problems.append(str(error))
            return []
        kept: set[str] = set()
        strays = []
        for body in present:
            name = str((body.get("metadata") or {}).get("name"))
            grant = wanted.get(name)
            if grant is not None and matches(body, grant):
                kept.add(name)
            else:
                strays.append(body)
        transitions = self._unbind(strays, wanted)
        for name, grant in wanted.items():
            expires = self.entries[grant.id].memory.expires
            if name not in kept and expires is not None and (problem := self._binder.bind(grant, expires)):
                self.problems.append(problem)
        return transitions

    def _unbind(self, strays: list[KubeObject], wanted: dict[str, Grant]) -> list[Transition]:
        with ThreadPoolExecutor(max_workers=16) as pool:  # a sweep of 1,000 bindings stays within seconds
            outcomes = list(pool.map(self._binder.unbind, strays))
        transitions = []
        for body, problem in zip(strays, outcomes, strict=True):
            if problem:
                self.problems.append(problem)
                continue
            name = (body.get("metadata") or {}).get("name")
            why = "it is not exactly the binding its grant makes" if name in wanted else "no active grant backs it"
            transitions.append(Transition(f"{body['kind']}/{name}", "unbound", why))
        return transitions
