"""MagTape's twelve checks: each passes a compliant object and fails a violating one, with MagTape's code
and severity; container checks also cover init containers and every pod-bearing kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gitopsguard.policy.model import Context, Severity
from gitopsguard.policy.packs.magtape import CHECKS, magtape
from tests.unit.policy.workloads import SHAPES, compliant_spec

Spec = dict[str, Any]


def _init(spec: Spec, **fields: Any) -> None:
    spec["initContainers"] = [{"name": "init", "image": "busybox", "resources": {
        "limits": {"cpu": "1", "memory": "1Mi"}, "requests": {"cpu": "1", "memory": "1Mi"}}, **fields}]  # fmt: skip


POD_CASES: list[tuple[str, str, Severity, Callable[[Spec], Any]]] = [
    ("MT1001", "liveness", Severity.LOW, lambda s: s["containers"][0].pop("livenessProbe")),
    ("MT1002", "readiness", Severity.LOW, lambda s: s["containers"][0].pop("readinessProbe")),
    ("MT1003", "limits", Severity.LOW, lambda s: s["containers"][0]["resources"].pop("limits")),
    ("MT1003", "limits-init", Severity.LOW, lambda s: _init(s, resources={"requests": {"cpu": "1", "memory": "1"}})),
    ("MT1004", "requests", Severity.LOW, lambda s: s["containers"][0]["resources"]["requests"].pop("memory")),
    ("MT1004", "requests-init", Severity.LOW, lambda s: _init(s, resources={"limits": {"cpu": "1", "memory": "1"}})),
    ("MT1008", "hostport", Severity.HIGH,
     lambda s: s["containers"][0].update(ports=[{"containerPort": 1, "hostPort": 1}])),
    ("MT1008", "hostport-init", Severity.HIGH, lambda s: _init(s, ports=[{"containerPort": 1, "hostPort": 1}])),
    ("MT1009", "emptydir-unset", Severity.MED, lambda s: s["volumes"][0].update(emptyDir={})),
    ("MT1009", "emptydir-big", Severity.MED, lambda s: s["volumes"][0].update(emptyDir={"sizeLimit": "1Gi"})),
    ("MT1010", "hostpath", Severity.MED, lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}})),
    ("MT2001", "privileged", Severity.HIGH, lambda s: s["containers"][0]["securityContext"].update(privileged=True)),
    ("MT2001", "privileged-init", Severity.HIGH, lambda s: _init(s, securityContext={"privileged": True})),
]  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES)
def test_a_compliant_workload_passes_every_magtape_check(shape: str) -> None:
    assert magtape(SHAPES[shape](compliant_spec()), Context()) == []


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("code", "case", "severity", "breaks"), POD_CASES, ids=[c[1] for c in POD_CASES])
def test_each_container_check_fails_its_violation_with_magtapes_code_and_severity(
    shape: str, code: str, case: str, severity: Severity, breaks: Callable[[Spec], Any]
) -> None:
    spec = compliant_spec()
    breaks(spec)
    hits = magtape(SHAPES[shape](spec), Context())
    assert [(h.code, h.severity) for h in hits] == [(code, severity)], hits
    assert code not in hits[0].message, "every reader prints the code beside the message: named once"


def test_a_pod_without_an_owner_is_a_singleton_mt1007() -> None:
    pod = SHAPES["Pod"](compliant_spec())
    del pod["metadata"]["ownerReferences"]
    assert [(h.code, h.severity) for h in magtape(pod, Context())] == [("MT1007", Severity.LOW)]


def _pdb(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "b"}, "spec": spec}


@pytest.mark.parametrize(("spec", "fails"), [
    ({"minAvailable": "50%"}, False), ({"maxUnavailable": "50%"}, False),
    ({"minAvailable": 2}, True), ({"minAvailable": "90%"}, True), ({"maxUnavailable": "10%"}, True),
])  # fmt: skip
def test_pdb_values_must_be_percentages_within_magtapes_ranges_mt1005(spec: dict[str, Any], fails: bool) -> None:
    hits = magtape(_pdb(**spec), Context())
    assert [h.code for h in hits] == (["MT1005"] if fails else [])


def _service(ports: list[dict[str, Any]], kind: str = "ClusterIP") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "team"},
            "spec": {"type": kind, "ports": ports}}  # fmt: skip


def test_a_port_named_http_on_443_is_a_mismatch_mt1006() -> None:
    assert [h.code for h in magtape(_service([{"name": "http", "port": 443}]), Context())] == ["MT1006"]
    assert magtape(_service([{"name": "https", "port": 443}]), Context()) == []


def test_nodeports_must_fall_in_the_namespaces_range_mt2002() -> None:
    namespace = {"metadata": {"name": "team", "annotations": {"gitopsguard.io/nodeport-range": "30000-30010,30500"}}}
    inside = _service([{"port": 80, "nodePort": 30500}], "NodePort")
    outside = _service([{"port": 80, "nodePort": 31000}], "NodePort")
    assert magtape(inside, Context(namespace)) == []
    assert [h.code for h in magtape(outside, Context(namespace))] == ["MT2002"]
    assert magtape(outside, Context(None)) == []  # MagTape's meaning: no range known, nothing to judge
    broken = {"metadata": {"name": "team", "annotations": {"k8s.t-mobile.com/nodeportRange": "lots"}}}
    assert [h.code for h in magtape(outside, Context(broken))] == ["MT2002"]


def test_the_pack_has_exactly_magtapes_twelve_checks() -> None:
    assert [code for code, _ in CHECKS] == [f"MT10{n:02d}" for n in range(1, 11)] + ["MT2001", "MT2002"]
