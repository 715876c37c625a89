"""Server-side apply against the API server: resolve kinds, dry-run, apply, list what we own, delete.

Every client exception is translated here into a message that starts with the object and its origin.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError, ResourceNotUniqueError
from kubernetes.dynamic.resource import Resource

from gitopsguard.errors import ApplyError
from gitopsguard.model import KubeObject, Manifest, ObjectKey
from gitopsguard.plan.prepare import UNIT_LABEL, Desired

FIELD_MANAGER = "gitopsguard"
T = TypeVar("T")
R = TypeVar("R")


class Applier:
    def __init__(self, api: client.ApiClient, *, workers: int = 16) -> None:
        self._dyn = DynamicClient(api)
        self._workers = workers

    # -- kinds ------------------------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str, where: str) -> Resource:
        try:
            found: Resource = self._dyn.resources.get(api_version=api_version, kind=kind)
        except (ResourceNotFoundError, ResourceNotUniqueError) as error:
            raise ApplyError(
                f"{where}: the server does not serve kind {kind} in {api_version}; check the apiVersion, "
                "or install its CustomResourceDefinition first"
            ) from error
        return found

    def namespaced(self, manifest: Manifest) -> bool:
        resource = self.resource(str(manifest.body["apiVersion"]), manifest.key.kind, manifest.origin)
        return bool(resource.namespaced)

    # -- reading ----------------------------------------------------------------------------------------

    def list_owned(self, kinds: Iterable[tuple[str, str]], unit: str) -> dict[ObjectKey, KubeObject]:
        """Every live object of these (apiVersion, kind) pairs that carries this unit's label."""
        live: dict[ObjectKey, KubeObject] = {}
        for api_version, kind in sorted(set(kinds)):
            resource = self.resource(api_version, kind, f"{kind} ({api_version})")
            try:
                listed = self._dyn.get(resource, label_selector=f"{UNIT_LABEL}={unit}")
            except DynamicApiError as error:
                raise ApplyError(f"listing {kind} owned by unit {unit}: {_reason(error)}") from error
            for item in listed.to_dict().get("items", []):
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                live[ObjectKey.of(item)] = item
        return live

    # -- writing ----------------------------------------------------------------------------------------

    def dry_run(self, desired: Sequence[Desired]) -> dict[ObjectKey, KubeObject]:
        """What the server would store for each object; ApplyError listing every object it refuses."""
        results = self._parallel(desired, lambda d: self._apply_one(d, dry_run=True))
        problems = tuple(str(r) for r in results if isinstance(r, str))
        if problems:
            raise ApplyError(f"the server refused {len(problems)} of {len(desired)} objects in a dry run", problems)
        return {d.key: r for d, r in zip(desired, results, strict=True) if isinstance(r, dict)}

    def apply(self, desired: Sequence[Desired]) -> list[str | KubeObject]:
        """Apply for real; each result is the stored object, or a message saying why it failed."""
        return self._parallel(desired, lambda d: self._apply_one(d, dry_run=False))

    def delete(self, key: ObjectKey, api_version: str) -> str | None:
        """Delete one object (background propagation); None when done or already gone, else why not."""
        resource = self.resource(api_version, key.kind, str(key))
        try:
            self._dyn.delete(resource, name=key.name, namespace=key.namespace or None,
                             body={"propagationPolicy": "Background"})  # fmt: skip
        except DynamicApiError as error:
            if error.status != 404:
                return f"{key}: delete failed: {_reason(error)}"
        return None

    def wait_established(self, crds: Iterable[Desired], timeout: float = 30.0) -> None:
        resource = self.resource("apiextensions.k8s.io/v1", "CustomResourceDefinition", "CRDs")
        for crd in crds:
            deadline = time.monotonic() + timeout
            while not _established(self._dyn.get(resource, name=crd.key.name).to_dict()):
                if time.monotonic() > deadline:
                    raise ApplyError(f"{crd.key} ({crd.origin}): not Established after {timeout:.0f}s")
                time.sleep(0.2)

    def _apply_one(self, desired: Desired, *, dry_run: bool) -> str | KubeObject:
        where = f"{desired.key} ({desired.origin})"
        try:
            resource = self.resource(desired.api_version, desired.key.kind, where)
            extra: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
            stored = self._dyn.server_side_apply(
                resource, body=desired.body, name=desired.key.name, namespace=desired.key.namespace or None,
                field_manager=FIELD_MANAGER, force_conflicts=True, **extra,
            )  # fmt: skip
        except ApplyError as error:
            return str(error)
        except DynamicApiError as error:
            return f"{where}: {'dry run' if dry_run else 'apply'} refused: {_reason(error)}"
        result: KubeObject = stored.to_dict()
        return result

    def _parallel(self, items: Sequence[T], work: Callable[[T], R]) -> list[R]:
        if len(items) <= 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            return list(pool.map(work, items))


def _established(crd: KubeObject) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _reason(error: DynamicApiError) -> str:
    try:
        message = json.loads(error.body or "").get("message")
    except (TypeError, ValueError, AttributeError):
        message = None
    return str(message or f"{error.status} {error.reason}")
