"""source: real git repositories; history may only move forward; credentials never show."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.devcluster.ports import free_port
from gitopsguard.errors import SourceError
from gitopsguard.source import Credentials, GitSource, SourceSpec
from tests import gitrepo
from tests.gitrepo import git


class Upstream(gitrepo.Upstream):
    def commit_file(self, name: str, text: str) -> str:
        self.write(name, text)
        return super().commit(f"change {name}")


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return Upstream(tmp_path)


def test_first_fetch_clones_and_checks_out_the_branch_head(upstream: Upstream, tmp_path: Path) -> None:
    head = upstream.commit_file("a.yaml", "one")
    revision = GitSource(SourceSpec(upstream.url), tmp_path / "gg").fetch(last_applied=None)
    assert revision.commit == head
    assert (revision.checkout / "a.yaml").read_text() == "one"
    assert revision.summary == "change a.yaml"


def test_later_fetch_moves_forward_and_removes_deleted_files(upstream: Upstream, tmp_path: Path) -> None:
    first = upstream.commit_file("a.yaml", "one")
    source = GitSource(SourceSpec(upstream.url), tmp_path / "gg")
    source.fetch(last_applied=None)
    (upstream.work / "a.yaml").unlink()
    second = upstream.commit_file("b.yaml", "two")
    revision = source.fetch(last_applied=first)
    assert revision.commit == second
    assert not (revision.checkout / "a.yaml").exists()


def test_force_push_that_rewrites_applied_history_is_refused(upstream: Upstream, tmp_path: Path) -> None:
    upstream.commit_file("a.yaml", "one")
    applied = upstream.commit_file("a.yaml", "two")
    source = GitSource(SourceSpec(upstream.url), tmp_path / "gg")
    source.fetch(last_applied=None)
    git(upstream.work, "reset", "-q", "--hard", "HEAD~1")
    rewritten = upstream.commit_file("c.yaml", "rewritten")
    with pytest.raises(SourceError, match=r"does not contain the applied commit.*--allow-rewind"):
        source.fetch(last_applied=applied)
    assert source.fetch(last_applied=applied, allow_rewind=True).commit == rewritten


def test_rollback_to_an_older_commit_is_refused(upstream: Upstream, tmp_path: Path) -> None:
    older = upstream.commit_file("a.yaml", "one")
    applied = upstream.commit_file("a.yaml", "two")
    source = GitSource(SourceSpec(upstream.url), tmp_path / "gg")
    source.fetch(last_applied=None)
    git(upstream.work, "push", "-q", "--force", "origin", f"{older}:main")
    with pytest.raises(SourceError, match="force-push or a rollback"):
        source.fetch(last_applied=applied)


def test_unreachable_remote_fails_clearly_and_keeps_the_last_checkout(upstream: Upstream, tmp_path: Path) -> None:
    upstream.commit_file("a.yaml", "one")
    source = GitSource(SourceSpec(upstream.url), tmp_path / "gg")
    revision = source.fetch(last_applied=None)
    upstream.bare.rename(upstream.bare.with_name("gone.git"))
    with pytest.raises(SourceError, match=r"^file://.*remote\.git: git fetch failed"):
        source.fetch(last_applied=revision.commit)
    assert (revision.checkout / "a.yaml").read_text() == "one"


def test_missing_branch_is_named(upstream: Upstream, tmp_path: Path) -> None:
    upstream.commit_file("a.yaml", "one")
    with pytest.raises(SourceError, match=r"git fetch failed.*release"):
        GitSource(SourceSpec(upstream.url, branch="release"), tmp_path / "gg").fetch(last_applied=None)


def test_token_never_appears_in_errors(tmp_path: Path) -> None:
    token = "ghp_secretsecretsecret123"
    url = f"https://user:{token}@127.0.0.1:{free_port()}/org/repo.git"
    source = GitSource(SourceSpec(url), tmp_path / "gg", Credentials(token=token))
    with pytest.raises(SourceError) as error:
        source.fetch(last_applied=None)
    assert token not in str(error.value)
    assert "https://***@127.0.0.1" in str(error.value)
    assert token not in repr(Credentials(token=token))


def test_token_is_read_from_the_file_named_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gitopsguard.commands.reconcile_once import git_token

    monkeypatch.delenv("GITOPSGUARD_GIT_TOKEN", raising=False)
    (tmp_path / "token").write_text("ghp_fromfile\n")
    monkeypatch.setenv("GITOPSGUARD_GIT_TOKEN_FILE", str(tmp_path / "token"))
    assert git_token() == "ghp_fromfile"
    monkeypatch.setenv("GITOPSGUARD_GIT_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(SourceError, match=r"missing: cannot read the git token file"):
        git_token()
