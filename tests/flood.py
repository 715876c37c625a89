"""A tenant's flood: many hand-made Pods with long names in one namespace, made fast over the project's own
batched transport (they stay Pending: the dev cluster has no kubelet). Used by tests and bench/tenant_flood.py."""

from __future__ import annotations

import json
import time

from gitopsguard.cluster.rest import RawApi, Request


def long_name(index: int, length: int = 250) -> str:
    """A valid Pod name of ``length`` characters (Kubernetes allows 253)."""
    suffix = f"-{index:05d}"
    return "p" * (length - len(suffix)) + suffix


def await_default_account(raw: RawApi, namespace: str, timeout: float = 30.0) -> None:
    """Pods are refused until the controller-manager has made the namespace's default ServiceAccount."""
    deadline = time.monotonic() + timeout
    while raw.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default")[0] != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Namespace/{namespace}: the default ServiceAccount never appeared")
        time.sleep(0.1)


def make_namespace(raw: RawApi, namespace: str, labels: dict[str, str] | None = None) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels or {}}}
    status, answer = raw.request("POST", "/api/v1/namespaces", body=body)
    if status not in (201, 409):
        raise RuntimeError(f"Namespace/{namespace}: {answer}")
    await_default_account(raw, namespace)


def flood(raw: RawApi, namespace: str, count: int, *, length: int = 250, start: int = 0) -> list[str]:
    """Create ``count`` non-compliant Pods (no team label) in ``namespace``; their names."""
    names = [long_name(start + i, length) for i in range(count)]
    requests = [Request("POST", f"/api/v1/namespaces/{namespace}/pods", {}, json.dumps(_pod(name)).encode())
                for name in names]  # fmt: skip
    answers = raw.send_all(requests, 16)
    refused = [answer for answer in answers if answer[0] not in (201, 409)]
    if refused:
        raise RuntimeError(f"{len(refused)} of {count} pods refused in {namespace}, first: {refused[0]!r:.300}")
    return names


def _pod(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "example/x:1"}],
                     "automountServiceAccountToken": False}}  # fmt: skip
