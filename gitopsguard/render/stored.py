"""Renders kept on disk by commit, for passes that start in a new process.

A `gitopsguard reconcile` run from cron, or a restarted controller, would otherwise render the same commit
again on every start: for 2,020 objects in plain YAML that was 0.14-0.27 s of a 0.6 s no-op pass, and
kustomize costs more. A commit's render depends only on the commit, the path, the renderer and the render
settings (bounds, and whether remote kustomize bases are allowed; such a base is read when its commit is
first rendered, and the run loop's in-memory renders work alike), so the key is a hash of those and of
this format's version. Only successful renders are kept. A file that
cannot be read back as one is ignored and rendered again: the cache can lose time, never correctness.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gitopsguard import __version__
from gitopsguard.errors import RenderError
from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.render.kustomize import kustomize_command
from gitopsguard.render.memo import DocumentMemo
from gitopsguard.render.render import render
from gitopsguard.render.settings import DEFAULT, RenderSettings

FORMAT = 1
KEEP = 8  # renders kept per directory (the newest); a pass needs the head's and the last applied one's


class RenderStore:
    """A directory of rendered commits (private to the controller: mode 0700, files 0600)."""

    def __init__(self, directory: Path, settings: RenderSettings = DEFAULT, *, memo: bool = True) -> None:
        """``memo``: keep each render's parsed documents for the next one (a long-running process). A one-off
        command renders once: a memo would only keep the render, its text and, through its manifests, their
        prepared forms alive until the process ends (about 9 MB at 5,000 objects, bench/README.md "Memory")."""
        self.directory = directory
        self.settings = settings
        self.memo = memo
        # a long-running process parses only the documents a commit changed. A memo holds one render's documents
        # and is rotated after each: one per thread, as the Units loop renders on several workers (fleet_pool.py)
        self._memos = threading.local()

    def render(self, root: Path, path: str, commit: str) -> tuple[Manifest, ...]:
        """``render(root, path)`` of the checkout of ``commit``, from disk when this commit was rendered."""
        key = _key(commit, path, self.settings)
        kept = self.load(key)
        if kept is not None:
            return kept
        memo = self._memo() if self.memo else None
        try:
            manifests = render(root, path, memo, settings=self.settings).manifests
        finally:
            if memo is not None:
                memo.rotate()
        self.save(key, manifests)
        return manifests

    def _memo(self) -> DocumentMemo:
        memo: DocumentMemo | None = getattr(self._memos, "memo", None)
        if memo is None:
            memo = self._memos.memo = DocumentMemo()
        return memo

    def load(self, key: str) -> tuple[Manifest, ...] | None:
        try:
            stored = json.loads((self.directory / f"{key}.json").read_bytes())
            return tuple(_manifest(origin, body) for origin, body in stored["manifests"])
        except (OSError, ValueError, KeyError, TypeError):  # missing, cut short or not ours: render again
            return None

    def save(self, key: str, manifests: Sequence[Manifest]) -> None:
        """Write atomically (a reader sees the whole render or none); a full disk only costs the cache."""
        data = json.dumps({"format": FORMAT, "manifests": [[m.origin, m.body] for m in manifests]},
                          separators=(",", ":"))  # fmt: skip
        temporary = None
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(data)
            os.replace(temporary, self.directory / f"{key}.json")
            now = time.time_ns()  # the file system's own clock ticks too coarsely to order quick saves
            os.utime(self.directory / f"{key}.json", ns=(now, now))
        except OSError:
            if temporary is not None:  # a full disk: leave no half-written file behind
                with contextlib.suppress(OSError):
                    Path(temporary).unlink()
            return
        self._forget_old()

    def _forget_old(self) -> None:
        """Keep the newest renders; drop half-written files a killed process left (an hour old)."""
        kept = sorted(self.directory.glob("*.json"), key=_modified, reverse=True)
        stale = [p for p in self.directory.glob("*.tmp") if _modified(p) < time.time() - 3600]
        for old in [*kept[KEEP:], *stale]:
            with contextlib.suppress(OSError):
                old.unlink()


def _manifest(origin: Any, body: Any) -> Manifest:
    if not isinstance(origin, str) or not isinstance(body, dict):
        raise TypeError("not a stored manifest")
    return Manifest(ObjectKey.of(body), body, origin)


def _key(commit: str, path: str, settings: RenderSettings) -> str:
    """Settings are part of the key: a commit refused under tighter bounds, or rendered with remote bases
    allowed, is not the same render under other settings."""
    parts = (str(FORMAT), __version__, _renderer(), commit, path, repr(settings))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _renderer() -> str:
    """Which kustomize would run: its command and the binary's size and time (an upgrade renders anew)."""
    try:
        command = kustomize_command()
    except RenderError:
        return "no kustomize"
    try:
        status = Path(command[0]).stat()
    except OSError:
        return " ".join(command)
    return f"{' '.join(command)} {status.st_size} {status.st_mtime_ns}"


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
