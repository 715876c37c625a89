"""Prometheus metrics, fed by the same results the audit log and Slack get, and served with the health
endpoints: `/metrics`, `/healthz` (the process serves and none of its threads has died) and `/readyz` (the
last reconcile attempt is recent and the API server answers)."""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gitopsguard import lifeline
from gitopsguard.grants.keeper import Transition
from gitopsguard.model import Action
from gitopsguard.reconcile import ReconcileResult


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.reconcile_seconds = Histogram("gitopsguard_reconcile_duration_seconds", "Duration of reconcile passes",
                                           ["unit", "result"], registry=r)  # fmt: skip
        self.reconciles = Counter("gitopsguard_reconcile", "Reconcile passes by result", ["unit", "result"],
                                  registry=r)  # fmt: skip
        self.objects = Counter("gitopsguard_object_actions", "Objects by action taken", ["unit", "action"], registry=r)
        self.findings = Gauge("gitopsguard_policy_findings", "Standing findings on live workloads",
                              ["policy", "severity", "namespace"], registry=r)  # fmt: skip
        self.grants = Gauge("gitopsguard_grants_active", "Active temporary-access grants", registry=r)
        self.audit = Counter("gitopsguard_audit_records", "Audit records written", registry=r)
        self.notify_failures = Counter("gitopsguard_notification_failures", "Notifications not delivered",
                                       ["destination"], registry=r)  # fmt: skip
        self.notify_dropped = Counter("gitopsguard_notifications_dropped", "Notices pushed out of a full queue",
                                      ["destination"], registry=r)  # fmt: skip
        self.last_attempt = 0.0  # monotonic time of the last reconcile attempt
        self._active: set[str] = set()
        self._lock = threading.Lock()

    def on_result(self, result: ReconcileResult, seconds: float) -> None:
        outcome = "blocked" if result.evaluation is not None and result.error else "error" if result.error else "ok"
        self.reconcile_seconds.labels(result.unit, outcome).observe(seconds)
        self.reconciles.labels(result.unit, outcome).inc()
        for action, count in Tally(c.action for c in result.changes if c.action is not Action.UNCHANGED).items():
            self.objects.labels(result.unit, action.value).inc(count)
        self.last_attempt = time.monotonic()

    def on_findings(self, findings: list[tuple[str, str, str]]) -> None:
        """The live scan's standing findings, as (policy, severity, namespace)."""
        with self._lock:
            self.findings.clear()
            for (policy, severity, namespace), count in Tally(findings).items():
                self.findings.labels(policy, severity, namespace).set(count)

    def watch_grants(self, counts: Callable[[], tuple[int, int]]) -> None:
        """Export the grant keeper's (failed rounds, bad inputs), as ``counts`` gives them at each scrape."""
        self.registry.register(_GrantCounters(counts))

    def on_transitions(self, transitions: list[Transition]) -> None:
        with self._lock:
            for t in transitions:
                if t.event == "activated":
                    self._active.add(t.grant.split(" (")[0])
                elif t.event in ("expired", "revoked", "denied"):
                    self._active.discard(t.grant.split(" (")[0])
            self.grants.set(len(self._active))


class _GrantCounters:
    """The keeper's own counters, read at each scrape (the keeper counts; the metrics only show it)."""

    def __init__(self, counts: Callable[[], tuple[int, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        failures, bad_inputs = self._counts()
        yield CounterMetricFamily("gitopsguard_grant_round_failures", "Grant keeper rounds that failed as a whole "
                                  "(repository unreachable or rewound, policies invalid, API server away)",
                                  value=failures)  # fmt: skip
        yield CounterMetricFamily("gitopsguard_grant_bad_inputs", "Grant files or their evidence denied because "
                                  "reading or deciding them raised", value=bad_inputs)  # fmt: skip


def process_alive() -> tuple[bool, str]:
    """Live unless a background thread died (``lifeline``): the process is then on its way out."""
    return (False, "a background thread died") if lifeline.DEAD.is_set() else (True, "ok")


def serve(
    address: tuple[str, int], metrics: Metrics, ready: Callable[[], tuple[bool, str]],
    live: Callable[[], tuple[bool, str]] | None = None,
) -> ThreadingHTTPServer:  # fmt: skip
    """Serve /metrics, /healthz and /readyz in a daemon thread; returns the server (``.server_port``).
    ``live`` answers /healthz (default: whether any background thread died)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._answer(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok, why = (live or process_alive)()
                self._answer(200 if ok else 503, f"{why}\n".encode(), "text/plain")
            elif self.path == "/readyz":
                ok, why = ready()
                self._answer(200 if ok else 503, f"{why}\n".encode(), "text/plain")
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(address, Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def readiness(metrics: Metrics, interval: float, api_reachable: Callable[[], bool]) -> Callable[[], tuple[bool, str]]:
    """Ready: a reconcile attempt within three intervals (at least a minute), and the API server answers."""

    def check() -> tuple[bool, str]:
        age = time.monotonic() - metrics.last_attempt
        if metrics.last_attempt == 0.0 or age > max(3 * interval, 60.0):
            return False, "no reconcile attempt recently"
        if not api_reachable():
            return False, "the API server does not answer"
        return True, "ready"

    return check
