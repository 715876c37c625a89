"""Backing up an object's manifest to disk before anything deletes it."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import yaml

from gitopsguard.errors import GitOpsGuardError
from gitopsguard.model import KubeObject, ObjectKey

_SERVER_FIELDS = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink")


def backup(directory: Path, key: ObjectKey, body: KubeObject, now: datetime) -> Path:
    """Write a re-applicable manifest (server fields dropped), fsynced; the path written."""
    clean = {k: v for k, v in body.items() if k != "status"}
    clean["metadata"] = {k: v for k, v in (body.get("metadata") or {}).items() if k not in _SERVER_FIELDS}
    path = directory / (key.namespace or "_cluster") / f"{key.kind}-{key.name}-{now:%Y%m%dT%H%M%SZ}.yaml"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            yaml.safe_dump(clean, handle, sort_keys=False)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise GitOpsGuardError(f"{path}: cannot back up {key} before deleting it ({error.strerror})") from error
    return path
