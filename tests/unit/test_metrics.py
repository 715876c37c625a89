"""Metrics from stage results, and readiness."""

from __future__ import annotations

import time

from prometheus_client import generate_latest

from gitopsguard.grants.keeper import Transition
from gitopsguard.model import Action, Change, Drift, ObjectKey, Reason
from gitopsguard.notify.metrics import Metrics, readiness
from gitopsguard.reconcile import ReconcileResult


def test_passes_objects_findings_and_grants_are_counted() -> None:
    metrics = Metrics()
    key = ObjectKey("", "ConfigMap", "shop", "a")
    changes = (Change(key, "v1", Action.CREATED, Reason.APPLIED), Change(key, "v1", Action.UNCHANGED, Reason.IN_SYNC))
    metrics.on_result(ReconcileResult("apps", "c1", changes), 0.2)
    metrics.on_result(ReconcileResult("apps", "c2", (), error="boom"), 0.1)
    metrics.on_findings([("magtape", "LOW", "shop"), ("magtape", "LOW", "shop"), ("pss", "HIGH", "pay")])
    metrics.on_transitions([Transition("g1 (access/grants/g1.yaml)", "activated", ""),
                            Transition("g2 (access/grants/g2.yaml)", "activated", ""),
                            Transition("g1 (access/grants/g1.yaml)", "expired", "")])  # fmt: skip
    text = generate_latest(metrics.registry).decode()
    assert 'gitopsguard_reconcile_total{result="ok",unit="apps"} 1.0' in text
    assert 'gitopsguard_reconcile_total{result="error",unit="apps"} 1.0' in text
    assert 'gitopsguard_object_actions_total{action="created",unit="apps"} 1.0' in text
    assert 'gitopsguard_policy_findings{namespace="shop",policy="magtape",severity="LOW"} 2.0' in text
    assert "gitopsguard_grants_active 1.0" in text


def test_ready_only_after_a_recent_attempt_and_while_the_api_server_answers() -> None:
    metrics = Metrics()
    up = [True]
    ready = readiness(metrics, 30.0, lambda: up[0])
    assert ready() == (False, "no reconcile attempt recently")
    metrics.last_attempt = time.monotonic()
    assert ready() == (True, "ready")
    up[0] = False
    assert ready() == (False, "the API server does not answer")


def test_the_sample_grafana_dashboard_only_queries_metrics_gitopsguard_exports() -> None:
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).parents[2] / "manifests" / "grafana-dashboard.json").read_text())
    exported = {m.name for m in Metrics().registry.collect()}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names = set(re.findall(r"gitopsguard_[a-z_]+", target["expr"]))
            bases = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in names}
            assert bases <= exported, (panel["title"], bases - exported)


def test_drift_repairs_and_prunes_become_events_with_their_reasons() -> None:
    from typing import Any

    from gitopsguard.cluster.events import EventRecorder
    from gitopsguard.commands.result_events import mark_changes

    recorded: list[tuple[str, str, str]] = []

    class Recorder(EventRecorder):
        def __init__(self) -> None:  # no super().__init__(): there is no API server to hold
            pass

        def record(self, body: dict[str, Any], reason: str, message: str, *, warning: bool = True) -> None:
            recorded.append((body["metadata"]["name"], reason, message))

    drift = Drift(deleted=False, writer="x")
    changes = (Change(ObjectKey("", "ConfigMap", "shop", "a"), "v1", Action.CONFIGURED, Reason.DRIFTED, drift=drift),
               Change(ObjectKey("apps", "Deployment", "shop", "b"), "apps/v1", Action.DELETED, Reason.PRUNED),
               Change(ObjectKey("", "ConfigMap", "shop", "c"), "v1", Action.UNCHANGED, Reason.IN_SYNC))  # fmt: skip
    mark_changes(Recorder(), ReconcileResult("apps", "abcdef1234567890", changes))
    assert recorded == [("a", "DriftRepaired", "drift repaired: it was changed by x"),
                        ("b", "Pruned", "left Git at abcdef123456")]  # fmt: skip
