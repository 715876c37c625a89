"""Reading a branch's history for approval evidence: which first-parent commit brought a file's exact
content onto the branch, and which commit of the merged branch made it.

Every path is handed to git literally (``--literal-pathspecs``, and ``<commit>:<path>`` lookups, which take no
patterns), so a file named ``alice-[d]ebug.yaml`` is never read as a pattern matching ``alice-debug.yaml``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gitopsguard.errors import SourceError

REGULAR_MODES = ("100644", "100755")
SYMLINK_MODE = "120000"
_FIRST_CHUNK = 32


@dataclass(frozen=True)
class Entry:
    """A path's tree entry in one commit; empty strings when the path is absent there."""

    mode: str = ""
    blob: str = ""


class Git:
    """Runs git in one repository with fixed options; failures are SourceError naming the repository."""

    def __init__(self, repository: Path, options: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
        self.repository, self._options, self._env = repository, tuple(options), {**os.environ, **(env or {})}

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        return self.raw(*args, stdin=stdin).decode("utf-8", errors="replace").strip()

    def raw(self, *args: str, stdin: str | None = None) -> bytes:
        command = ["git", "--literal-pathspecs", *self._options, *args]
        given = stdin.encode("utf-8", "surrogateescape") if stdin is not None else None  # paths as git's bytes
        done = subprocess.run(command, cwd=self.repository, input=given,
                              capture_output=True, check=False, env=self._env)  # fmt: skip
        if done.returncode != 0:
            problem = done.stderr.decode("utf-8", errors="replace").strip()[:300]
            raise SourceError(f"{self.repository}: git {args[0]} failed: {problem}")
        return done.stdout


class History:
    def __init__(self, git: Git) -> None:
        self._git = git
        self._chains: dict[str, list[str]] = {}

    def first_parents(self, commit: str) -> list[str]:
        """``commit`` and its first parent, and that one's, ... newest first."""
        if commit not in self._chains:
            self._chains[commit] = self._git("rev-list", "--first-parent", commit).split()
        return self._chains[commit]

    def parents(self, commit: str) -> list[str]:
        return self._git("rev-list", "--parents", "-n", "1", commit).split()[1:]

    def entry(self, commit: str, path: str) -> Entry:
        listed = self._git("ls-tree", "-z", "--full-tree", commit, "--", path)
        for record in listed.split("\0"):
            meta, _, name = record.partition("\t")
            if name == path and len(fields := meta.split()) == 3:
                return Entry(fields[0], fields[2])
        return Entry()

    def files(self, commit: str, folder: str) -> list[str]:
        """Every path under ``folder`` in ``commit`` (recursively), whatever its mode."""
        listed = self._git("ls-tree", "-r", "-z", "--full-tree", "--name-only", commit, "--", folder)
        return sorted(name for name in listed.split("\0") if name)

    def has_commit(self, sha: str) -> bool:
        """Whether this repository holds the commit ``sha`` (a pull request's head may live only on the forge)."""
        answer = self._git("cat-file", "--batch-check=%(objecttype)", stdin=f"{sha}\n")
        return answer == "commit"

    def object_size(self, blob: str) -> int:
        return int(self._git("cat-file", "-s", blob))

    def object_text(self, blob: str) -> str:
        return self._git.raw("cat-file", "blob", blob).decode("utf-8", errors="replace")

    def blobs(self, commits: Sequence[str], path: str) -> list[str]:
        """The object id of ``path`` in each commit ("" where absent), in one git call."""
        if "\n" in path or not commits:
            return ["" for _ in commits]
        asked = "".join(f"{commit}:{path}\n" for commit in commits)
        answers = self._git("cat-file", "--batch-check=%(objectname) %(objecttype)", stdin=asked).split("\n")
        return [line.split()[0] if line.endswith(" blob") else "" for line in answers]

    def run_start(self, tip: str, path: str, blob: str) -> str | None:
        """Walking back from ``tip`` along first parents while ``path`` holds ``blob``: the last commit
        walked, i.e. the one whose first parent does not hold it. None when ``tip`` itself does not."""
        chain, start, size = self.first_parents(tip), 0, _FIRST_CHUNK
        while start < len(chain):
            window = chain[start : start + size]
            for offset, found in enumerate(self.blobs(window, path)):
                if found != blob:
                    return chain[start + offset - 1] if start + offset > 0 else None
            start, size = start + size, size * 4
        return chain[-1]  # the root commit holds it

    def on_first_parent_chain(self, commit: str, tip: str) -> bool:
        """Whether ``commit`` is ``tip`` or on its first-parent chain. Being an ancestor is not enough: a merge
        whose first parent is an older commit contains the head through its second parent, yet makes the old
        chain the branch that evidence follows. Walks only the commits ``commit`` does not reach: the chain
        must meet them exactly at ``commit``."""
        if commit == tip:
            return True
        newer = self._git("rev-list", "--first-parent", "--topo-order", tip, f"^{commit}").split()
        if not newer:
            return False  # tip is reached from commit: a rewind
        met = self._git("rev-list", "--parents", "-n", "1", newer[-1]).split()[1:2]
        return met == [commit]

    def is_ancestor(self, older: str, newer: str) -> bool:
        done = subprocess.run(["git", "merge-base", "--is-ancestor", older, newer], cwd=self._git.repository,
                              capture_output=True, check=False)  # fmt: skip
        if done.returncode not in (0, 1):
            raise SourceError(f"{self._git.repository}: git merge-base failed: {done.stderr.decode()[:300]}")
        return done.returncode == 0
