"""`gitopsguard request`: a signed commit on a new branch, pushed, and a pull request opened via the API."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gitopsguard.cli import main
from tests.fakegithub import TOKEN, FakeGitHub
from tests.gitrepo import Upstream, git


def test_request_pushes_a_signed_grant_on_a_branch_and_opens_a_pull_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = Upstream(tmp_path / "git")
    upstream.write("README.md", "cluster repo\n")
    upstream.commit()
    key = tmp_path / "alice"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(key)], check=True)
    monkeypatch.setenv("GITOPSGUARD_GITHUB_TOKEN", TOKEN)
    for name, value in (("GIT_AUTHOR_NAME", "alice"), ("GIT_AUTHOR_EMAIL", "a@x"), ("GIT_COMMITTER_NAME", "alice"),
                        ("GIT_COMMITTER_EMAIL", "a@x")):  # fmt: skip
        monkeypatch.setenv(name, value)
    fake = FakeGitHub()
    with fake.serving() as url:
        result = CliRunner().invoke(main, [
            "request", "--policy", "debugging", "--role", "view", "--namespace", "payments", "--for", "2h",
            "--reason", "INC-7: read payments pods", "--user", "alice", "--repo-dir", str(upstream.work),
            "--signing-key", str(key), "--github-repo", fake.slug, "--github-api-url", url,
        ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "https://github.com/org/cluster-config/pull/1" in result.output
    (created,) = fake.created
    assert created["base"] == "main" and created["head"].startswith("access/alice-debugging-")
    branch = created["head"]
    files = git(upstream.bare, "ls-tree", "-r", "--name-only", branch).split()
    (path,) = [f for f in files if f.startswith("access/grants/")]
    grant = yaml.safe_load(git(upstream.bare, "show", f"{branch}:{path}"))
    assert grant["spec"] == {"policy": "debugging", "subject": {"kind": "User", "name": "alice"},
                             "role": {"kind": "ClusterRole", "name": "view"}, "duration": "2h",
                             "reason": "INC-7: read payments pods", "namespace": "payments"}  # fmt: skip
    allowed = tmp_path / "allowed"
    allowed.write_text(f"alice {' '.join((tmp_path / 'alice.pub').read_text().split()[:2])}\n")
    status = git(upstream.bare, "-c", f"gpg.ssh.allowedSignersFile={allowed}", "log", "-1", "--format=%G?%GS", branch)
    assert status == "Galice"
    assert TOKEN not in result.output


def test_request_refuses_a_bad_duration_before_writing_anything(tmp_path: Path) -> None:
    upstream = Upstream(tmp_path / "git")
    upstream.write("README.md", "x\n")
    upstream.commit()
    arguments = ["request", "--policy", "p", "--role", "view", "--for", "forever", "--reason", "r", "--user", "alice"]
    result = CliRunner().invoke(main, [*arguments, "--repo-dir", str(upstream.work)])
    assert result.exit_code == 2 and "--for: 'forever' is not a duration" in result.output
    assert git(upstream.bare, "branch", "--list") == "* main"
