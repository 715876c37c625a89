"""Who did it, and how often: every verdict is counted at once (Prometheus, as MagTape counts them), and each
denied, warned or audited request, and each break-glass switch, is recorded with the requesting user in the
audit log and as a Kubernetes Event on the object, by a thread of its own so that neither the fsync nor the
API server's answer is in a request's way.

The queue is bounded: under a flood the oldest records are kept and the rest counted as dropped (metric
``gitopsguard_admission_records_dropped``, and an audit record saying how many once the flood is over).
Events are not made for dry-run requests: with ``sideEffects: None`` the API server sends those too, and
an Event would be a side effect. Namespaces label the metrics only up to ``MAX_NAMESPACES``, as any caller
of the port can name any namespace; the rest count as "other".
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

from gitopsguard.admission.review import Verdict, describe
from gitopsguard.audit import AuditLog
from gitopsguard.errors import GitOpsGuardError

UNIT = "admission"
MAX_NAMESPACES = 1000
QUEUE = 10_000
BATCH = 256  # verdicts written in one audit append
EVENT_EVERY = 60.0  # seconds between Events about the same object for the same reason
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)  # seconds; the target is p99 <= 20 ms


class AdmissionMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.requests = Counter("gitopsguard_admission_requests", "Admission requests by webhook and namespace",
                                ["webhook", "namespace"], registry=r)  # fmt: skip
        self.allowed = Counter("gitopsguard_admission_allowed", "Admission requests allowed",
                               ["webhook", "namespace"], registry=r)  # fmt: skip
        self.denied = Counter("gitopsguard_admission_denied", "Admission requests denied, by the policy that denied",
                              ["namespace", "policy"], registry=r)  # fmt: skip
        self.warned = Counter("gitopsguard_admission_warned", "Admission requests warned, by the policy that warned",
                              ["namespace", "policy"], registry=r)  # fmt: skip
        self.seconds = Histogram("gitopsguard_admission_duration_seconds", "Time to judge an admission request",
                                 ["webhook"], registry=r,
                                 buckets=BUCKETS)  # fmt: skip
        self.dropped = Counter("gitopsguard_admission_records_dropped", "Admission records dropped in a flood",
                               registry=r)  # fmt: skip
        self._namespaces: set[str] = set()
        self._lock = threading.Lock()

    def on_verdict(self, verdict: Verdict, webhook: str, seconds: float) -> None:
        namespace = self._label(verdict.request.namespace)
        self.requests.labels(webhook, namespace).inc()
        self.seconds.labels(webhook).observe(seconds)
        if verdict.allowed:
            self.allowed.labels(webhook, namespace).inc()
        for policy in {f.policy for f in verdict.denying} or ({"-"} if not verdict.allowed else set()):
            self.denied.labels(namespace, policy).inc()
        for policy in {f.policy for f in verdict.warning}:
            self.warned.labels(namespace, policy).inc()

    def _label(self, namespace: str) -> str:
        with self._lock:
            if namespace in self._namespaces or len(self._namespaces) < MAX_NAMESPACES:
                self._namespaces.add(namespace)
                return namespace or "-"
        return "other"


EventSink = Callable[[dict[str, object], str, str], object]  # (involved object, reason, message)


class AdmissionRecorder:
    """Counts every verdict and records the notable ones (see the module docstring)."""

    def __init__(
        self, log: AuditLog | None, event: EventSink | None, metrics: AdmissionMetrics | None,
        announce: Callable[[Verdict], None] | None = None,
    ) -> None:  # fmt: skip
        self._log, self._event, self._metrics, self._announce = log, event, metrics, announce
        self._queue: queue.Queue[tuple[Verdict, str]] = queue.Queue(QUEUE)
        self._dropped = 0
        self._evented: dict[tuple[str, str], float] = {}  # (subject, reason) -> when its last Event was made

    def observe(self, verdict: Verdict, webhook: str, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.on_verdict(verdict, webhook, seconds)
        if webhook == "validate" and _notable(verdict):
            try:
                self._queue.put_nowait((verdict, webhook))
            except queue.Full:
                self._dropped += 1
                if self._metrics is not None:
                    self._metrics.dropped.inc()

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="admission-records", daemon=True)
        thread.start()
        return thread

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                first, _ = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self.record(first, *self._waiting())

    def _waiting(self) -> list[Verdict]:
        """The verdicts queued behind the first, up to ``BATCH``: written in one append, so an anchored log
        (one conditional ConfigMap write per append) keeps up with a flood instead of dropping records."""
        more: list[Verdict] = []
        with contextlib.suppress(queue.Empty):
            while len(more) < BATCH:
                more.append(self._queue.get_nowait()[0])
        return more

    def record(self, *verdicts: Verdict) -> None:
        """Write the verdicts' audit records in one append, then each one's Event and notice (the thread's
        step; tests call it directly)."""
        entries = [entry for verdict in verdicts for entry in entries_for(verdict)]
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            why = f"{dropped} admission records were dropped in a flood (queue of {QUEUE} full)"
            entries.append(("admission-records-dropped", UNIT, verdicts[-1].revision, "admission", why))
        if self._log is not None and entries:
            with contextlib.suppress(GitOpsGuardError):  # the log says why elsewhere; admission goes on
                self._log.append(entries)
        for verdict in verdicts:
            self._tell(verdict)

    def _tell(self, verdict: Verdict) -> None:
        if self._event is not None and not verdict.request.dry_run:
            reason, message = event_for(verdict)
            if self._due(verdict.request.subject, reason):
                self._event(_involved(verdict), reason, message)
        if self._announce is not None and not verdict.request.dry_run and (not verdict.allowed or verdict.break_glass):
            self._announce(verdict)  # Slack, where configured: each distinct denial once, each switch

    def _due(self, subject: str, reason: str) -> bool:
        """One Event per object and reason a minute: a tenant retrying a denied request in a loop must not make
        the API server store an Event for each try (the audit log has every one)."""
        now, key = time.monotonic(), (subject, reason)
        if now - self._evented.get(key, -EVENT_EVERY) < EVENT_EVERY:
            return False
        if len(self._evented) >= QUEUE:  # bounded: forget the oldest
            self._evented.pop(next(iter(self._evented)))
        self._evented[key] = now
        return True


def _notable(verdict: Verdict) -> bool:
    return bool(not verdict.allowed or verdict.warning or verdict.audit or verdict.break_glass)


RECORD_LINES = 20
RECORD_LINE = 300


def entries_for(verdict: Verdict) -> list[tuple[str, str, str, str, str]]:
    """(event, unit, revision, subject, detail) audit entries for one verdict, each naming the user."""
    request = verdict.request
    by = f"by {request.username or '?'} ({request.operation}{', dry run' if request.dry_run else ''})"
    entries = []
    if verdict.break_glass:
        turned = f"{by}: admission turned {_admission(verdict)} in this namespace"
        entries.append(
            (f"admission-break-glass-{verdict.break_glass}", UNIT, verdict.revision, request.subject, turned)
        )
    if not verdict.allowed:
        lines = _bounded([describe(f, "FAIL") for f in verdict.denying] or [verdict.reason])
        entries.append(("admission-denied", UNIT, verdict.revision, request.subject, f"{by}: " + "; ".join(lines)))
    if verdict.warning:
        lines = _bounded([describe(f, "WARN") for f in verdict.warning])
        entries.append(("admission-warned", UNIT, verdict.revision, request.subject, f"{by}: " + "; ".join(lines)))
    if verdict.audit:
        lines = _bounded([describe(f, "AUDIT") for f in verdict.audit])
        entries.append(("admission-audit", UNIT, verdict.revision, request.subject, f"{by}: " + "; ".join(lines)))
    return entries


def _bounded(lines: list[str]) -> list[str]:
    """At most RECORD_LINES lines of at most RECORD_LINE characters: one request (500 containers x 40 ports)
    once wrote 3.5 MB into the audit log (red team); the rest are counted."""
    shown = [line if len(line) <= RECORD_LINE else line[:RECORD_LINE] + "..." for line in lines[:RECORD_LINES]]
    return shown + ([f"and {len(lines) - RECORD_LINES} more findings"] if len(lines) > RECORD_LINES else [])


def event_for(verdict: Verdict) -> tuple[str, str]:
    user = verdict.request.username or "?"
    if verdict.break_glass:
        return (
            "AdmissionBreakGlass",
            f"{user} turned gitopsguard admission {'off' if verdict.break_glass == 'on' else 'on'}",
        )
    codes = ", ".join(sorted({f"{f.code} ({f.policy})" for f in verdict.denying or verdict.warning}))
    if not verdict.allowed:
        return "AdmissionDenied", f"{verdict.request.operation} by {user} denied: {codes or verdict.reason}"
    return "AdmissionWarned", f"{verdict.request.operation} by {user} admitted with warnings: {codes}"


def _admission(verdict: Verdict) -> str:
    """What a break-glass switch does to admission: break glass on turns it off."""
    return "off" if verdict.break_glass == "on" else "on"


def _involved(verdict: Verdict) -> dict[str, object]:
    request = verdict.request
    version = f"{request.group}/{request.version}" if request.group else request.version
    metadata = {"name": request.name or "unnamed", "namespace": request.namespace or None}
    uid = ((request.obj or {}).get("metadata") or {}).get("uid")
    if request.operation != "CREATE" and isinstance(uid, str):
        metadata["uid"] = uid
    return {"apiVersion": version, "kind": request.kind, "metadata": metadata}
