"""Kubernetes Events (core v1) on the objects gitopsguard acts on or finds at fault."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime

from gitopsguard.cluster.rest import RawApi, message_of
from gitopsguard.model import UNIT_LABEL, KubeObject

COMPONENT = "gitopsguard"
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


class EventRecorder:
    def __init__(self, raw: RawApi, *, unit: str = "") -> None:
        self._raw = raw
        self._instance = socket.gethostname()
        # whose Events these are (`kubectl get events -l gitopsguard.io/unit=UNIT`), when they are one unit's
        # and its name can be a label value (otherwise unlabelled: an Event refused for its label is lost)
        self._labels = {UNIT_LABEL: unit} if _LABEL_VALUE.fullmatch(unit) else {}

    def record(self, body: KubeObject, reason: str, message: str, *, warning: bool = True) -> str | None:
        """Create one Event about ``body``; None when done, else why not (never raises for a refusal)."""
        metadata = body.get("metadata") or {}
        namespace = metadata.get("namespace") or "default"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{metadata.get('name')}.", "namespace": namespace,
                         **({"labels": self._labels} if self._labels else {})},
            "involvedObject": {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
                               "name": metadata.get("name"), "namespace": metadata.get("namespace"),
                               "uid": metadata.get("uid"), "resourceVersion": metadata.get("resourceVersion")},
            "reason": reason, "message": message[:1024], "type": "Warning" if warning else "Normal",
            "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
            "reportingInstance": self._instance, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }  # fmt: skip
        status, answer = self._raw.request("POST", f"/api/v1/namespaces/{namespace}/events", body=event)
        return (
            None if status in (200, 201) else f"Event {reason} on {metadata.get('name')}: {message_of(status, answer)}"
        )
