"""Red team (2026-12-05), held: a misconfigured (or socially engineered) backup URL. gitopsguard promises to refuse
at start a backup
that is the source repository's branch (docs/audit-and-backups.md: "gitopsguard refuses at start a backup that
is the source repository's branch"), because the controller would then commit deleted workloads into the branch
it applies, and whoever can push backups could change what is applied. The check compares URLs as text after a
light normalisation, so the same repository spelled another way Git accepts (scp-like ssh, ssh://, an explicit
default port) passes, with its own credential (a deploy key with write access to the source).
"""

from __future__ import annotations

import pytest

from gitopsguard.backup.gitrepo import GitBackupSpec, refuse_source
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.source import Credentials

SOURCE = "https://git.example.com/org/config.git"


@pytest.mark.parametrize(
    "backup_url",
    [
        "git@git.example.com:org/config.git",  # the same repository over ssh, scp-like syntax
        "ssh://git@git.example.com/org/config.git",  # the same over ssh:// (scheme differs)
        "https://git.example.com:443/org/config",  # https's default port written out
    ],
)
def test_the_source_branch_spelled_another_way_is_refused_as_the_backup(backup_url: str) -> None:
    spec = GitBackupSpec(backup_url, "main", Credentials(token="backup-only-token"))
    with pytest.raises(GitOpsGuardError, match="this is the source repository's branch"):
        refuse_source(spec, SOURCE, "main", Credentials(token="source-token"))
