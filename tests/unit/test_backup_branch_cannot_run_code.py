"""Red team (2026-12-05), held: someone who can push to the backup branch (a hostile backup remote, or whoever holds
its write
credential). ``backup/gitrepo.py`` runs git with ``HOME`` set to the backup clone itself, and checks the
branch out there: the branch's ``.gitconfig`` file becomes git's global configuration for every later git
command. ``core.hooksPath = hooks`` plus an executable ``hooks/post-commit`` in the branch (``--no-verify``
skips pre-commit and commit-msg, not post-commit; pre-push is not skipped either) runs the attacker's program
inside the controller, with its service account and the source repository's credential (the mounted
gitopsguard-git Secret), the very separation the backup's own credential is there to keep.

Guarantee broken (docs/audit-and-backups.md): "Someone who can push to the backup branch can add files there,
not make gitopsguard write outside its clone"; backups "never the source's credential".
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gitopsguard.backup.gitrepo import GitBackups, GitBackupSpec
from gitopsguard.model import ObjectKey
from tests.gitrepo import git

NOW = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)


def test_a_gitconfig_in_the_backup_branch_runs_nothing_in_the_controller(tmp_path: Path) -> None:
    remote = tmp_path / "backups.git"
    remote.mkdir()
    git(remote, "init", "--quiet", "--bare", "-b", "main")
    planted, pwned = tmp_path / "planter", tmp_path / "pwned"
    git(tmp_path, "clone", "--quiet", str(remote), str(planted))
    (planted / ".gitconfig").write_text("[core]\n\thooksPath = hooks\n")
    (planted / "hooks").mkdir()
    hook = planted / "hooks" / "post-commit"
    hook.write_text(f"#!/bin/sh\nid > '{pwned}'\n")  # anything: read /etc/gitopsguard/git/token, kubectl ...
    hook.chmod(0o755)
    git(planted, "add", ".gitconfig", "hooks")
    git(planted, "-c", "core.hooksPath=/dev/null", "commit", "--quiet", "-m", "a harmless-looking commit")  # not ours
    assert not pwned.exists()
    git(planted, "push", "--quiet", "origin", "HEAD:refs/heads/gitopsguard-backups")
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}
    backups = GitBackups(GitBackupSpec(f"file://{remote}", "gitopsguard-backups"), tmp_path / "w").under("live-scan")
    backups.save(ObjectKey("apps", "Deployment", "shop", "web"), body, NOW, reason="test")
    assert not pwned.exists(), f"the backup branch ran a program in the controller: {pwned.read_text()}"
