"""Grant state that must survive restarts, kept in the cluster (``ConfigMap/gitopsguard-system/gitopsguard-grants``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from gitopsguard.cluster.rest import RawApi, message_of
from gitopsguard.errors import ClusterError
from gitopsguard.grants.model import Remembered, State

STORE_NAME = "gitopsguard-grants"


@dataclass(frozen=True)
class Entry:
    """One grant as remembered, with what `gitopsguard grants` shows about it."""

    memory: Remembered
    name: str
    subject: str
    role: str
    scope: str
    path: str


def _time(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class GrantStore:
    def __init__(self, raw: RawApi, namespace: str = CONTROLLER_NAMESPACE) -> None:
        self._raw, self.namespace = raw, namespace
        self._path = f"/api/v1/namespaces/{namespace}/configmaps/{STORE_NAME}"

    def load(self) -> dict[str, Entry]:
        status, body = self._raw.request("GET", self._path)
        if status == 404:
            return {}
        if status != 200:
            raise ClusterError(f"ConfigMap/{self.namespace}/{STORE_NAME}: cannot read: {message_of(status, body)}")
        rows = json.loads((body.get("data") or {}).get("grants") or "{}")
        return {
            gid: Entry(Remembered(State(r["state"]), datetime.fromisoformat(r["firstSeen"]), _time(r.get("start")),
                                  _time(r.get("expires")), r.get("approver", ""), r.get("reason", "")),
                       r["name"], r["subject"], r["role"], r["scope"], r["path"])
            for gid, r in rows.items()
        }  # fmt: skip

    def save(self, entries: dict[str, Entry]) -> None:
        rows = {}
        for gid, e in sorted(entries.items()):
            m = e.memory
            rows[gid] = {"state": m.state.value, "firstSeen": m.first_seen.isoformat(),
                         "start": m.start.isoformat() if m.start else "",
                         "expires": m.expires.isoformat() if m.expires else "",
                         "approver": m.approver, "reason": m.reason, "name": e.name, "subject": e.subject,
                         "role": e.role, "scope": e.scope, "path": e.path}  # fmt: skip
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": STORE_NAME, "namespace": self.namespace,
                             "labels": {"app.kubernetes.io/component": "grants"}},
                "data": {"grants": json.dumps(rows, separators=(",", ":"))}}  # fmt: skip
        self._raw.request("POST", "/api/v1/namespaces", body={"metadata": {"name": self.namespace}})
        status, answer = self._raw.request("PATCH", self._path, body=body, content_type="application/apply-patch+yaml",
                                           query={"fieldManager": "gitopsguard", "force": "true"})  # fmt: skip
        if status not in (200, 201):
            raise ClusterError(f"ConfigMap/{self.namespace}/{STORE_NAME}: cannot save: {message_of(status, answer)}")
