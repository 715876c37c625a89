"""Backing up an object's manifest to disk before anything deletes it.

Names come from the cluster, so from tenants: a file name is built only from safe characters and stays
short; anything else (too long, unsafe characters, ``..``) is named by a sha256 of the original, so two
objects never share a file and no name can climb out of the backup directory or follow a planted link.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime
from pathlib import Path

import yaml

from gitopsguard.errors import GitOpsGuardError
from gitopsguard.model import KubeObject, ObjectKey

_SERVER_FIELDS = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink")
MAX_COMPONENT = 255  # bytes in one path component on every file system we run on
_READABLE = 64  # characters of a long or unsafe name kept, for people, before its digest
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_UNSAFE_CHARACTER = re.compile(r"[^A-Za-z0-9._-]")


def safe_component(text: str, limit: int = _READABLE) -> str:
    """``text`` itself when it is short and made of safe characters; else a readable prefix (unsafe characters
    replaced) and a sha256 of the whole, so that different texts never give the same component."""
    if len(text) <= limit and _SAFE.fullmatch(text) and ".." not in text:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    readable = _UNSAFE_CHARACTER.sub("_", text[:limit]).strip("._")
    return f"{readable}~{digest}" if readable else f"~{digest}"


def backup_path(directory: Path, key: ObjectKey, now: datetime, attempt: int = 0) -> Path:
    """Where ``key`` is backed up at ``now``: one folder per namespace, one file per object and time."""
    folder = safe_component(key.namespace) if key.namespace else "_cluster"
    again = f"-{attempt}" if attempt else ""
    stamp = f"{now:%Y%m%dT%H%M%SZ}{again}"
    return directory / folder / f"{safe_component(key.kind)}-{safe_component(key.name)}-{stamp}.yaml"


def backup(directory: Path, key: ObjectKey, body: KubeObject, now: datetime) -> Path:
    """Write a re-applicable manifest (server fields dropped), fsynced; the path written. A file already there
    (an earlier backup in the same second, or anything planted) is never overwritten nor followed."""
    text = manifest_text(body)
    path = backup_path(directory, key, now)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 100):
            try:
                _write_new(path, text)
                return path
            except FileExistsError:
                path = backup_path(directory, key, now, attempt)
        raise FileExistsError(path)
    except OSError as error:
        raise GitOpsGuardError(
            f"{path}: cannot back up {key} before deleting it ({error.strerror or error}); it is kept, not deleted: "
            "free space or fix the permissions of the backup directory"
        ) from error


def manifest_text(body: KubeObject) -> bytes:
    """The object as a manifest ``kubectl apply -f`` takes again: status and server fields dropped."""
    clean = {k: v for k, v in body.items() if k != "status"}
    clean["metadata"] = {k: v for k, v in (body.get("metadata") or {}).items() if k not in _SERVER_FIELDS}
    return yaml.safe_dump(clean, sort_keys=False).encode()


def write_new(path: Path, text: bytes) -> None:
    """Create ``path`` with ``text``, fsynced; never over an existing file, never through a link."""
    _write_new(path, text)


def _write_new(path: Path, text: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    with os.fdopen(os.open(path, flags, 0o600), "wb") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
