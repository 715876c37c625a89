"""Red team (2026-12-05), held: someone who can push to the backup branch (a hostile backup remote). docs/audit-and-
backups.md: they
"can add files there, not make gitopsguard write outside its clone: a folder that is a symbolic link in the
branch refuses the backup". A *file* where the namespace's folder goes is not refused: ``GitBackups._commit``
calls ``mkdir`` outside its ``try``, so a raw FileExistsError (not a GitOpsGuardError) leaves ``save``. The
callers catch GitOpsGuardError only (sync/unmanaged.py ``_act_on``: "this workload alone is held: the unit's
pass goes on"), so one file in the backup branch crashes every unit's sweep pass that backs up a workload of
that namespace, instead of holding that workload with a message naming the branch.

Guarantee broken: errors are translated once at the edge into the project's hierarchy, naming the object and
what to do (the standards; docs/threat-model.md's fail-closed backups with a message).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gitopsguard.backup.gitrepo import GitBackups, GitBackupSpec
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.model import ObjectKey
from tests.gitrepo import git

NOW = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)


def test_a_file_planted_where_the_namespace_folder_goes_refuses_the_backup_with_a_message(tmp_path: Path) -> None:
    remote = tmp_path / "backups.git"
    remote.mkdir()
    git(remote, "init", "--quiet", "--bare", "-b", "main")
    planted = tmp_path / "planter"
    git(tmp_path, "clone", "--quiet", str(remote), str(planted))
    (planted / "live-scan").mkdir()
    (planted / "live-scan" / "shop").write_text("not a folder\n")  # where live-scan/shop/ must be a folder
    git(planted, "add", "live-scan")
    git(planted, "commit", "--quiet", "-m", "plant")
    git(planted, "push", "--quiet", "origin", "HEAD:refs/heads/gitopsguard-backups")
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}
    storage = GitBackups(GitBackupSpec(f"file://{remote}", "gitopsguard-backups"), tmp_path / "w").under("live-scan")
    with pytest.raises(GitOpsGuardError, match="the workload is kept, not deleted"):  # today: FileExistsError
        storage.save(ObjectKey("apps", "Deployment", "shop", "web"), body, NOW, reason="test")
