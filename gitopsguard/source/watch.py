"""Noticing a commit to a local repository as it happens (watchdog), without watching its whole tree.

Only commits are reconciled, so only what a commit or a push changes is watched: the ref files (``refs/``,
``HEAD``, ``packed-refs``) in the repository's git directory (``.git`` of a working clone, the bare
repository itself). Watching the tree recursively, as before, spent an inotify watch on every folder of a
large working tree and of ``objects/``, woke the loop on every saved but uncommitted file, and raced with
the temporary object folders git creates during a push. A repository whose git directory is elsewhere
(a ``.git`` file: a linked worktree, a submodule) is still watched whole.

Within the git directory only a ref moving counts: ``HEAD``, ``packed-refs`` and ``refs/heads/**`` being
written, renamed into place or deleted. Git's own bookkeeping (``FETCH_HEAD``, ``ORIG_HEAD``, the index,
``*.lock`` files, ``logs/``) and every read (inotify reports opens and closes) are ignored: the loop's
own fetch reads the repository, and waking on that kept a loop at rest passing 67 times a second.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

# What changes a file; opens and closes without a write are reads (git's own, ours among them).
_WRITES = frozenset((EVENT_TYPE_CREATED, EVENT_TYPE_DELETED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED, EVENT_TYPE_CLOSED))


def watched(repository: Path) -> list[tuple[Path, bool]]:
    """The folders to watch for commits to ``repository``, each with whether to watch it recursively."""
    gitdir = repository / ".git" if (repository / ".git").is_dir() else repository
    if not (gitdir / "refs").is_dir() or not (gitdir / "HEAD").is_file():
        return [(repository, True)]
    return [(gitdir, False), (gitdir / "refs", True)]


def _gitdir(repository: Path) -> Path | None:
    folders = watched(repository)
    return folders[0][0] if folders[0][1] is False else None


def moves_a_ref(event: FileSystemEvent, gitdir: Path | None) -> bool:
    """Whether this event is a ref being written, renamed into place or deleted (None: any write counts)."""
    if event.event_type not in _WRITES or event.is_directory:
        return False
    if gitdir is None:
        return True
    paths = (event.src_path, event.dest_path)  # dest_path is "" unless the event is a move
    return any(_is_ref(Path(os.fsdecode(path)), gitdir) for path in paths if path)


def _is_ref(path: Path, gitdir: Path) -> bool:
    try:
        relative = path.relative_to(gitdir).as_posix()
    except ValueError:
        return False
    if relative.endswith(".lock"):
        return False  # git writes the lock, then renames it onto the ref: the rename is the change
    return relative in ("HEAD", "packed-refs") or relative.startswith("refs/heads/")


def watch_commits(repository: Path, on_commit: Callable[[], None]) -> BaseObserver:
    """A started observer that calls ``on_commit`` when the repository's refs change (stop and join it)."""
    gitdir = _gitdir(repository)

    class Wake(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if moves_a_ref(event, gitdir):
                on_commit()

    observer = Observer()
    for folder, recursive in watched(repository):
        observer.schedule(Wake(), str(folder), recursive=recursive)
    observer.start()
    return observer
