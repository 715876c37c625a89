"""Backups as commits to a Git repository (or branch) of their own: one commit per deleted workload, its
message naming the reason and the findings, pushed before the workload may be deleted.

The backup remote has write credentials of its own. It is never the source repository's branch, nor written
with the source's credential: whoever can push to the source could otherwise rewrite the backups, and a
controller able to push to the source could change what it applies. Both are refused when the storage is
made, before anything runs.

Replicas share the branch: a push refused because another replica pushed first is tried again on top of
it. A push that does not succeed within its attempts raises, and the workload is not deleted.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from gitopsguard.backup.files import backup_path, manifest_text, write_new
from gitopsguard.backup.saved import Saved, adoption
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.model import KubeObject, ObjectKey
from gitopsguard.source import Credentials, display_url
from gitopsguard.source.urls import split_login

PUSHES = 5  # attempts when other replicas push to the branch at the same time
TIMEOUT = 120.0  # seconds for one git command (a slow remote fails the backup, and the deletion waits)
MAX_MESSAGE = 16 * 1024  # characters of findings kept in a commit message
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # a NUL would end git's message; the rest is noise
_IDENTITY = {"GIT_AUTHOR_NAME": "gitopsguard", "GIT_AUTHOR_EMAIL": "gitopsguard@localhost",
             "GIT_COMMITTER_NAME": "gitopsguard", "GIT_COMMITTER_EMAIL": "gitopsguard@localhost"}  # fmt: skip


@dataclass(frozen=True)
class GitBackupSpec:
    url: str = field(repr=False)  # may carry a login: shown only through display_url
    branch: str
    credentials: Credentials = field(default_factory=Credentials)

    @property
    def shown(self) -> str:
        return f"{display_url(self.url)} (branch {self.branch})"


def refuse_source(backup: GitBackupSpec, source_url: str, source_branch: str, source: Credentials) -> None:
    """Refuse a backup that is the source repository's branch, or is written with the source's credential."""
    if same_repository(backup.url, source_url) and backup.branch == source_branch:
        raise GitOpsGuardError(f"--backup-git-url {backup.shown}: this is the source repository's branch; back "
                               "up to another repository or branch (never write what is applied)")  # fmt: skip
    mine, theirs = _secrets(backup.credentials.for_url(backup.url)), _secrets(source.for_url(source_url))
    if mine & theirs:
        raise GitOpsGuardError(f"--backup-git-url {backup.shown}: its credential is the source repository's; give "
                               "the backup repository a write credential of its own ($GITOPSGUARD_BACKUP_GIT_TOKEN "
                               "or $GITOPSGUARD_BACKUP_GIT_SSH_KEY)")  # fmt: skip


def same_repository(one: str, other: str) -> bool:
    return _normal(one) == _normal(other)


_DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git+ssh": 22, "git": 9418}
_SCP_LIKE = re.compile(r"^(?:[^/@\s]+@)?([\w.-]+):(?!//)(.*)$")


def _normal(url: str) -> str:
    """One spelling per repository: a local path as its resolved file URL; a network one as host, port (unless
    the scheme's default) and path, whatever the scheme (https, ssh, scp-like ``git@host:path``), the login,
    a trailing ``/`` or ``.git``, or the case of the path (forges ignore it; refusing too much is the safe side)."""
    bare, _ = split_login(url)
    scp = _SCP_LIKE.match(bare) if "://" not in bare else None
    if scp:
        return f"net://{scp.group(1).lower()}/{_path(scp.group(2))}"
    if "://" not in bare:
        bare = Path(bare).resolve().as_uri()  # a local path, as the source's is made a file:// URL
    parts = urlsplit(bare)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return "file://" + str(Path("/" + parts.path.lstrip("/")).resolve())
    try:
        port = parts.port
    except ValueError:
        port = None
    shown_port = f":{port}" if port is not None and port != _DEFAULT_PORTS.get(scheme) else ""
    return f"net://{(parts.hostname or '').lower()}{shown_port}/{_path(parts.path)}"


def _path(path: str) -> str:
    return path.strip("/").removesuffix(".git").lower()


def _secrets(credentials: Credentials) -> set[str]:
    found = {credentials.token} if credentials.token else set()
    if credentials.login is not None and credentials.login.password:
        found.add(credentials.login.password)
    if credentials.ssh_key_file is not None:
        found.add(f"ssh-key:{credentials.ssh_key_file.resolve()}")
        with contextlib.suppress(OSError, UnicodeDecodeError):  # an unreadable key fails the first push, and says so
            found.add(f"ssh-key-content:{credentials.ssh_key_file.read_text().strip()}")
    return found


class _Checkout:
    """The local clone every GitBackups of one remote shares, and the lock they take turns under."""

    def __init__(self, spec: GitBackupSpec, directory: Path) -> None:
        self.spec, self.directory, self.lock = spec, directory, threading.Lock()
        self.remote, _ = split_login(spec.url)  # git never sees the login (see source/urls.py)
        self.credentials = spec.credentials.for_url(spec.url)

    def git(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """git in the clone, configured by nothing the backup branch can write: HOME is an empty folder beside
        the clone (the clone's files are the branch's, and a ``.gitconfig`` there would be git's global
        configuration: hooks, fsmonitor, any command), no global or system configuration, no hooks."""
        home = self.directory.with_name(self.directory.name + ".home")
        home.mkdir(parents=True, exist_ok=True)
        env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(home), "XDG_CONFIG_HOME": str(home),
               "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", **_IDENTITY,
               **self.credentials.environment()}  # fmt: skip
        locked = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "protocol.ext.allow=never"]
        try:
            return subprocess.run(["git", *locked, "-C", str(self.directory), *args], input=stdin, env=env, text=True,
                                  capture_output=True, timeout=TIMEOUT, check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as error:
            raise self.failed(f"git {args[0]}", str(error)) from error

    def must(self, *args: str, stdin: str | None = None) -> str:
        done = self.git(*args, stdin=stdin)
        if done.returncode != 0:
            raise self.failed(f"git {args[0]}", done.stderr)
        return done.stdout.strip()

    def failed(self, what: str, detail: str) -> GitOpsGuardError:
        shown = self.credentials.scrub(detail.strip())[-500:]
        return GitOpsGuardError(f"{self.spec.shown}: cannot back up ({what}: {shown}); the workload is kept, not "
                                "deleted: check the backup repository's URL, branch and write credential")  # fmt: skip

    def prepare(self) -> None:
        """The clone, at the branch's newest commit (or empty, before the branch's first backup)."""
        if not (self.directory / ".git").is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            self.must("init", "--quiet")
            self.must("remote", "add", "origin", self.remote)
        ref = f"refs/remotes/origin/{self.spec.branch}"
        fetched = self.git("fetch", "--quiet", "--no-tags", "origin", f"+refs/heads/{self.spec.branch}:{ref}")
        if fetched.returncode == 0:
            self.must("checkout", "--quiet", "--force", "-B", "backups", ref)
        elif "couldn't find remote ref" in fetched.stderr:
            self.must("checkout", "--quiet", "--force", "--orphan", "backups")
            self.git("rm", "-r", "--quiet", "--cached", "--ignore-unmatch", ".")
        else:
            raise self.failed("git fetch", fetched.stderr)
        self.must("clean", "-ffdxq")


class GitBackups:
    """Backups as commits to a branch of a Git repository of their own."""

    def __init__(self, spec: GitBackupSpec, workdir: Path, folder: str = "") -> None:
        self._checkout = _Checkout(spec, workdir)
        self._folder = folder

    @classmethod
    def _sharing(cls, checkout: _Checkout, folder: str) -> GitBackups:
        made = cls.__new__(cls)
        made._checkout, made._folder = checkout, folder
        return made

    def under(self, folder: str) -> GitBackups:
        return GitBackups._sharing(self._checkout, f"{self._folder}/{folder}".strip("/"))

    def save(
        self, key: ObjectKey, body: KubeObject, now: datetime, *, reason: str, findings: Sequence[str] = ()
    ) -> Saved:
        text, branch = manifest_text(body), self._checkout.spec.branch
        with self._checkout.lock:
            for _ in range(PUSHES):
                self._checkout.prepare()
                relative = self._place(key, now)
                commit = self._commit(relative, text, _message(key, reason, findings))
                pushed = self._checkout.git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
                if pushed.returncode == 0:
                    return self._saved(relative, commit)
                if "rejected" not in pushed.stderr and "fetch first" not in pushed.stderr:
                    raise self._checkout.failed("git push", pushed.stderr)
        raise self._checkout.failed("git push", f"refused {PUSHES} times while other replicas pushed")

    def _place(self, key: ObjectKey, now: datetime) -> str:
        top = self._checkout.directory
        for attempt in range(100):
            path = backup_path(top / self._folder if self._folder else top, key, now, attempt)
            if not path.exists() and not path.is_symlink():
                return str(PurePosixPath(path.relative_to(top)))
        raise self._checkout.failed("naming the file", f"{key}: 100 backups in one second")

    def _commit(self, relative: str, text: bytes, message: str) -> str:
        """Commit the file; its folders must be real folders of the checkout (a link the backup branch holds
        could lead the write out of it)."""
        top, path = self._checkout.directory, self._checkout.directory / relative
        for folder in reversed(path.relative_to(top).parents[:-1]):
            here = top / folder
            if here.is_symlink() or (here.exists() and not here.is_dir()):
                raise self._checkout.failed("writing the file", f"{folder} is not a folder in the backup branch")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_new(path, text)
        except OSError as error:
            raise self._checkout.failed("writing the file", str(error)) from error
        self._checkout.must("add", "--", relative)
        self._checkout.must("commit", "--quiet", "--no-verify", "--file", "-", stdin=message)
        return self._checkout.must("rev-parse", "HEAD")

    def _saved(self, relative: str, commit: str) -> Saved:
        spec = self._checkout.spec
        where = f"{display_url(spec.url)} branch {spec.branch}, commit {commit[:12]}, file {relative}"
        restore = (f"git clone {display_url(spec.url)} backups && git -C backups checkout {commit} && "
                   f"kubectl apply -f backups/{relative}")  # fmt: skip
        return Saved(where, restore, adoption(f"{relative} (at commit {commit[:12]})"))


def _message(key: ObjectKey, reason: str, findings: Sequence[str]) -> str:
    lines = "\n".join(f"- {finding}" for finding in findings)[:MAX_MESSAGE]
    text = f"backup: {key} before deletion\n\nWhy: {reason}\n\nFindings:\n{lines or '- (none recorded)'}\n"
    return _CONTROL.sub("?", text)
