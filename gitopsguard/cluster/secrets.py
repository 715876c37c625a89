"""Reading one Secret's data for a component that must not hold an API client itself (the notifier's team
webhooks: ``notify.slack.SecretReader``). The composition root hands it over; the values stay base64, as the
API server sends them, and are never logged."""

from __future__ import annotations

from typing import Any

from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import NotFoundError


class SecretData:
    """``Secret/<namespace>/<name>``'s ``data`` map, or None when there is no such Secret. Other failures are
    the typed ClusterError of the verbs (ForbiddenError, UnreachableError, ...), the Secret named first."""

    def __init__(self, raw: RawApi) -> None:
        self._raw = raw

    def __call__(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            body = self._raw.get(f"/api/v1/namespaces/{namespace}/secrets/{name}", f"Secret/{namespace}/{name}")
        except NotFoundError:
            return None
        data = body.get("data")
        return data if isinstance(data, dict) else {}
