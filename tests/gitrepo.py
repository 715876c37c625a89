"""Real git repositories for tests: a bare "remote" and a working clone that commits and pushes to it."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x",
           "HOME": str(cwd), "PATH": "/usr/bin:/bin"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def bare_remote(path: Path) -> Path:
    """An empty bare repository at ``path`` (branch main), to push to."""
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "--bare", "-b", "main")
    return path


class Upstream:
    def __init__(self, root: Path) -> None:
        self.bare, self.work = root / "remote.git", root / "work"
        self.bare.mkdir(parents=True)
        git(self.bare, "init", "--bare", "-b", "main")
        self.work.mkdir()
        git(self.work, "init", "-b", "main")
        git(self.work, "remote", "add", "origin", str(self.bare))

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def write(self, relative: str, text: str) -> None:
        path = self.work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    def remove(self, relative: str) -> None:
        (self.work / relative).unlink()

    def commit(self, message: str = "change") -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        git(self.work, "push", "-q", "--force", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")
