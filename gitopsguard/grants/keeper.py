"""The grant keeper: turns the repository's grants into bindings while they are approved and unexpired,
and removes every labelled binding no active grant backs. Expiry is checked on a timer, by our clock.

Access always ends. Each round first expires what is due and sweeps, from remembered state alone (kept in
the state ConfigMap, so a restarted keeper does the same before it has read anything); only then is the
repository read; and expiry also runs on a timer thread of its own, so that a read that hangs (a slow
remote, a slow forge) holds up nothing: files and approval evidence are read without the keeper's lock,
which guards only what is remembered, the bindings and the store. A grant file that cannot be read or
decided, for whatever reason, is denied alone, with
its file; a round that fails as a whole (the repository unreachable or rewound, policies invalid, the API
server away) is reported, counted and retried. Any other exception is a bug and ends the thread, and
``lifeline`` ends the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from gitopsguard.backoff import jittered, next_wait, worth_retrying
from gitopsguard.errors import GitOpsGuardError, PolicyError, SourceError
from gitopsguard.grants.bindings import Binder, binding_name, matches
from gitopsguard.grants.decide import decide
from gitopsguard.grants.load import (
    MAX_GRANT_BYTES,
    MAX_GRANTS,
    POLICY_DIR,
    FileText,
    grant_files,
    load_grant_file,
    one_name_one_grant,
)
from gitopsguard.grants.model import DEFAULT_WINDOW, Approval, Decision, EscalationPolicy, Grant, Remembered, State
from gitopsguard.grants.store import (
    FORGET_AFTER,
    NEAR_LIMIT,
    Entry,
    GrantStore,
    forget_settled,
)
from gitopsguard.model import KubeObject


class ApprovalSource(Protocol):
    """Where approval evidence comes from: signed merges in git, or the forge's pull requests."""

    def approval(self, path: str) -> Approval: ...

    def policies(self, checkout: Path) -> dict[str, EscalationPolicy]:
        """The escalation policies in force: approved versions, not whatever was last pushed."""
        ...


@dataclass(frozen=True)
class Transition:
    grant: str  # the grant's name and file
    event: str  # requested | activated | expired | revoked | denied
    detail: str
    binding: tuple[str, str] | None = None  # (namespace or "", binding name) when one is made or removed


@dataclass(frozen=True)
class Evidence:
    """What one round learnt about a grant's approval, read before the keeper's lock is taken."""

    approval: Approval | None = None  # None: settled by the clock alone
    refused: str = ""  # why it cannot be decided: it is denied
    later: bool = False  # not had this round (the forge is away): the grant is left as it was


def _why(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error)[:300]}"


def read_grants(checkout: Path, blob_of: Callable[[str], str]) -> tuple[list[Grant], list[tuple[str, str]]]:
    """(grants, [(file[:line], why it is denied)]), each file on its own: whatever reading one file raises,
    only that file is denied and every other file is still read."""
    return read_grant_files(list_grant_files(checkout), blob_of)


def list_grant_files(checkout: Path) -> list[FileText]:
    try:
        return grant_files(checkout)
    except (OSError, ValueError) as error:
        raise SourceError(f"{checkout}/access/grants: cannot be listed ({_why(error)})") from error


def read_grant_files(files: list[FileText], blob_of: Callable[[str], str]) -> tuple[list[Grant], list[tuple[str, str]]]:
    """Each file on its own; a file that would take the repository past MAX_GRANTS is refused whole (one entry,
    nothing of it remembered), and a name defined in two files is refused in both."""
    grants: list[Grant] = []
    broken: list[tuple[str, str]] = []
    for name, text in files:
        try:
            found, bad = load_grant_file(name, text, blob_of)
        except Exception as error:
            found, bad = [], [(name, f"{name}: cannot be read ({_why(error)}); fix the file in a new pull request")]
        if len(grants) + len(found) > MAX_GRANTS or _size(grants) + _size(found) > MAX_GRANT_BYTES:
            found, bad = [], [(name, f"{name}: the repository holds more than the {MAX_GRANTS} grants (or "
                                     f"{MAX_GRANT_BYTES} bytes of names) the keeper remembers; remove settled "
                                     "grant files from access/grants/")]  # fmt: skip
        grants += found
        broken += bad
    grants, twice = one_name_one_grant(grants)
    return grants, broken + twice


def _size(grants: list[Grant]) -> int:
    """What the grants' names take in the state ConfigMap (each is remembered, whatever is decided)."""
    return sum(len(f"{g.name}{g.path}{g.policy}{g.subject}{g.role}{g.namespace}".encode()) for g in grants)


def read_policies(checkout: Path, approvals: ApprovalSource) -> dict[str, EscalationPolicy]:
    """The escalation policies in force (approved versions, from the approval source), all or none: any
    failure, of whatever type, is a PolicyError for the round, except that a source that cannot be reached
    (a forge that is away) raises SourceError."""
    try:
        return approvals.policies(checkout)
    except (PolicyError, SourceError):
        raise
    except Exception as error:
        raise PolicyError(f"{POLICY_DIR}: cannot be read ({_why(error)}); fix the policy files") from error


class GrantKeeper:
    def __init__(
        self, binder: Binder, store: GrantStore, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        window: timedelta = DEFAULT_WINDOW,
    ) -> None:  # fmt: skip
        self._binder, self._store, self._clock, self._window = binder, store, clock, window
        kept = store.read()
        # The last commit read, and from which repository and branch: the next read must contain it.
        self.entries, self.commit, self.history = kept.entries, kept.commit, kept.history
        self._reported: set[str] = set()  # broken grant files already reported
        self.problems: list[str] = []
        self.failures = 0  # rounds that failed as a whole
        self._failing: dict[str, str] = {}  # step -> its failure, while it keeps failing
        self.bad_inputs = 0  # grant files (or their evidence) denied because reading or deciding them raised
        self._lock = threading.RLock()  # entries, bindings and the store: the reading round and the expiry timer

    @property
    def _active(self) -> dict[str, Grant]:
        return {gid: e.grant for gid, e in self.entries.items() if e.memory.state is State.ACTIVE and e.grant}

    def counts(self) -> tuple[int, int]:
        """(rounds failed as a whole, grant files or evidence denied because reading or deciding raised)."""
        return self.failures, self.bad_inputs

    def last_read(self, history: str) -> str | None:
        """The last commit read from ``history``; None when nothing was read from it yet."""
        return self.commit if self.history == history else None

    def sync(
        self, checkout: Path, approvals: ApprovalSource, blob_of: Callable[[str], str], commit: str | None = None,
        history: str | None = None,
    ) -> list[Transition]:  # fmt: skip
        """Decide every grant in the checkout (at ``commit`` of ``history``), bind what is active, sweep the
        rest, remember it all. Escalation policies that do not load raise, and nothing changes; policies whose
        source is away leave new grants undecided while the rest goes on. Files and
        evidence are read without the keeper's lock, so that expiry never waits on them."""
        policies = self._policies(checkout, approvals) if not self._blind(commit) else None
        files = list_grant_files(checkout)
        grants, broken = read_grant_files(files, blob_of)
        evidence = {g.id: self._evidence(g, approvals, policies is not None) for g in grants}
        with self._lock:
            now = self._clock()
            self.bad_inputs += sum(1 for where, _ in broken if where not in self._reported)
            transitions = [Transition(where, "denied", why) for where, why in broken if where not in self._reported]
            self._reported = {where for where, _ in broken}
            for grant in grants:
                transitions += self._decide(grant, policies or {}, evidence[grant.id], now)
            transitions += self._revoke_missing({g.id for g in grants})
            transitions += self._bind_and_sweep()
            if commit:
                self.commit, self.history = commit, history or self.history
            self.entries = forget_settled(self.entries, {name for name, _ in files}, now, {g.id for g in grants})
            self._save()
            return transitions

    def _blind(self, commit: str | None) -> bool:
        """Grants remembered but no last commit read (a state saved without one): the branch cannot be checked
        against what was read before, so nothing new is decided this round; revocation, expiry and the sweep go
        on, and the commit read now is remembered for the next round."""
        if commit is None or self.commit is not None or not self.entries:
            return False
        self.problems.append(f"ConfigMap {self._store.namespace}/{self._store.name}: grants are remembered but not the "
                             "last commit read; nothing new is decided this round (the branch is trusted as it is "
                             "now from the next round on)")  # fmt: skip
        return True

    def _save(self) -> None:
        """Save what is remembered; say so when the state ConfigMap nears the API server's 1 MiB limit."""
        size = self._store.save(self.entries, self.commit, self.history)
        if size > NEAR_LIMIT:
            self.problems.append(f"ConfigMap {self._store.namespace}/{self._store.name}: {size} bytes of the 1 MiB a "
                                 f"ConfigMap may hold ({len(self.entries)} grants remembered); remove old grant "
                                 "files from access/grants/ (a settled grant is forgotten "
                                 f"{FORGET_AFTER.days} days after its file is gone)")  # fmt: skip

    def _policies(self, checkout: Path, approvals: ApprovalSource) -> dict[str, EscalationPolicy] | None:
        """The policies in force; None when their source cannot be reached (a forge that is away): then nothing
        new is decided this round, but revocation, expiry and the sweep go on. Counted, and said once."""
        try:
            policies = read_policies(checkout, approvals)
        except SourceError as error:
            self.failures += 1
            problem = (f"{POLICY_DIR}: the policies in force cannot be read ({error}); grants waiting for a "
                       "decision wait for the next round, revocation and expiry go on")  # fmt: skip
            if problem != self._failing.get("policies"):
                self.problems.append(problem)
            self._failing["policies"] = problem
            return None
        self._failing.pop("policies", None)
        return policies

    def _evidence(self, grant: Grant, approvals: ApprovalSource, decidable: bool = True) -> Evidence:
        """A forge that is away is no reason to deny: the grant is left for the next round (as it is when the
        policies in force are unknown, ``decidable`` False)."""
        entry = self.entries.get(grant.id)
        if entry is not None and entry.memory.state is State.EXPIRED:
            return Evidence()
        # An ACTIVE grant's evidence is read again every round: it stays active only while it still holds.
        if not decidable:
            return Evidence(later=True)
        try:
            return Evidence(approvals.approval(grant.path))
        except GitOpsGuardError as error:
            self.problems.append(f"{grant.origin}: approval not checked: {error}")
            return Evidence(later=True)
        except Exception as error:
            return Evidence(refused=f"{grant.origin}: approval cannot be read ({_why(error)})")

    def _decide(
        self, grant: Grant, policies: dict[str, EscalationPolicy], evidence: Evidence, now: datetime
    ) -> list[Transition]:
        """Decided against what is remembered now (expiry may have moved it since the evidence was read)."""
        if evidence.later:
            return []
        entry = self.entries.get(grant.id)
        try:
            if entry is not None and entry.grant is not None and entry.grant != grant:
                # Cannot happen while the identity is the whole blob; if it ever does, the remembered grant is
                # not what the file now says, and nothing that was not decided is bound.
                decision = Decision(entry.grant, State.REVOKED, f"{grant.origin}: not the grant that was decided")
            elif evidence.refused:
                decision = Decision(grant, State.DENIED, evidence.refused)
                self.bad_inputs += 1
            else:
                decision = decide(grant, policies, evidence.approval, entry.memory if entry else None, now,
                                  self._window)  # fmt: skip
        except Exception as error:  # one grant's decision must not stop the others
            self.bad_inputs += 1
            decision = Decision(grant, State.DENIED, f"{grant.origin}: cannot be decided ({_why(error)})")
        return self._record(grant, decision, entry, now)

    def _revoke_missing(self, seen: set[str]) -> list[Transition]:
        transitions = []
        for gid, entry in list(self.entries.items()):
            if gid not in seen and entry.memory.state in (State.ACTIVE, State.PENDING):
                self.entries[gid] = replace(entry, memory=replace(entry.memory, state=State.REVOKED))
                transitions.append(Transition(f"{entry.name} ({entry.path})", "revoked", "its file left the branch"))
        return transitions

    def tend(self) -> list[Transition]:
        """Expire what is due and sweep, from remembered state alone: never waits on the repository."""
        with self._lock:
            transitions = self._expire(self._clock())
            transitions += self._bind_and_sweep()
            if any(t.event == "expired" for t in transitions):
                self._save()
            return transitions

    def expire_due(self) -> list[Transition]:
        """Expire what is due by our clock, and remove its binding at once."""
        with self._lock:
            transitions = self._expire(self._clock())
            if transitions:
                transitions += self._bind_and_sweep()
                self._save()
            return transitions

    def _expire(self, now: datetime) -> list[Transition]:
        transitions = []
        for gid, entry in list(self.entries.items()):
            expires = entry.memory.expires
            if entry.memory.state is not State.ACTIVE or (expires is not None and expires > now):
                continue
            self.entries[gid] = replace(entry, memory=replace(entry.memory, state=State.EXPIRED))
            when = f"{expires:%Y-%m-%dT%H:%M:%SZ}" if expires else "?"
            binding = (entry.grant.namespace, binding_name(entry.grant, self._binder.keeper)) if entry.grant else None
            detail = f"at {when}, by the controller clock"
            transitions.append(Transition(f"{entry.name} ({entry.path})", "expired", detail, binding))
        return transitions

    def next_expiry(self) -> datetime | None:
        with self._lock:
            times = [e for gid in self._active if (e := self.entries[gid].memory.expires)]
        return min(times, default=None)

    def run(
        self, stop: threading.Event, sync: Callable[[], list[Transition]],
        report: Callable[[list[Transition]], None], interval: float = 30.0,
    ) -> None:  # fmt: skip
        """Every ``interval`` seconds: expire and sweep first, then read the repository. Expiry also runs on a
        timer of its own (``grants-expiry``, precise to about 0.2 s), so a read that hangs holds up nothing."""
        said = threading.Lock()

        def tell(transitions: list[Transition]) -> None:
            with said:
                report(transitions)

        halt = threading.Event()
        timer = threading.Thread(target=self._expire_on_time, args=(stop, halt, tell), name="grants-expiry",
                                 daemon=True)  # fmt: skip
        timer.start()
        try:
            next_sync, failures = 0.0, 0
            while not stop.is_set():
                clock = self._clock().timestamp()
                if clock >= next_sync:
                    passing: list[GitOpsGuardError] = []
                    tell(self._attempt(self.tend, passing))
                    tell(self._attempt(sync, passing))
                    # A round the API server throttled (or was away for) is read again as soon as it says;
                    # one that failed for good waits the interval, as a round that went well does.
                    failures = failures + 1 if passing else 0
                    wait = next_wait(passing[-1] if passing else None, failures, lambda n: jittered(n, interval))
                    next_sync = clock + wait
                stop.wait(max(0.05, min(next_sync - self._clock().timestamp(), 1.0)))
        finally:
            halt.set()
            timer.join(10)

    def _expire_on_time(
        self, stop: threading.Event, halt: threading.Event, tell: Callable[[list[Transition]], None]
    ) -> None:
        while not stop.is_set() and not halt.is_set():
            tell(self._attempt(self.expire_due))
            expiry = self.next_expiry()
            until = expiry.timestamp() - self._clock().timestamp() if expiry else 1.0
            halt.wait(max(0.05, min(until, 0.2 if expiry else 1.0)))

    def _attempt(
        self, step: Callable[[], list[Transition]], passing: list[GitOpsGuardError] | None = None
    ) -> list[Transition]:
        """One step of a round; when it fails as a whole it is reported and counted, and tried next round (soon,
        when its error says it passes: then it is added to ``passing``)."""
        name = getattr(step, "__name__", "step")
        try:
            transitions = step()
        except GitOpsGuardError as error:
            self.failures += 1
            if worth_retrying(error) and passing is not None:
                passing.append(error.with_traceback(None))
            if str(error) != self._failing.get(name):  # the same failure every round is said once, and counted
                self.problems.append(str(error))
            self._failing[name] = str(error)
            return []
        self._failing.pop(name, None)
        return transitions

    def _record(self, grant: Grant, decision: Decision, entry: Entry | None, now: datetime) -> list[Transition]:
        before = entry.memory.state if entry else None
        memory = Remembered(decision.state, entry.memory.first_seen if entry else now, decision.start,
                            decision.expires, decision.approver, decision.reason, merge=decision.merge)  # fmt: skip
        grant = decision.grant  # exactly what was decided is what is remembered and bound
        self.entries[grant.id] = Entry(memory, grant.name, f"{grant.subject_kind} {grant.subject}",
                                       f"{grant.role_kind} {grant.role}", grant.scope, grant.path, grant)  # fmt: skip
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
            binding = (grant.namespace, binding_name(grant, self._binder.keeper))
        return [*out, Transition(who, event, detail, binding)]

    def _bind_and_sweep(self) -> list[Transition]:
        """Keep a labelled binding only when it is exactly what an active grant makes (kind, namespace, name,
        subjects, roleRef); delete every other one, then make each active grant's binding that is missing."""
        wanted = {binding_name(g, self._binder.keeper): g for g in self._active.values()}
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
            if grant is not None and matches(body, grant, self._binder.keeper):
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
