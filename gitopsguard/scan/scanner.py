"""The live scan: watch the workload kinds, evaluate an object only when it or the policies change, and
report, announce or (after the grace period, backup first) delete what stays non-compliant.

One thread owns all state; the informers' threads (``cluster/informer.py``) only queue events, a relist's
differences included. Nothing rescans on a timer: a timer only looks at deadlines already computed.
"""

from __future__ import annotations

import collections
import functools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitopsguard.backup import Backups, storage
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.events import EventRecorder
from gitopsguard.cluster.informer import Informer
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, InventoryStore
from gitopsguard.cluster.reports import ReportWriter
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import (
    ApplyError,
    ClusterError,
    ConflictError,
    GitOpsGuardError,
    NotFoundError,
    UnreachableError,
)
from gitopsguard.model import KubeObject, ObjectKey
from gitopsguard.policy import PolicySet, judge_object
from gitopsguard.policy.compose import Governance
from gitopsguard.policy.live import LiveVerdict, Outcome, Standing, judge, top_level
from gitopsguard.policy.model import Context, Finding, PolicyException
from gitopsguard.scan.excused import ChildKey, Excused
from gitopsguard.scan.judged import Announcement, _digest, _event_message, _Seen, fingerprint
from gitopsguard.scan.publish import MAX_QUEUED, Publisher
from gitopsguard.scan.state import ScanMemory, ScanStateStore, Tracked
from gitopsguard.scan.template import beyond_controller
from gitopsguard.scan.trust import Trust

LIVE_KINDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("v1",), "Pod"), (("apps/v1",), "Deployment"), (("apps/v1",), "StatefulSet"), (("apps/v1",), "DaemonSet"),
    (("apps/v1",), "ReplicaSet"), (("batch/v1",), "Job"), (("batch/v1", "batch/v1beta1"), "CronJob"),
    (("v1",), "ReplicationController"),
)  # fmt: skip
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", CONTROLLER_NAMESPACE})
MAX_PROBLEMS = 100  # the newest problems kept for the caller; each is also shown once as it happens
TRUST_REFRESH = 10.0  # seconds before the inventories are read again for a new unconfirmed claim
TRUST_REFRESH_MAX = 300.0  # ... doubling while nothing new is claimed: a tenant's fake labels cost little
FRESH = 2.0  # seconds a reading counts as fresh before a deletion (one reading for a whole round's deletions)


class Scanner:
    def __init__(
        self, applier: Applier, raw: RawApi, policies: PolicySet | Governance, *, backup_dir: Path | Backups,
        namespaces: frozenset[str] | None = None,
        announce: Callable[[list[Announcement]], None] = lambda _: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        observe: Callable[[list[tuple[str, str, str]]], None] = lambda _: None,
        inventories: InventoryStore | None = None, warn: Callable[[str], None] = lambda _: None, unit: str = "",
    ) -> None:  # fmt: skip
        self._applier, self._raw, self._backup_dir = applier, raw, backup_dir
        # which policies govern which namespace: the platform's everywhere, a Unit's own in its namespace
        self._governance = _governance(policies)
        self._only, self._announce, self._clock, self._observe = namespaces, announce, clock, observe
        self._trust = Trust(applier, raw, inventories or InventoryStore(raw))
        self._unsettled: set[str] = set()  # uids whose claims could not be confirmed yet: checked again later
        self._trust_tried = float("-inf")  # when the inventories were last read, or tried (monotonic)
        self._trust_wait = TRUST_REFRESH  # before the next reading for unconfirmed claims
        self.problems: list[str] = []  # failures to write events, reports or state, for the caller to show
        self._warn = warn  # shows each new problem as it happens (``gitopsguard run`` prints it)
        # ``unit``: whose scan this is; its state and Events are its own, beside other units' scans
        self._memory = ScanMemory(ScanStateStore(raw, scan=unit), self._problem, owns_all=namespaces is None)
        self._seen: dict[str, _Seen] = {}
        self._children: dict[str, tuple[str, str]] = {}  # uid -> (kind, policies + body digest) of those judged
        self._excused = Excused()  # children whose findings their controller answers for, by controller uid
        # through their controllers
        self._namespaces: dict[str, KubeObject] = {}
        self._events, self._reports = EventRecorder(raw, unit=unit), ReportWriter(raw)
        self._publisher = Publisher(self._problem)
        self._heard: list[Announcement] = []  # announcements of this round, delivered together by flush()
        self._dirty: set[str] = set()  # namespaces whose report must be rewritten
        self._reports_due: dict[str, tuple[list[tuple[KubeObject, Finding]], datetime]] = {}  # latest per namespace
        self._reports_lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._informers: dict[tuple[str, str], Informer] = {}  # per kind, seeded by ``scan_all``'s lists
        self.evaluations = 0  # how many objects were evaluated (the bench checks only changes cost work)
        self.recent: collections.deque[ObjectKey] = collections.deque(maxlen=1000)  # the last ones evaluated

    @property
    def non_compliant(self) -> int:
        return sum(
            1 for s in self._seen.values() if s.verdict.findings and s.verdict.outcome is not Outcome.TERMINATING
        )

    # -- the one owner thread ------------------------------------------------------------------------

    def scan_all(self) -> dict[tuple[str, str], str]:
        """List every workload kind once and evaluate everything; the list resourceVersion per kind."""
        self._namespaces = self._applier.namespaces()
        versions = {}
        for api_version, kind in self._kinds():
            versions[(api_version, kind)] = self._list_kind(api_version, kind, seed=True)
        self._memory.keep_only(self._seen, self._in_scope)
        self.flush()
        return versions

    def set_policies(self, policies: PolicySet | Governance) -> None:
        """New policies: evaluate again, from memory (no new listing), every known workload whose namespace's
        policies changed."""
        if policies is self._governance or (policies is self._governance.root and not self._governance.by_namespace):
            return  # the very set in force (polled every half second)
        governance = _governance(policies)
        if governance.digest and governance.digest == self._governance.digest:
            return  # the same policy files (a new commit that left policies/ alone): nothing to redo
        self._governance = governance
        for uid, seen in list(self._seen.items()):
            if seen.policies and seen.policies == self._policies_of(seen.key.namespace).digest:
                continue  # its namespace's policies are the same files as before
            if seen.standing.strays_from:  # whether its controller's template has its findings may change too
                self._consider(seen.body)
            else:
                self._evaluate(uid, seen.body, seen.standing)
        self._relist_children()
        self.flush()

    def _relist_children(self) -> None:
        """Children judged through their controllers are not kept in memory (a cluster holds many Pods): under
        new policies, their kinds are listed again to judge each against its controller's template."""
        kinds = {kind for kind, _ in self._children.values()}
        self._children.clear()
        self._excused.clear()
        for api_version, kind in self._kinds():
            if kind in kinds:
                try:
                    self._list_kind(api_version, kind)
                except GitOpsGuardError as error:  # the watch's next relist or event judges them
                    self._problem(f"{kind}: cannot be listed again under the new policies: {error}")

    def handle(self, event_type: str, body: KubeObject) -> None:
        """One watch event."""
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if event_type == "DELETED":
            self._trust.forget(uid)
            self._children.pop(uid, None)
            self._excused.drop(uid)
            self._judge_again(self._excused.changed(uid, None))
            self._unsettled.discard(uid)
            gone = self._seen.pop(uid, None)
            self._memory.pop(uid)
            if gone is not None and gone.verdict.findings:
                self._dirty.add(gone.key.namespace)
        elif event_type in ("ADDED", "MODIFIED"):
            self._consider(body)
            self._judge_again(self._excused.changed(uid, fingerprint(body)))

    def _judge_again(self, children: list[ChildKey]) -> None:
        """A controller changed or went: the children it excused are judged again (read now, as they are)."""
        for child in children:
            self._children.pop(child.uid, None)
            path = self._applier.object_path(child.api_version, ObjectKey("", child.kind, child.namespace, child.name))
            try:
                body = self._raw.get(path)
            except UnreachableError as error:
                self._problem(f"{child.kind}/{child.namespace}/{child.name}: cannot be read to judge again: {error}")
                continue
            except ClusterError:  # gone (or not readable): nothing to judge
                continue
            if str((body.get("metadata") or {}).get("uid")) == child.uid:
                self._consider({"apiVersion": child.api_version, "kind": child.kind, **body})

    def tick(self) -> None:
        """Act on deadlines that have passed (no evaluation: the findings are already known), and evaluate
        again, from memory, each object an exception covered that has just expired: an expired exception
        stops applying at that instant here as in the gate."""
        now = self._clock()
        for uid, seen in list(self._seen.items()):
            if seen.excepted_until is not None and seen.excepted_until <= now:
                self._evaluate(uid, seen.body, seen.standing)
        self._settle()
        for uid, seen in list(self._seen.items()):
            deadline = seen.verdict.deadline
            if seen.verdict.outcome is Outcome.SCHEDULED and deadline is not None and deadline <= now:
                first, by_name = self._first_seen(uid), self._by_name(seen.key.namespace)
                verdict = judge(seen.body, seen.verdict.findings, by_name, first, now, seen.standing)
                self._seen[uid] = replace(seen, verdict=verdict)
                self._act(uid, seen.key, seen.body, verdict)

    def flush(self) -> None:
        """Deliver this round's announcements together; queue each dirty namespace's PolicyReport; save
        the remembered state."""
        if self._heard:
            heard, self._heard = self._heard, []
            self._announce(heard)
        if self._dirty:  # what stands now, by policy, severity and namespace (for metrics)
            self._observe([(f.policy, f.severity.value, s.key.namespace) for s in self._seen.values()
                           if s.verdict.outcome is not Outcome.TERMINATING for f in s.verdict.findings])  # fmt: skip
        now = self._clock()
        for namespace in sorted(self._dirty):
            failures = [(s.body, f) for s in self._seen.values() if s.key.namespace == namespace
                        for f in s.verdict.findings]  # fmt: skip
            self._queue_report(namespace, failures, now)
        self._dirty.clear()
        if self._publisher.dropped:
            self._problem(f"{self._publisher.dropped} Events were not sent (more than {MAX_QUEUED} queued); "
                          "the PolicyReports and the audit log hold every finding")  # fmt: skip
            self._publisher.dropped = 0
        self._memory.save()

    # -- running ---------------------------------------------------------------------------------------

    def run(self, stop: threading.Event, policies: Callable[[], PolicySet | Governance] | None = None) -> None:
        """Scan, then follow the informers until ``stop``; ``policies`` is polled for a newer policy set."""
        self.scan_all()
        for informer in self._informers.values():
            informer.start(stop)
        while not stop.is_set():
            try:
                self.handle(*self._queue.get(timeout=0.5))
                while not self._queue.empty():
                    self.handle(*self._queue.get_nowait())
            except queue.Empty:
                pass
            if policies is not None:
                self.set_policies(policies())
            self.tick()
            self.flush()

    def _queue_event(self, event_type: str, body: KubeObject) -> None:
        """From an informer's thread: the owner thread handles it."""
        self._queue.put((event_type, body))

    # -- evaluation ------------------------------------------------------------------------------------

    def _kinds(self) -> list[tuple[str, str]]:
        found = []
        for versions, kind in LIVE_KINDS:
            for api_version in versions:
                try:
                    self._applier.resource(api_version, kind, kind)
                except ApplyError:
                    continue
                found.append((api_version, kind))
                break
        return found

    def _list_kind(self, api_version: str, kind: str, *, seed: bool = False) -> str:
        listed, version = self._applier.list_kind(api_version, kind, what="for the live scan")
        if seed:  # the kind's informer watches from this list, whose objects are judged below
            informer = Informer(self._applier, self._raw, (api_version, kind), keep_objects=False,
                                on_event=self._queue_event, what=f"{kind} (live scan)")  # fmt: skip
            informer.seed(listed, version)
            self._informers[(api_version, kind)] = informer
        present = set()
        for item in listed.values():
            present.add(str(item["metadata"].get("uid")))
            self._consider(item)
        for uid in [u for u, s in self._seen.items() if s.key.kind == kind and u not in present]:
            self.handle("DELETED", {"metadata": {"uid": uid}})
        return version

    def _consider(self, body: KubeObject) -> None:
        metadata = body.get("metadata") or {}
        namespace, uid = str(metadata.get("namespace") or ""), str(metadata.get("uid") or "")
        if not namespace or not self._in_scope(namespace):
            return
        seen, digest = self._seen.get(uid), self._policies_of(namespace).digest
        if seen is not None and seen.policies == digest and seen.fingerprint == fingerprint(body):
            return  # nothing a policy can see changed since it was evaluated (status updates are not looked at)
        kind = str(body.get("kind") or "")
        if self._children.get(uid) == (kind, digest + _digest(body)):
            return  # judged through its controller, and nothing a policy can see changed since
        standing = self._standing(body)
        if not top_level(standing):  # judged through its (verified) controller instead
            if seen is not None:
                self.handle("DELETED", {"metadata": {"uid": uid}})
            self._children[uid] = (kind, digest + _digest(body))
            return
        self._children.pop(uid, None)
        metadata.pop("managedFields", None)  # kept in memory for every workload, read by nothing here
        self._evaluate(uid, body, standing)

    def _standing(self, body: KubeObject) -> Standing:
        """Who manages ``body``, as verified: a controller counts only for findings its template produces."""
        standing = self._trust.standing(body)
        return standing if top_level(standing) else self._judged_alone(body, standing)

    def _judged_alone(self, body: KubeObject, standing: Standing) -> Standing:
        """``standing`` as it is when each of the child's findings is a standing finding of its controller, with
        the same value (``scan/template.py``); else without the controller (a top-level workload), or held when
        the controller cannot be read now."""
        key, now = ObjectKey.of(body), self._clock()
        ctx, policies = Context(self._namespaces.get(key.namespace)), self._policies_of(key.namespace)
        try:
            own, _ = judge_object(body, policies, ctx, now)
            if not own:
                return standing
            owner = self._trust.controller(body)
            # what an exception covers on the controller covers the same value in its children: an excepted
            # DaemonSet's Pods are not deleted over and over; a value the template does not hold is not covered
            owners = _all_findings(judge_object(owner, policies, ctx, now)) if owner else ()
        except GitOpsGuardError as error:
            why = f"its controller {standing.owner_kind}/{standing.owner_name} could not be read ({error})"
            return Standing(unit=standing.unit, claims=standing.claims, unverified=f"{why}: held until it can be")
        except Exception:  # fail closed: judged on its own (``_evaluate`` reports the error)
            return Standing(unit=standing.unit, claims=standing.claims)
        if owner is not None and not beyond_controller(body, own, owner, owners):
            self._excused.add(owner, fingerprint(owner), body)
            return standing
        owner_name = f"{standing.owner_kind}/{standing.owner_name}"
        return Standing(unit=standing.unit, claims=standing.claims, strays_from=owner_name)

    def _refresh_trust(self, fresh: float = 0.0) -> bool:
        """Read the inventories, unless they were read within ``fresh`` seconds; whether they could be."""
        if fresh and time.monotonic() - self._trust.loaded_at < fresh:
            return True
        self._trust_tried = time.monotonic()
        try:
            self._trust.refresh()
        except GitOpsGuardError as error:
            self._problem(
                f"the units' inventories could not be read, so workloads labelled for a unit are held: {error}"
            )
            return False
        return True

    def _settle(self) -> None:
        """Every few seconds, check again the claims not confirmed yet: a unit saves its inventory only after
        applying, so a Git-managed workload can be seen before its unit lists it."""
        if not self._unsettled or time.monotonic() - self._trust_tried < self._trust_wait:
            return
        self._refresh_trust()
        self._trust_wait = min(self._trust_wait * 2, TRUST_REFRESH_MAX)
        for uid in list(self._unsettled):
            seen = self._seen.get(uid)
            if seen is None:
                self._unsettled.discard(uid)
                continue
            standing = self._standing(seen.body)
            if standing != seen.standing or seen.verdict.outcome is Outcome.HELD:
                self._evaluate(uid, seen.body, standing)

    def _in_scope(self, namespace: str) -> bool:
        return namespace in self._only if self._only is not None else namespace not in SYSTEM_NAMESPACES

    def _policies_of(self, namespace: str) -> PolicySet:
        """The policies that govern ``namespace``: the platform's, and its Units' own (``policy/compose.py``)."""
        return self._governance.for_namespace(namespace)

    def _by_name(self, namespace: str) -> dict[str, Any]:
        return {p.name: p for p in self._policies_of(namespace).policies}

    def _first_seen(self, uid: str) -> datetime | None:
        tracked = self._memory.get(uid)
        return tracked.first_seen if tracked else None

    def _evaluate(self, uid: str, body: KubeObject, standing: Standing) -> None:
        self.evaluations += 1
        self.recent.append(ObjectKey.of(body))
        now = self._clock()
        key = ObjectKey.of(body)
        namespace, policies = self._namespaces.get(key.namespace), self._policies_of(key.namespace)
        try:
            failing, excepted = judge_object(body, policies, Context(namespace), now)
        except Exception as error:  # evaluation is pure; one object must never end the scan of all the others
            self._problem(f"{key}: cannot be evaluated ({type(error).__name__}: {str(error)[:200]}); "
                          "its last verdict stands; report this with the policies in force")  # fmt: skip
            return
        first = self._first_seen(uid) if failing else None
        verdict = judge(body, failing, self._by_name(key.namespace), first, now, standing)
        before = self._seen.get(uid)
        until = self._exception_expiry(excepted)
        self._seen[uid] = _Seen(key, body, verdict, policies.digest, fingerprint(body), standing, until)
        if standing.claims or standing.unverified:
            if uid not in self._unsettled:
                self._trust_wait = TRUST_REFRESH  # a new claim: look again soon
            self._unsettled.add(uid)
        else:
            self._unsettled.discard(uid)
        if verdict.findings or (before is not None and before.verdict.findings):
            self._dirty.add(key.namespace)
        self._act(uid, key, body, verdict)

    # -- acting ----------------------------------------------------------------------------------------

    def _act(self, uid: str, key: ObjectKey, body: KubeObject, verdict: LiveVerdict) -> None:
        now = self._clock()
        if verdict.outcome is Outcome.TERMINATING:
            return  # on its way out already: neither deleted nor announced again
        tracked = self._memory.get(uid)
        if verdict.outcome is Outcome.COMPLIANT:
            if tracked is not None:
                self._memory.pop(uid)
                if tracked.announced:
                    self._heard.append(Announcement("resolved", key, body, verdict))
            return
        if tracked is None or tracked.announced != verdict.digest:
            self._heard.append(Announcement("violation", key, body, verdict, verdict.reason))
            message = _event_message(verdict)
            self._publisher.submit(lambda: self._events.record(body, "PolicyViolation", message))
            tracked = Tracked(str(key), tracked.first_seen if tracked else now, verdict.digest)
            self._memory.put(uid, tracked)
        if verdict.outcome is Outcome.DELETE:
            self._delete(uid, key, body, verdict)

    def _delete(self, uid: str, key: ObjectKey, body: KubeObject, verdict: LiveVerdict) -> None:
        if not self._still_unmanaged(uid, body, verdict):
            return
        try:
            findings = sorted({f"{f.code} {f.severity.value} ({f.policy}): {f.message}" for f in verdict.findings})
            reason = "non-compliant past its grace period (live scan)"
            saved = storage(self._backup_dir).save(key, body, self._clock(), reason=reason, findings=findings)
        except GitOpsGuardError as error:  # no backup, no deletion
            self._heard.append(Announcement("delete-failed", key, body, verdict, str(error)))
            return
        path = self._applier.object_path(str(body.get("apiVersion")), key)
        try:
            self._raw.delete(path, str(key), body={"propagationPolicy": "Background", "preconditions": {"uid": uid}})
        except (NotFoundError, ConflictError):
            pass  # gone already, or replaced by another object of that name (the uid precondition)
        except UnreachableError:
            raise
        except ClusterError as error:
            self._heard.append(Announcement("delete-failed", key, body, verdict, str(error)))
            return
        note = f"deleted after its grace period; backup: {saved}"
        self._publisher.submit(lambda: self._events.record(body, "DeletedByPolicy", note), droppable=False)
        self._heard.append(Announcement("deleted", key, body, verdict, f"backup: {saved}", saved))
        self._seen[uid] = replace(self._seen[uid], verdict=replace(verdict, outcome=Outcome.TERMINATING))

    def _still_unmanaged(self, uid: str, body: KubeObject, verdict: LiveVerdict) -> bool:
        """Right before deleting a workload labelled for a unit, read the inventories afresh: deletion waits
        for its unit to be known not to list it."""
        seen = self._seen[uid]
        if not seen.standing.claims:
            return True
        if not self._refresh_trust(fresh=FRESH):
            held = replace(verdict, outcome=Outcome.HELD, reason="the units' inventories could not be read")
            self._seen[uid] = replace(seen, verdict=held)
            return False
        standing = self._standing(body)
        if standing != seen.standing:
            self._evaluate(uid, body, standing)
            return False
        return True

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued Event and PolicyReport is written."""
        return self._publisher.drain(timeout)

    @staticmethod
    def _exception_expiry(excepted: tuple[tuple[Finding, PolicyException], ...]) -> datetime | None:
        return min((exception.expires for _, exception in excepted), default=None)

    def _problem(self, problem: str | None) -> None:
        if problem and problem not in self.problems[-20:]:
            self.problems.append(problem)
            del self.problems[:-MAX_PROBLEMS]
            self._warn(problem)

    def _queue_report(self, namespace: str, failures: list[tuple[KubeObject, Finding]], now: datetime) -> None:
        """At most one write per namespace waits for the publisher, and it writes the latest findings: a
        namespace whose workloads change all the time costs one report write at a time, not a queue of them."""
        with self._reports_lock:
            waiting = namespace in self._reports_due
            self._reports_due[namespace] = (failures, now)
        if not waiting:
            self._publisher.submit(functools.partial(self._write_report, namespace), droppable=False)

    def _write_report(self, namespace: str) -> str | None:
        with self._reports_lock:
            failures, now = self._reports_due.pop(namespace)
        return self._reports.write(namespace, failures, now)


def _governance(policies: PolicySet | Governance) -> Governance:
    return policies if isinstance(policies, Governance) else Governance(policies, digest=policies.digest)


def _all_findings(
    judged: tuple[tuple[Finding, ...], tuple[tuple[Finding, PolicyException], ...]],
) -> tuple[Finding, ...]:
    standing, excepted = judged
    return standing + tuple(finding for finding, _ in excepted)
