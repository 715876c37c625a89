"""What the live scan must remember across restarts, kept in one ConfigMap in the controller's namespace:
for each non-compliant workload (by uid), when it was first found so (the grace period counts from there,
so a restart does not reset it) and the findings last announced (so nothing is announced twice)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from gitopsguard.cluster.rest import RawApi, message_of
from gitopsguard.errors import ClusterError

STATE_NAME = "gitopsguard-live-scan"


@dataclass(frozen=True)
class Tracked:
    subject: str  # Kind/namespace/name, for people reading the ConfigMap
    first_seen: datetime
    announced: str  # digest of the findings last announced


class ScanStateStore:
    def __init__(self, raw: RawApi, namespace: str = CONTROLLER_NAMESPACE) -> None:
        self._raw, self.namespace = raw, namespace
        self._path = f"/api/v1/namespaces/{namespace}/configmaps"
        self._namespace_made = False

    def load(self) -> dict[str, Tracked]:
        status, body = self._raw.request("GET", f"{self._path}/{STATE_NAME}")
        if status == 404:
            return {}
        if status != 200:
            raise ClusterError(f"ConfigMap/{self.namespace}/{STATE_NAME}: cannot read: {message_of(status, body)}")
        rows = json.loads((body.get("data") or {}).get("tracked") or "{}")
        return {uid: Tracked(r[0], datetime.fromisoformat(r[1]), r[2]) for uid, r in rows.items()}

    def save(self, tracked: dict[str, Tracked]) -> None:
        rows = {uid: [t.subject, t.first_seen.isoformat(), t.announced] for uid, t in sorted(tracked.items())}
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": STATE_NAME, "namespace": self.namespace,
                             "labels": {"app.kubernetes.io/component": "live-scan"}},
                "data": {"tracked": json.dumps(rows, separators=(",", ":"))}}  # fmt: skip
        if not self._namespace_made:  # 409 when it exists: fine
            self._raw.request("POST", "/api/v1/namespaces", body={"metadata": {"name": self.namespace}})
            self._namespace_made = True
        status, answer = self._raw.request("PATCH", f"{self._path}/{STATE_NAME}", body=body,
                                           query={"fieldManager": "gitopsguard", "force": "true"},
                                           content_type="application/apply-patch+yaml")  # fmt: skip
        if status not in (200, 201):
            raise ClusterError(f"ConfigMap/{self.namespace}/{STATE_NAME}: cannot save: {message_of(status, answer)}")
