"""Fetching a Git repository with GitPython: clone once, then fetch, then check out one commit."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

import git

from gitopsguard.errors import SourceError


@dataclass(frozen=True)
class Credentials:
    """An https token or an ssh key file. Passed to git through its environment, never in a URL or log."""

    token: str | None = field(default=None, repr=False)
    ssh_key_file: Path | None = None

    def environment(self) -> dict[str, str]:
        env: dict[str, str] = {"GIT_TERMINAL_PROMPT": "0"}
        if self.token:
            basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
            env |= {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                    "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"}  # fmt: skip
        if self.ssh_key_file:
            env["GIT_SSH_COMMAND"] = f"ssh -i '{self.ssh_key_file}' -o IdentitiesOnly=yes -o BatchMode=yes"
        return env

    def scrub(self, text: str) -> str:
        """``text`` with the token, its encoded form and any user:password in URLs replaced by ***."""
        text = re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", text)
        if self.token:
            basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
            text = text.replace(basic, "***").replace(self.token, "***")
        return text


@dataclass(frozen=True)
class SourceSpec:
    url: str
    branch: str = "main"


@dataclass(frozen=True)
class Revision:
    commit: str
    checkout: Path
    summary: str
    message: str


class GitSource:
    def __init__(self, spec: SourceSpec, workdir: Path, credentials: Credentials | None = None) -> None:
        self.spec = spec
        self.workdir = workdir  # the checkout and what is kept beside it (renders) live here
        self._dir = workdir / "checkout"
        self._credentials = credentials or Credentials()
        self.credentials = self._credentials

    def fetch(self, *, last_applied: str | None, allow_rewind: bool = False) -> Revision:
        """The branch's newest commit, checked out; refuses history that does not contain ``last_applied``."""
        repo = self._fetched_repo()
        commit = self._resolve_branch(repo)
        if last_applied and not allow_rewind:
            self._require_forward(repo, last_applied, commit)
        self._git(repo, "checkout", "--force", "--detach", commit.hexsha)
        self._git(repo, "clean", "-ffdx")
        return Revision(commit.hexsha, self._dir, str(commit.summary), str(commit.message))

    def checkout_of(self, commit: str) -> Path:
        """A second working tree at ``commit`` (one the branch already reached), beside the main checkout:
        what a restarted controller renders to keep repairing drift while the branch head is broken."""
        held = self._dir.parent / "held"
        try:
            repo = git.Repo(self._dir)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as error:
            raise SourceError(f"{self._where()}: no local clone yet to check out {commit[:12]} from") from error
        if not (held / ".git").exists():
            self._git(repo, "worktree", "prune")
            self._git(repo, "worktree", "add", "--force", "--detach", str(held), commit)
        else:
            self._git(git.Repo(held), "checkout", "--force", "--detach", commit)
            self._git(git.Repo(held), "clean", "-ffdx")
        return held

    def _fetched_repo(self) -> git.Repo:
        if not (self._dir / ".git").is_dir():
            self._dir.mkdir(parents=True, exist_ok=True)
            repo = git.Repo.init(self._dir)
            repo.create_remote("origin", self.spec.url)
        else:
            repo = git.Repo(self._dir)
            repo.remote("origin").set_url(self.spec.url)
        refspec = f"+refs/heads/{self.spec.branch}:refs/remotes/origin/{self.spec.branch}"
        self._git(repo, "fetch", "--prune", "--no-tags", "origin", refspec)
        return repo

    def _resolve_branch(self, repo: git.Repo) -> git.Commit:
        try:
            return repo.commit(f"refs/remotes/origin/{self.spec.branch}")
        except (git.BadName, ValueError) as error:
            raise SourceError(f"{self._where()}: branch {self.spec.branch!r} not found") from error

    def _require_forward(self, repo: git.Repo, last_applied: str, new: git.Commit) -> None:
        if last_applied == new.hexsha:
            return
        try:
            forward = repo.is_ancestor(repo.commit(last_applied), new)
        except (git.BadName, ValueError, git.GitCommandError):
            forward = False  # the applied commit is not even known here any more
        if not forward:
            raise SourceError(
                f"{self._where()}: branch {self.spec.branch!r} moved from {last_applied[:12]} to "
                f"{new.hexsha[:12]}, which does not contain the applied commit (a force-push or a "
                "rollback); refusing to follow it. Revert with a new commit instead, or, if this is "
                "intended, run once with --allow-rewind"
            )

    def _git(self, repo: git.Repo, *args: str) -> None:
        try:
            with repo.git.custom_environment(**self._credentials.environment()):
                # A session of its own: Ctrl-C at our terminal must stop us, not kill git halfway.
                repo.git.execute(["git", *args], start_new_session=True)
        except git.GitCommandError as error:
            stderr = self._credentials.scrub(str(error.stderr).strip().removeprefix("stderr: ").strip("'"))
            raise SourceError(
                f"{self._where()}: git {args[0]} failed: {stderr or f'exit status {error.status}'}"
            ) from error

    def _where(self) -> str:
        return self._credentials.scrub(self.spec.url)
