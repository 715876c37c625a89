"""Noticing a commit to a local repository as it happens (watchdog), without watching its whole tree.

Only commits are reconciled, so only what a commit or a push changes is watched: the ref files (``refs/``,
``HEAD``, ``packed-refs``) in the repository's git directory (``.git`` of a working clone, the bare
repository itself). Watching the tree recursively, as before, spent an inotify watch on every folder of a
large working tree and of ``objects/``, woke the loop on every saved but uncommitted file, and raced with
the temporary object folders git creates during a push. A repository whose git directory is elsewhere
(a ``.git`` file: a linked worktree, a submodule) is still watched whole.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer


def watched(repository: Path) -> list[tuple[Path, bool]]:
    """The folders to watch for commits to ``repository``, each with whether to watch it recursively."""
    gitdir = repository / ".git" if (repository / ".git").is_dir() else repository
    if not (gitdir / "refs").is_dir() or not (gitdir / "HEAD").is_file():
        return [(repository, True)]
    return [(gitdir, False), (gitdir / "refs", True)]


def watch_commits(repository: Path, on_commit: Callable[[], None]) -> Observer:  # type: ignore[valid-type]
    """A started observer that calls ``on_commit`` when the repository's refs change (stop and join it)."""

    class Wake(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            on_commit()

    observer = Observer()
    for folder, recursive in watched(repository):
        observer.schedule(Wake(), str(folder), recursive=recursive)
    observer.start()
    return observer
