"""Where a deleted object's manifest was saved, and how to get it back: what every deletion notice says."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from gitopsguard.model import KubeObject, ObjectKey


@dataclass(frozen=True)
class Saved:
    """A backup: where it is (no credential in it), the command that restores it, how to adopt it into Git."""

    where: str
    restore: str
    adopt: str

    def __str__(self) -> str:
        return self.where


class Backups(Protocol):
    """Durable storage for manifests about to be deleted. ``save`` returns only once the manifest is durable
    (fsynced, or pushed); it raises GitOpsGuardError otherwise, and then nothing may be deleted."""

    def save(
        self, key: ObjectKey, body: KubeObject, now: datetime, *, reason: str, findings: Sequence[str] = ()
    ) -> Saved: ...

    def under(self, folder: str) -> Backups:
        """The same storage, with this folder (a unit's name) for what is saved through it."""
        ...


def adoption(file: str) -> str:
    return (f"or adopt it into Git: fix {file} and add it to the source repository under the unit's path in a "
            "pull request")  # fmt: skip


class DirectoryBackups:
    """Backups as files in a directory: a PersistentVolumeClaim keeps them past the Pod."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(
        self, key: ObjectKey, body: KubeObject, now: datetime, *, reason: str, findings: Sequence[str] = ()
    ) -> Saved:
        from gitopsguard.backup.files import backup

        path = backup(self.directory, key, body, now)
        return Saved(str(path), f"kubectl apply -f {path}", adoption(str(path)))

    def under(self, folder: str) -> DirectoryBackups:
        return DirectoryBackups(self.directory / folder)


def storage(target: Path | Backups) -> Backups:
    """A directory's backups, or the storage itself."""
    return DirectoryBackups(target) if isinstance(target, Path) else target
