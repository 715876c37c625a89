"""Fetching a Git repository with GitPython: clone once, then fetch, then check out one commit."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import git

from gitopsguard.errors import SourceError
from gitopsguard.source.review import OFF_NOTE, Review, Reviewer
from gitopsguard.source.ssh import require_known_hosts, ssh_command
from gitopsguard.source.urls import Login, display_url, encoding_errors, forms, redact_urls, split_login


@dataclass(frozen=True)
class Credentials:
    """An https token, an ssh key file, or the login a URL carried. Passed to git through its environment,
    never in a URL or log. ``known_hosts``: the only host keys git over ssh accepts (``ssh.py``)."""

    token: str | None = field(default=None, repr=False)
    ssh_key_file: Path | None = None
    known_hosts: Path | None = None
    login: Login | None = field(default=None, repr=False)
    scheme: str = ""  # the scheme of the URL the login came from

    def for_url(self, url: str) -> Credentials:
        """These credentials, with the login ``url`` carries (see ``split_login``)."""
        _, login = split_login(url)
        scheme, separator, _ = url.partition("://")
        return replace(self, login=login, scheme=scheme if separator else "")

    def environment(self) -> dict[str, str]:
        env: dict[str, str] = {"GIT_TERMINAL_PROMPT": "0"}
        if basic := self._basic():
            env |= {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                    "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"}  # fmt: skip
        # always, whatever the URL looks like: any ssh git starts checks host keys strictly
        env["GIT_SSH_COMMAND"] = ssh_command(self.ssh_key_file, self.known_hosts)
        env["GIT_SSH_VARIANT"] = "ssh"
        return env

    def scrub(self, text: str) -> str:
        """``text`` with the token, the URL's password, every form of them (raw, percent-decoded and
        -encoded, in any case, base64 in the header) and any URL's userinfo replaced by ***."""
        text = redact_urls(text)
        for secret in sorted(self._secret_forms(), key=len, reverse=True):
            text = re.sub(re.escape(secret), "***", text, flags=re.IGNORECASE)
        return text

    def _secret_forms(self) -> set[str]:
        secrets = [self.token] if self.token else []
        if self.login is not None:
            secrets += self.login.secrets(self.scheme)
        found = {form for secret in secrets for form in forms(secret)}
        return found | ({basic} if (basic := self._basic()) else set())

    def _basic(self) -> str | None:
        """The Basic authorization git sends over http(s): the token's, else the URL's login."""
        if self.token:
            pair = f"x-access-token:{self.token}"
        elif self.login is not None and self.scheme.lower().startswith("http"):
            pair = f"{self.login.user}:{self.login.password or ''}"
        else:
            return None
        return base64.b64encode(pair.encode("utf-8", encoding_errors(pair))).decode()


@dataclass(frozen=True)
class SourceSpec:
    url: str = field(repr=False)  # may carry a login: shown only through display_url
    branch: str = "main"

    def __repr__(self) -> str:
        return f"SourceSpec(url={display_url(self.url)!r}, branch={self.branch!r})"


@dataclass(frozen=True)
class Revision:
    commit: str
    checkout: Path
    summary: str
    message: str
    review: Review | None = None  # the evidence it was reviewed (a note alone when the review mode is off)


class GitSource:
    def __init__(
        self, spec: SourceSpec, workdir: Path, credentials: Credentials | None = None, reviewer: Reviewer | None = None
    ) -> None:
        self.spec = spec
        self.reviewer = reviewer  # None: review mode off, every commit the branch holds is applied
        self.workdir = workdir  # the checkout and what is kept beside it (renders) live here
        self._dir = workdir / "checkout"
        self.credentials = credentials or Credentials()
        # git never sees the URL's login: not on its command line, in .git/config, nor in its messages
        self._remote, _ = split_login(spec.url)
        self._credentials = self.credentials.for_url(spec.url)
        require_known_hosts(self._remote, display_url(spec.url), self.credentials.known_hosts)  # fail at start
        ssh_command(self.credentials.ssh_key_file, self.credentials.known_hosts)  # a path ssh misreads: refused now

    def fetch(self, *, last_applied: str | None, allow_rewind: bool = False, break_glass: str = "") -> Revision:
        """The branch's newest commit, checked out; refuses history that does not contain ``last_applied``,
        and (with a reviewer) a head holding a change nobody allowed reviewed, before checking it out.
        ``break_glass`` (the operator's reason) skips the review for this fetch alone."""
        repo = self._fetched_repo()
        commit = self._resolve_branch(repo)
        forward = True
        if last_applied and not allow_rewind:
            self._require_forward(repo, last_applied, commit)
        elif last_applied:
            forward = self._is_forward(repo, last_applied, commit)
        # A rewound branch is verified from --trust-from alone: a commit the applied one contains is not
        # thereby reviewed (a push later reverted, a branch's work in progress).
        review = self._review(
            last_applied if forward else None, commit.hexsha, break_glass, first_sync=not last_applied
        )
        self._git(repo, "checkout", "--force", "--detach", commit.hexsha)
        self._git(repo, "clean", "-ffdx")
        return Revision(commit.hexsha, self._dir, str(commit.summary), str(commit.message), review)

    def _review(self, last_applied: str | None, head: str, break_glass: str, *, first_sync: bool) -> Review:
        if self.reviewer is None:
            return Review(last_applied, head, note=OFF_NOTE)
        if break_glass:
            return Review(last_applied, head, note=f"break glass, review skipped by the operator: {break_glass}")
        return self.reviewer.verify(self._dir, last_applied, head, first_sync=first_sync)

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
            self._git(repo, "remote", "add", "origin", self._remote)
        else:
            repo = git.Repo(self._dir)
            self._git(repo, "remote", "set-url", "origin", self._remote)  # also clears a login stored before
        refspec = f"+refs/heads/{self.spec.branch}:refs/remotes/origin/{self.spec.branch}"
        self._git(repo, "fetch", "--prune", "--no-tags", "origin", refspec)
        return repo

    def _resolve_branch(self, repo: git.Repo) -> git.Commit:
        try:
            return repo.commit(f"refs/remotes/origin/{self.spec.branch}")
        except (git.BadName, ValueError) as error:
            raise SourceError(f"{self._where()}: branch {self.spec.branch!r} not found") from error

    def _is_forward(self, repo: git.Repo, last_applied: str, new: git.Commit) -> bool:
        if last_applied == new.hexsha:
            return True
        try:
            return bool(repo.is_ancestor(repo.commit(last_applied), new))
        except (git.BadName, ValueError, git.GitCommandError):
            return False  # the applied commit is not even known here any more

    def _require_forward(self, repo: git.Repo, last_applied: str, new: git.Commit) -> None:
        if not self._is_forward(repo, last_applied, new):
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
                f"{self._where()}: git {args[0]} failed: {stderr or f'exit status {error.status}'}{_hint(stderr)}"
            ) from error

    def _where(self) -> str:
        return display_url(self.spec.url)


def _hint(stderr: str) -> str:
    if "Host key verification failed" in stderr:
        return (
            "\nThe server's host key is not the one --ssh-known-hosts holds for it: check the key your Git "
            "host publishes; if it changed, update that file (nothing was fetched)"
        )
    return ""
