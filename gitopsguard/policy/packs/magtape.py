"""MagTape's twelve checks, MT1001 to MT2002, with MagTape's severities and meanings.

Two of MagTape's gaps are closed: the container checks also look at init containers (the probe checks
cannot: Kubernetes refuses probes on init containers), and they cover every pod-bearing kind, not only
Pods, Deployments, StatefulSets and DaemonSets. The Service checks MT1006 and MT2002 always run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gitopsguard.model import KubeObject
from gitopsguard.policy.model import Context, Hit, Severity
from gitopsguard.policy.pods import dig, pod_spec, view

EMPTYDIR_LIMIT_BYTES = 100 * 1000**2  # MagTape: an emptyDir may hold at most 100 megabytes
NODEPORT_ANNOTATIONS = ("gitopsguard.io/nodeport-range", "k8s.t-mobile.com/nodeportRange")
_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_RANGE = re.compile(r"^\s*\d+\s*(-\s*\d+\s*)?(,\s*\d+\s*(-\s*\d+\s*)?)*$")

MagCheck = Callable[[KubeObject, Context], list[Hit]]


def _hit(code: str, severity: Severity, message: str, path: str, fix: str) -> Hit:
    return Hit(code, message, path, severity, NAMES[code], fix=fix)  # every reader prints the code beside it


def _pod_containers(body: KubeObject, *, init: bool) -> list[tuple[str, dict[str, Any]]]:
    pod = view(body)
    if pod is None:
        return []
    return pod.containers("containers", "initContainers") if init else pod.containers("containers")


def _probe(field: str, code: str, label: str) -> MagCheck:
    def check(body: KubeObject, _ctx: Context) -> list[Hit]:
        return [
            _hit(
                code,
                Severity.LOW,
                f"{label} probe missing for container {c.get('name')!r}",
                f"{path}.{field}",
                f"add a {field} to the container",
            )
            for path, c in _pod_containers(body, init=False)
            if not c.get(field)
        ]

    return check


def _resources(kind: str, code: str) -> MagCheck:
    def check(body: KubeObject, _ctx: Context) -> list[Hit]:
        hits = []
        for path, container in _pod_containers(body, init=True):
            values = dig(container, "resources", kind) or {}
            missing = [name for name, key in (("CPU", "cpu"), ("MEM", "memory")) if not values.get(key)]
            if missing:
                hits.append(
                    _hit(
                        code,
                        Severity.LOW,
                        f"resource {kind} missing ({'/'.join(missing)}) for container {container.get('name')!r}",
                        f"{path}.resources.{kind}",
                        f"set resources.{kind}.cpu and .memory",
                    )
                )
        return hits

    return check


def pdb(body: KubeObject, _ctx: Context) -> list[Hit]:
    if body.get("kind") != "PodDisruptionBudget":
        return []
    hits = []
    for field, (low, high) in (("minAvailable", (0, 66)), ("maxUnavailable", (33, 100))):
        value = dig(body, "spec", field)
        if value is None:
            continue
        path = f"spec.{field}"
        if not (isinstance(value, str) and value.strip().endswith("%")):
            hits.append(
                _hit(
                    "MT1005",
                    Severity.HIGH,
                    f"{field} {value!r} should be a percentage, not a number",
                    path,
                    f"write {field} as a percentage between {low}% and {high}%",
                )
            )
        elif not low <= float(value.strip().rstrip("%") or -1) <= high:
            hits.append(
                _hit(
                    "MT1005",
                    Severity.HIGH,
                    f"{field} {value} is not within {low}%-{high}%",
                    path,
                    f"choose {field} between {low}% and {high}%",
                )
            )
    return hits


def port_name_mismatch(body: KubeObject, _ctx: Context) -> list[Hit]:
    if body.get("kind") != "Service":
        return []
    return [
        _hit(
            "MT1006",
            Severity.HIGH,
            "logical port name 'http' does not match port number 443",
            f"spec.ports[{i}].name",
            "name the port https, or use another port number",
        )
        for i, port in enumerate(dig(body, "spec", "ports") or [])
        if isinstance(port, dict) and port.get("name") == "http" and port.get("port") == 443
    ]


def singleton_pod(body: KubeObject, _ctx: Context) -> list[Hit]:
    if body.get("kind") != "Pod" or dig(body, "metadata", "ownerReferences"):
        return []
    return [
        _hit(
            "MT1007",
            Severity.LOW,
            f"{dig(body, 'metadata', 'name')!r} is a singleton pod",
            "metadata",
            "run it from a Deployment, StatefulSet or Job so it is recreated",
        )
    ]


def host_port(body: KubeObject, _ctx: Context) -> list[Hit]:
    return [
        _hit(
            "MT1008",
            Severity.HIGH,
            f"hostPort is configured for container {c.get('name')!r}",
            f"{path}.ports[{i}].hostPort",
            "remove hostPort and use a Service",
        )
        for path, c in _pod_containers(body, init=True)
        for i, port in enumerate(c.get("ports") or [])
        if isinstance(port, dict) and port.get("hostPort")
    ]


def _bytes(quantity: str) -> float | None:
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kMGT]i?)?\s*", quantity)
    if not match:
        return None
    return float(match[1]) * _UNITS[match[2] or ""]


def empty_dir(body: KubeObject, _ctx: Context) -> list[Hit]:
    spec_path, spec = pod_spec(body) or ("", {})
    hits = []
    for index, volume in enumerate(spec.get("volumes") or []):
        if not isinstance(volume, dict) or "emptyDir" not in volume:
            continue
        limit = dig(volume, "emptyDir", "sizeLimit")
        size = _bytes(str(limit)) if limit is not None else None
        if limit is None or size is None or size > EMPTYDIR_LIMIT_BYTES:
            why = "is not set" if limit is None else f"{limit} is not a size of at most 100M"
            hits.append(
                _hit(
                    "MT1009",
                    Severity.MED,
                    f"size limit of emptyDir volume {volume.get('name')!r} {why}",
                    f"{spec_path}.volumes[{index}].emptyDir.sizeLimit",
                    "set emptyDir.sizeLimit to 100M or less",
                )
            )
    return hits


def host_path(body: KubeObject, _ctx: Context) -> list[Hit]:
    spec_path, spec = pod_spec(body) or ("", {})
    return [
        _hit(
            "MT1010",
            Severity.MED,
            f"hostPath is configured for volume {v.get('name')!r}",
            f"{spec_path}.volumes[{i}].hostPath",
            "use a persistentVolumeClaim or emptyDir volume",
        )
        for i, v in enumerate(spec.get("volumes") or [])
        if isinstance(v, dict) and v.get("hostPath") is not None
    ]


def privileged(body: KubeObject, _ctx: Context) -> list[Hit]:
    return [
        _hit(
            "MT2001",
            Severity.HIGH,
            f"privileged security context for container {c.get('name')!r}",
            f"{path}.securityContext.privileged",
            "set securityContext.privileged to false",
        )
        for path, c in _pod_containers(body, init=True)
        if dig(c, "securityContext", "privileged") is True
    ]


def _in_ranges(port: int, ranges: str) -> bool:
    for part in ranges.split(","):
        low, _, high = part.partition("-")
        if int(low) <= port <= int(high or low):
            return True
    return False


def nodeport_range(body: KubeObject, ctx: Context) -> list[Hit]:
    namespace = ctx.namespace
    if body.get("kind") != "Service" or dig(body, "spec", "type") != "NodePort" or namespace is None:
        return []
    annotations = dig(namespace, "metadata", "annotations") or {}
    allowed = next((str(annotations[a]) for a in NODEPORT_ANNOTATIONS if a in annotations), None)
    if allowed is None or allowed.strip().lower() == "na":
        return []
    if not _RANGE.match(allowed):
        return [
            _hit(
                "MT2002",
                Severity.MED,
                f"invalid nodePort range {allowed!r} on namespace {dig(namespace, 'metadata', 'name')!r}",
                "spec.ports",
                "fix the namespace annotation",
            )
        ]
    return [
        _hit(
            "MT2002",
            Severity.MED,
            f"nodePort {port['nodePort']} is outside the namespace's range {allowed}",
            f"spec.ports[{i}].nodePort",
            f"choose a nodePort in {allowed}",
        )
        for i, port in enumerate(dig(body, "spec", "ports") or [])
        if isinstance(port, dict)
        and isinstance(port.get("nodePort"), int)
        and not _in_ranges(port["nodePort"], allowed.replace(" ", ""))
    ]


CHECKS: tuple[tuple[str, MagCheck], ...] = (
    ("MT1001", _probe("livenessProbe", "MT1001", "liveness")),
    ("MT1002", _probe("readinessProbe", "MT1002", "readiness")),
    ("MT1003", _resources("limits", "MT1003")),
    ("MT1004", _resources("requests", "MT1004")),
    ("MT1005", pdb),
    ("MT1006", port_name_mismatch),
    ("MT1007", singleton_pod),
    ("MT1008", host_port),
    ("MT1009", empty_dir),
    ("MT1010", host_path),
    ("MT2001", privileged),
    ("MT2002", nodeport_range),
)


NAMES = {
    "MT1001": "Liveness Probe", "MT1002": "Readiness Probe", "MT1003": "Resource Limits",
    "MT1004": "Resource Requests", "MT1005": "Pod Disruption Budget", "MT1006": "Port Name Mismatch",
    "MT1007": "Singleton Pod", "MT1008": "Host Port", "MT1009": "emptyDir Size Limit", "MT1010": "Host Path",
    "MT2001": "Privileged Pod", "MT2002": "NodePort Range",
}  # fmt: skip


def magtape(body: KubeObject, ctx: Context) -> list[Hit]:
    return [hit for _, check in CHECKS for hit in check(body, ctx)]
