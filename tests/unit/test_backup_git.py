"""Backups as commits to a Git repository of their own (a real bare repository as the remote): one commit per
workload with the reason and findings, replicas racing both land, the source's branch or credential is
refused, and a backup that cannot be pushed raises (so nothing is deleted) without showing the credential."""

from __future__ import annotations

import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitopsguard.backup.gitrepo import GitBackups, GitBackupSpec, refuse_source
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.model import ObjectKey
from gitopsguard.source import Credentials
from tests.gitrepo import bare_remote, git

NOW = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)


def deployment(name: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"replicas": 1}, "status": {"replicas": 1}}  # fmt: skip


def key(name: str) -> ObjectKey:
    return ObjectKey("apps", "Deployment", "shop", name)


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return bare_remote(tmp_path / "backups.git")


def backups(remote: Path, workdir: Path, branch: str = "gitopsguard-backups") -> GitBackups:
    return GitBackups(GitBackupSpec(f"file://{remote}", branch), workdir)


def log(remote: Path, branch: str = "gitopsguard-backups") -> list[str]:
    return git(remote, "log", "--format=%H", branch).splitlines()


def test_a_backup_is_one_commit_with_the_reason_and_findings_and_the_manifest_kubectl_applies(
    remote: Path, tmp_path: Path
) -> None:
    saved = backups(remote, tmp_path / "w").under("live-scan").save(
        key("web"), deployment("web"), NOW, reason="non-compliant past its grace period (live scan)",
        findings=["GG3001 HIGH (team-label): no team label"],
    )  # fmt: skip
    (commit,) = log(remote)
    message = git(remote, "log", "-1", "--format=%B", commit)
    assert "Deployment/shop/web" in message and "grace period" in message and "GG3001 HIGH" in message
    (path,) = git(remote, "show", "--name-only", "--format=", commit).splitlines()
    assert path.startswith("live-scan/shop/Deployment-web-") and path in saved.where and commit[:12] in saved.where
    manifest = yaml.safe_load(git(remote, "show", f"{commit}:{path}"))
    assert manifest["metadata"] == {"name": "web", "namespace": "shop"} and "status" not in manifest
    assert f"checkout {commit}" in saved.restore and f"kubectl apply -f backups/{path}" in saved.restore


def test_two_replicas_backing_up_at_once_both_land_on_the_branch(remote: Path, tmp_path: Path) -> None:
    replicas = [backups(remote, tmp_path / f"replica-{i}") for i in range(2)]
    errors: list[BaseException] = []

    def save(i: int) -> None:
        try:
            for n in range(3):
                replicas[i].save(key(f"w{i}-{n}"), deployment(f"w{i}-{n}"), NOW, reason="test")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(log(remote)) == 6
    files = git(remote, "ls-tree", "-r", "--name-only", "gitopsguard-backups").splitlines()
    assert len(files) == 6


def test_the_source_repositorys_branch_is_refused_as_the_backup(tmp_path: Path) -> None:
    spec = GitBackupSpec(f"file://{tmp_path}/repo.git/", "main", Credentials(token="backup-token"))
    with pytest.raises(GitOpsGuardError, match="this is the source repository's branch"):
        refuse_source(spec, str(tmp_path / "repo.git"), "main", Credentials())
    refuse_source(spec, str(tmp_path / "repo.git"), "production", Credentials())  # another branch: its own


@pytest.mark.parametrize("how", ["token", "url login", "ssh key"])
def test_the_source_repositorys_credential_is_refused_for_the_backup(how: str, tmp_path: Path) -> None:
    key_file = tmp_path / "id"
    key_file.write_text("KEY")
    source = Credentials(token="s3cret", ssh_key_file=key_file)
    spec = {"token": GitBackupSpec("https://git.example.com/backups.git", "b", Credentials(token="s3cret")),
            "url login": GitBackupSpec("https://bot:s3cret@git.example.com/backups.git", "b"),
            "ssh key": GitBackupSpec("git@git.example.com:backups.git", "b", Credentials(ssh_key_file=key_file)),
            }[how]  # fmt: skip
    with pytest.raises(GitOpsGuardError, match="its credential is the source repository's") as refused:
        refuse_source(spec, "https://git.example.com/config.git", "main", source)
    assert "s3cret" not in str(refused.value)


def test_a_backup_that_cannot_be_pushed_raises_without_showing_the_credential(tmp_path: Path) -> None:
    spec = GitBackupSpec("https://127.0.0.1:9/backups.git", "b", Credentials(token="tok-ABCDEF123"))
    with pytest.raises(GitOpsGuardError, match="the workload is kept, not deleted") as failed:
        GitBackups(spec, tmp_path / "w").save(key("web"), deployment("web"), NOW, reason="test")
    assert "tok-ABCDEF123" not in str(failed.value)


def test_a_link_planted_in_the_backup_branch_is_never_written_through(remote: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    planted = tmp_path / "planter"
    git(tmp_path, "clone", "--quiet", str(remote), str(planted))
    (planted / "shop").symlink_to(outside)
    git(planted, "add", "shop")
    git(planted, "commit", "--quiet", "-m", "plant")
    git(planted, "push", "--quiet", "origin", "HEAD:refs/heads/gitopsguard-backups")
    with pytest.raises(GitOpsGuardError, match="shop is not a folder"):
        backups(remote, tmp_path / "w").save(key("web"), deployment("web"), NOW, reason="test")
    assert list(outside.iterdir()) == []


def test_a_hostile_name_and_message_stay_one_safe_file_and_text(remote: Path, tmp_path: Path) -> None:
    name = "a" * 240 + "\u202e../\x00"
    saved = backups(remote, tmp_path / "w").save(key(name), deployment(name), NOW, reason="r\x00\x1b[31m",
                                                 findings=["line\nbreak"])  # fmt: skip
    (path,) = git(remote, "ls-tree", "-r", "--name-only", "gitopsguard-backups").splitlines()
    assert path.startswith("shop/Deployment-") and ".." not in path and len(path.split("/")[-1]) < 200
    assert path in saved.where
    message = subprocess.run(["git", "-C", str(remote), "log", "-1", "--format=%B", "gitopsguard-backups"],
                             capture_output=True, check=True).stdout  # fmt: skip
    assert b"\x00" not in message and b"\x1b" not in message


def test_reconcile_refuses_a_backup_on_the_source_branch_before_doing_anything(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gitopsguard.cli import main

    source = tmp_path / "config.git"
    source.mkdir()
    git(source, "init", "--quiet", "--bare", "-b", "main")
    result = CliRunner().invoke(main, [
        "reconcile", "--repo", str(source), "--path", "apps", "--workdir", str(tmp_path / "w"),
        "--kubeconfig", str(tmp_path / "absent"), "--backup-git-url", f"file://{source}", "--backup-git-branch", "main",
    ])  # fmt: skip
    assert result.exit_code == 2 and "this is the source repository's branch" in result.output


def test_reconcile_refuses_a_backup_token_that_is_the_source_token_before_doing_anything(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gitopsguard.cli import main

    result = CliRunner().invoke(main, [
        "reconcile", "--repo", "https://git.example.com/config.git", "--path", "apps", "--workdir", str(tmp_path),
        "--kubeconfig", str(tmp_path / "absent"), "--backup-git-url", "https://git.example.com/backups.git",
    ], env={"GITOPSGUARD_GIT_TOKEN": "same-s3cret", "GITOPSGUARD_BACKUP_GIT_TOKEN": "same-s3cret"})  # fmt: skip
    assert result.exit_code == 2 and "its credential is the source repository's" in result.output
    assert "same-s3cret" not in result.output
