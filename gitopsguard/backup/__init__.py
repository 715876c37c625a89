"""Backing up a workload's manifest before anything deletes it: to a directory (a PersistentVolumeClaim) or
to a Git repository of its own (one commit per deleted workload). No backup, no deletion."""

from gitopsguard.backup.files import MAX_COMPONENT, backup, backup_path, safe_component
from gitopsguard.backup.saved import Backups, DirectoryBackups, Saved, storage

__all__ = [
    "MAX_COMPONENT",
    "Backups",
    "DirectoryBackups",
    "Saved",
    "backup",
    "backup_path",
    "safe_component",
    "storage",
]
