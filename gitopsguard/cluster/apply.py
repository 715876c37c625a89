"""Server-side apply against the API server: resolve kinds, dry-run, apply, list what we own, delete.

Every client exception is translated here into a message that starts with the object and its origin.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Container, Iterable, Sequence
from typing import Protocol, TypeVar

from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError
from kubernetes.dynamic.resource import Resource

from gitopsguard.cluster.rest import RawApi, Written, message_of
from gitopsguard.errors import ApplyError
from gitopsguard.model import KubeObject, Manifest, ObjectKey
from gitopsguard.plan.prepare import UNIT_LABEL, Desired

FIELD_MANAGER = "gitopsguard"
APPLY_PATCH = "application/apply-patch+yaml"
T = TypeVar("T")
R = TypeVar("R")


class Applier:
    """Discovery through the dynamic client; every request per object as plain JSON (``RawApi``)."""

    def __init__(self, api: client.ApiClient, *, workers: int = 16) -> None:
        self._dyn = DynamicClient(api)
        self._raw = RawApi(api)
        self.raw = self._raw  # for edges that read single objects (Events on them, for instance)
        self._workers = workers
        self._resources: dict[tuple[str, str], Resource] = {}

    # -- kinds ------------------------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str, where: str) -> Resource:
        cached = self._resources.get((api_version, kind))
        if cached is not None:
            return cached
        try:
            found: Resource = self._dyn.resources.get(api_version=api_version, kind=kind)
        except (ResourceNotFoundError, ResourceNotUniqueError) as error:
            raise ApplyError(
                f"{where}: the server does not serve kind {kind} in {api_version}; check the apiVersion, "
                "or install its CustomResourceDefinition first"
            ) from error
        self._resources[(api_version, kind)] = found
        return found

    def collection_path(self, api_version: str, kind: str) -> str:
        """The URL path listing this kind across all namespaces (for lists and watches)."""
        return str(self.resource(api_version, kind, f"{kind} ({api_version})").path())

    def object_path(self, api_version: str, key: ObjectKey) -> str:
        """The URL path of one object."""
        resource = self.resource(api_version, key.kind, str(key))
        return str(resource.path(name=key.name, namespace=key.namespace or None))

    def namespaced(self, manifest: Manifest) -> bool:
        resource = self.resource(str(manifest.body["apiVersion"]), manifest.key.kind, manifest.origin)
        return bool(resource.namespaced)

    # -- reading ----------------------------------------------------------------------------------------

    def list_owned(self, kinds: Iterable[tuple[str, str]], unit: str) -> dict[ObjectKey, KubeObject]:
        """Every live object of these (apiVersion, kind) pairs that carries this unit's label."""
        selector = {"labelSelector": f"{UNIT_LABEL}={unit}"}
        return self._list(sorted(set(kinds)), None, selector, f"owned by unit {unit}")

    def namespaces(self) -> dict[str, KubeObject]:
        """Every live Namespace by name (policies may look at an object's namespace)."""
        return {key.name: body for key, body in self._list([("v1", "Namespace")], None, None, "").items()}

    def list_in_namespace(self, kinds: Iterable[tuple[str, str]], namespace: str) -> dict[ObjectKey, KubeObject]:
        """Every live object of these (apiVersion, kind) pairs in one namespace, whoever owns it."""
        return self._list(kinds, namespace, None, f"in namespace {namespace}")

    def list_kind(
        self, api_version: str, kind: str, *, namespace: str | None = None, query: dict[str, str] | None = None,
        what: str = "",
    ) -> tuple[dict[ObjectKey, KubeObject], str]:  # fmt: skip
        """Every live object of one kind matching ``query``, and the list's resourceVersion (to watch from)."""
        path = self.resource(api_version, kind, f"{kind} ({api_version})").path(namespace=namespace)
        status, listed = self._raw.request("GET", path, query=query)
        if status != 200:
            raise ApplyError(f"listing {kind} {what}: {message_of(status, listed)}")
        live = {keyed(item, api_version, kind): item for item in listed.get("items") or []}
        return live, str((listed.get("metadata") or {}).get("resourceVersion") or "")

    def _list(
        self, kinds: Iterable[tuple[str, str]], namespace: str | None, query: dict[str, str] | None, what: str
    ) -> dict[ObjectKey, KubeObject]:
        live: dict[ObjectKey, KubeObject] = {}
        for api_version, kind in kinds:
            live |= self.list_kind(api_version, kind, namespace=namespace, query=query, what=what)[0]
        return live

    # -- writing ----------------------------------------------------------------------------------------

    def dry_run_each(self, desired: Sequence[Desired]) -> list[str | KubeObject]:
        """Per object: what the server would store, or why it refuses it."""
        return self._parallel(desired, self._dry_run_one)

    def get(self, desired: Desired) -> KubeObject | None:
        """The live object (whoever owns it), or None."""
        resource = self.resource(desired.api_version, desired.key.kind, str(desired.key))
        status, body = self._raw.request(
            "GET", resource.path(name=desired.key.name, namespace=desired.key.namespace or None)
        )
        return body if status == 200 else None

    def dry_run(self, desired: Sequence[Desired], compare: Container[ObjectKey]) -> dict[ObjectKey, KubeObject]:
        """What the server would store for each object in ``compare`` (the others are only checked, which
        costs the server less); ApplyError listing every object it refuses."""

        def one(d: Desired) -> str | KubeObject | None:
            if d.key in compare:
                return self._dry_run_one(d)
            written = self._write(d, dry_run=True)
            return None if written.ok else self._refusal(d, written, dry_run=True)

        results = self._parallel(desired, one)
        problems = tuple(r for r in results if isinstance(r, str))
        if problems:
            raise ApplyError(f"the server refused {len(problems)} of {len(desired)} objects in a dry run", problems)
        return {d.key: r for d, r in zip(desired, results, strict=True) if isinstance(r, dict)}

    def apply(self, desired: Sequence[Desired]) -> list[str | Written]:
        """Apply for real; each result is the stored resourceVersion, or a message saying why it failed."""

        def one(d: Desired) -> str | Written:
            written = self._write(d, dry_run=False)
            return written if written.ok else self._refusal(d, written, dry_run=False)

        return self._parallel(desired, one)

    def delete(self, key: ObjectKey, api_version: str) -> str | None:
        """Delete one object (background propagation); None when done or already gone, else why not."""
        path = self.resource(api_version, key.kind, str(key)).path(name=key.name, namespace=key.namespace or None)
        status, answer = self._raw.request("DELETE", path, body={"propagationPolicy": "Background"})
        if status in (200, 202, 404):
            return None
        return f"{key}: delete failed: {message_of(status, answer)}"

    def wait_established(self, crds: Iterable[Desired], timeout: float = 30.0) -> None:
        resource = self.resource("apiextensions.k8s.io/v1", "CustomResourceDefinition", "CRDs")
        for crd in crds:
            deadline = time.monotonic() + timeout
            while not _established(self._raw.request("GET", resource.path(name=crd.key.name))[1]):
                if time.monotonic() > deadline:
                    raise ApplyError(f"{crd.key} ({crd.origin}): not Established after {timeout:.0f}s")
                time.sleep(0.2)

    def _dry_run_one(self, desired: Desired) -> str | KubeObject:
        try:
            path = self._path_of(desired)
        except ApplyError as error:
            return str(error)
        status, stored = self._raw.request("PATCH", path, query=_apply_query(dry_run=True), body=desired.payload,
                                           content_type=APPLY_PATCH)  # fmt: skip
        if status in (200, 201):
            return stored
        return self._refusal(desired, Written(status, message=message_of(status, stored)), dry_run=True)

    def _write(self, desired: Desired, *, dry_run: bool) -> Written:
        try:
            path = self._path_of(desired)
        except ApplyError as error:
            return Written(0, message=str(error))
        return self._raw.write("PATCH", path, query=_apply_query(dry_run=dry_run), body=desired.payload,
                               content_type=APPLY_PATCH)  # fmt: skip

    def _path_of(self, desired: Desired) -> str:
        resource = self.resource(desired.api_version, desired.key.kind, f"{desired.key} ({desired.origin})")
        return str(resource.path(name=desired.key.name, namespace=desired.key.namespace or None))

    @staticmethod
    def _refusal(desired: Desired, written: Written, *, dry_run: bool) -> str:
        if written.status == 0:  # never sent: the kind is unknown
            return written.message
        return f"{desired.key} ({desired.origin}): {'dry run' if dry_run else 'apply'} refused: {written.message}"

    def _parallel(self, items: Sequence[T], work: Callable[[T], R]) -> list[R]:
        """``work`` on every item, by a few threads each taking the next item (cheaper than a future each)."""
        if len(items) <= 1:
            return [work(item) for item in items]
        results: list[R | None] = [None] * len(items)
        failure: list[BaseException] = []
        upcoming = iter(range(len(items)))
        lock = threading.Lock()

        def worker() -> None:
            while not failure:
                with lock:
                    index = next(upcoming, None)
                if index is None:
                    return
                try:
                    results[index] = work(items[index])
                except BaseException as error:  # re-raised below, in the caller's thread
                    failure.append(error)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(self._workers, len(items)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failure:
            raise failure[0]
        return results  # type: ignore[return-value]


def keyed(item: KubeObject, api_version: str, kind: str) -> ObjectKey:
    """The key of a listed or watched object, filling in the apiVersion and kind list items come without."""
    item.setdefault("apiVersion", api_version)
    item.setdefault("kind", kind)
    return ObjectKey.of(item)


def _apply_query(*, dry_run: bool) -> dict[str, str]:
    return {"fieldManager": FIELD_MANAGER, "force": "true", **({"dryRun": "All"} if dry_run else {})}


def _established(crd: KubeObject) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


class KindCache(Protocol):
    def objects(self, kind: tuple[str, str]) -> dict[ObjectKey, KubeObject] | None:
        """The owned objects of this (apiVersion, kind), or None when not known."""
        ...


class OwnedSnapshot:
    """What a unit owns, listed (or copied from a watch-fed cache) at most once per kind during one pass.

    Every reader in a pass (the skip test, the drift test, prune) wants the objects as they were before
    the pass wrote anything, and each kind is read before any object of that kind is written, so one
    read serves them all. After writes, take a new snapshot.
    """

    def __init__(self, applier: Applier, unit: str, cache: KindCache | None = None) -> None:
        self._applier, self._unit, self._cache = applier, unit, cache
        self._listed: set[tuple[str, str]] = set()
        self._objects: dict[ObjectKey, KubeObject] = {}

    def of(self, kinds: Iterable[tuple[str, str]]) -> dict[ObjectKey, KubeObject]:
        """The owned objects of these (apiVersion, kind) pairs."""
        wanted = set(kinds)
        for kind in wanted - self._listed:
            cached = self._cache.objects(kind) if self._cache else None
            self._objects |= cached if cached is not None else self._applier.list_owned([kind], self._unit)
            self._listed.add(kind)
        groups = {(api_version.rpartition("/")[0], kind) for api_version, kind in wanted}
        return {key: body for key, body in self._objects.items() if (key.group, key.kind) in groups}
