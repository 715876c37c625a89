"""Unit objects (``gitopsguard.io/v1alpha1``, ``manifests/crds/unit.yaml``) on the API server: list them,
write their ``/status``, ask for a reconcile, suspend and resume, and Events on them.

Only the edge: what a Unit means is ``gitopsguard.units``. Bodies stay plain dicts (``LiveUnit.body`` is what
``units.parse_unit`` reads); a status write is a JSON merge patch of ``/status`` carrying the
resourceVersion the status was computed from, so a controller that read an older Unit cannot overwrite what
a newer pass wrote (ConflictError: read it again).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from gitopsguard.cluster.events import EventRecorder
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import NotFoundError, UnitError
from gitopsguard.model import KubeObject

GROUP, VERSION = "gitopsguard.io", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
REQUESTED_AT = "reconcile.gitopsguard.io/requestedAt"  # Flux's reconcile.fluxcd.io/requestedAt, for our Units
FIELD_MANAGER = "gitopsguard-cli"  # suspend/resume and reconcile requests, told apart from the controller's apply
MERGE_PATCH = "application/merge-patch+json"
_PAGE = "500"


@dataclass(frozen=True)
class LiveUnit:
    """One Unit as the API server holds it."""

    namespace: str
    name: str
    generation: int
    resource_version: str
    body: KubeObject

    # read for every Unit in every round of the loop (is it due?): found once per object (bench/units_1000.py);
    # the body is the list's answer, never changed after (a change is a new LiveUnit)
    @functools.cached_property
    def status(self) -> Mapping[str, Any]:
        status = self.body.get("status")
        return status if isinstance(status, Mapping) else {}

    @functools.cached_property
    def requested_at(self) -> str | None:
        """The value of the reconcile request annotation, when a reconcile was asked for."""
        annotations = (self.body.get("metadata") or {}).get("annotations") or {}
        value = annotations.get(REQUESTED_AT) if isinstance(annotations, Mapping) else None
        return value if isinstance(value, str) else None

    @property
    def subject(self) -> str:
        return f"Unit/{self.namespace}/{self.name}"

    @classmethod
    def of(cls, body: KubeObject) -> LiveUnit:
        metadata = body.get("metadata") or {}
        generation = metadata.get("generation")
        return cls(str(metadata.get("namespace") or ""), str(metadata.get("name") or ""),
                   generation if type(generation) is int else 0, str(metadata.get("resourceVersion") or ""),
                   body)  # fmt: skip


class UnitStore:
    """The Units of one cluster, through ``raw`` (whose credentials decide what may be read and written)."""

    def __init__(self, raw: RawApi) -> None:
        self._raw = raw
        self._events = EventRecorder(raw)

    def list(self, namespace: str | None = None) -> tuple[LiveUnit, ...]:
        """Every Unit (of ``namespace``, or of all), in pages. NotFoundError saying how to install the CRD when
        the API server does not serve Units."""
        return tuple(LiveUnit.of(body) for body in self._pages(_collection(namespace)))

    def get(self, namespace: str, name: str) -> LiveUnit:
        """One Unit; NotFoundError naming it when it is absent."""
        return LiveUnit.of(self._raw.get(_path(namespace, name), f"Unit/{namespace}/{name}"))

    def write_status(self, unit: LiveUnit, status: Mapping[str, Any]) -> LiveUnit:
        """Write ``status`` (every field of it) through ``/status``, on condition that the Unit is still at
        ``unit.resource_version``; ConflictError when it moved. The Unit as stored afterwards."""
        patch = {"metadata": {"resourceVersion": unit.resource_version}, "status": dict(status)}
        return LiveUnit.of(self._patch(_path(unit.namespace, unit.name) + "/status", unit.subject, patch))

    def request_reconcile(self, namespace: str, name: str, value: str) -> LiveUnit:
        """Ask the controller to reconcile now: the annotation it serves and copies into
        ``status.lastHandledReconcileAt``."""
        patch = {"metadata": {"annotations": {REQUESTED_AT: value}}}
        return LiveUnit.of(self._patch(_path(namespace, name), f"Unit/{namespace}/{name}", patch))

    def set_suspend(self, namespace: str, name: str, suspend: bool) -> LiveUnit:
        """Set ``spec.suspend`` (as ``flux suspend`` does). The root path's next apply sets it back only if
        its file says ``suspend:`` itself."""
        patch = {"spec": {"suspend": suspend}}
        return LiveUnit.of(self._patch(_path(namespace, name), f"Unit/{namespace}/{name}", patch))

    def record_event(self, unit: LiveUnit, reason: str, message: str, *, warning: bool = False) -> str | None:
        """An Event on the Unit; None when recorded, else why not (never raises for a refusal)."""
        return self._events.record(unit.body, reason, message, warning=warning)

    def _patch(self, path: str, subject: str, patch: Mapping[str, Any]) -> KubeObject:
        return self._raw.call("PATCH", path, subject, query={"fieldManager": FIELD_MANAGER}, body=patch,
                              content_type=MERGE_PATCH)  # fmt: skip

    def _pages(self, path: str) -> Iterator[KubeObject]:
        query = {"limit": _PAGE}
        while True:
            try:
                page = self._raw.get(path, "Units", query=query)
            except NotFoundError as error:
                raise NotFoundError(f"units.{GROUP}: the API server does not serve Units; install the CRD with "
                                    "`kubectl apply -k manifests/crds`") from error  # fmt: skip
            for item in page.get("items") or ():
                if isinstance(item, dict):
                    yield {"apiVersion": API_VERSION, "kind": "Unit", **item}  # a list's items come without them
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
            query = {"limit": _PAGE, "continue": str(token)}


def _collection(namespace: str | None) -> str:
    where = f"/namespaces/{quote(namespace, safe='')}" if namespace else ""
    return f"/apis/{GROUP}/{VERSION}{where}/units"


def _path(namespace: str, name: str) -> str:
    if not namespace or not name:  # else the path would name the collection, of one namespace or of all
        raise UnitError(f"Unit/{namespace}/{name}: give the Unit's namespace and name")
    return f"{_collection(namespace)}/{quote(name, safe='')}"
