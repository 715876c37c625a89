"""Watching a local repository for commits: a commit or a push wakes the loop, a saved file does not."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

from gitopsguard.source.watch import watch_commits, watched
from tests.gitrepo import Upstream, git

QUIET = 1.0  # long enough for inotify to deliver an event, were there one


def woken_by(repository: Path, action: Callable[[], object]) -> bool:
    woke = threading.Event()
    observer = watch_commits(repository, woke.set)
    try:
        action()
        return woke.wait(QUIET)
    finally:
        observer.stop()
        observer.join()


def test_a_commit_wakes_the_loop_and_a_saved_uncommitted_file_does_not(tmp_path: Path) -> None:
    upstream = Upstream(tmp_path)
    upstream.write("apps/a.yaml", "a: 1\n")
    upstream.commit()
    edited = upstream.work / "apps" / "a.yaml"
    assert not woken_by(upstream.work, lambda: edited.write_text("a: 2\n"))
    assert woken_by(upstream.work, lambda: git(upstream.work, "commit", "-qam", "change"))


def test_a_push_into_a_bare_repository_wakes_the_loop(tmp_path: Path) -> None:
    upstream = Upstream(tmp_path)
    upstream.write("apps/a.yaml", "a: 1\n")
    upstream.commit()
    upstream.write("apps/a.yaml", "a: 2\n")
    git(upstream.work, "commit", "-qam", "change")
    assert woken_by(upstream.bare, lambda: git(upstream.work, "push", "-q", "origin", "main"))


def test_only_the_git_directory_is_watched_and_a_linked_worktree_is_watched_whole(tmp_path: Path) -> None:
    upstream = Upstream(tmp_path)
    upstream.write("apps/a.yaml", "a: 1\n")
    upstream.commit()
    gitdir = upstream.work / ".git"
    assert watched(upstream.work) == [(gitdir, False), (gitdir / "refs", True)]
    assert watched(upstream.bare) == [(upstream.bare, False), (upstream.bare / "refs", True)]
    git(upstream.work, "worktree", "add", "-q", str(tmp_path / "linked"))
    assert watched(tmp_path / "linked") == [(tmp_path / "linked", True)]


def test_git_reading_the_repository_does_not_wake_the_loop(tmp_path: Path) -> None:
    """The loop's own fetch reads the repository it watches: were reads to wake it, it would never rest."""
    upstream = Upstream(tmp_path)
    upstream.write("apps/a.yaml", "a: 1\n")
    upstream.commit()
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(upstream.bare), str(clone))
    assert not woken_by(upstream.bare, lambda: git(clone, "fetch", "-q", "origin"))  # reads refs, objects, HEAD
    assert not woken_by(upstream.bare, lambda: git(upstream.bare, "log", "-1", "--format=%H"))
    assert not woken_by(upstream.work, lambda: git(upstream.work, "status", "--porcelain"))


def test_git_bookkeeping_files_do_not_wake_the_loop(tmp_path: Path) -> None:
    """FETCH_HEAD, ORIG_HEAD, the index and its lock, logs/ and objects/ change without any branch moving."""
    upstream = Upstream(tmp_path)
    upstream.write("apps/a.yaml", "a: 1\n")
    upstream.commit()
    gitdir = upstream.work / ".git"
    assert not woken_by(upstream.work, lambda: git(upstream.work, "fetch", "-q", "origin"))  # writes FETCH_HEAD
    for name in ("FETCH_HEAD", "ORIG_HEAD", "index.lock", "refs/heads/main.lock", "logs/HEAD"):
        assert not woken_by(upstream.work, partial((gitdir / name).write_text, "x\n")), name


def test_every_kind_of_ref_change_wakes_the_loop(tmp_path: Path) -> None:
    """The general rule: a branch created, moved or deleted, packed refs rewritten, HEAD switched."""
    upstream = Upstream(tmp_path)
    upstream.write("apps/a.yaml", "a: 1\n")
    upstream.commit()
    work = upstream.work
    assert woken_by(work, lambda: git(work, "branch", "other"))
    assert woken_by(work, lambda: git(work, "commit", "-q", "--allow-empty", "-m", "moved"))
    assert woken_by(work, lambda: git(work, "pack-refs", "--all"))
    assert woken_by(work, lambda: git(work, "symbolic-ref", "HEAD", "refs/heads/other"))
    assert woken_by(work, lambda: git(work, "branch", "-D", "main"))
