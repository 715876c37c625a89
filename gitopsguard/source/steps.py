"""What a range of a branch's history brought, read from git in a few calls: the first-parent steps from the
applied commit to the new head, the paths whose content at the head each step is answerable for, and, for a
merge, the commits it brought and the paths it changed beyond its merged branch.

A path is answerable to the newest step that changed it, and only when its content (mode and object) at the
head differs from the applied commit's: a change undone before the head never reaches the cluster. Paths are
git's bytes, decoded with ``surrogateescape`` so that two different names never read as one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gitopsguard.evidence.history import Git

State = tuple[str, str]  # (mode, object id) of a path in a tree; the mode is "000000" where it is absent
_RAW = ("--raw", "-z", "--no-renames", "--no-abbrev", "--diff-merges=first-parent")


@dataclass(frozen=True)
class Step:
    """A first-parent commit, its parents, and the paths whose head content it brought."""

    commit: str
    parents: tuple[str, ...]
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Brought:
    """A commit a merge brought onto the branch, and the paths it changed (against its first parent)."""

    commit: str
    paths: frozenset[str]


def text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


def changes(git: Git, *args: str) -> Iterator[tuple[str, tuple[str, ...], str, State, State]]:
    """(commit, parents, path, state before, state after) for each path each listed commit changed."""
    out = git.raw("log", *_RAW, "--format=%x01%H %P", *args)
    tokens, index = out.split(b"\0"), 0
    commit, parents = "", tuple[str, ...]()
    while index < len(tokens):
        token = tokens[index].lstrip(b"\n")
        index += 1
        if token.startswith(b"\x01"):
            commit, *rest = text(token[1:]).split()
            parents = tuple(rest)
        elif token.startswith(b":") and index < len(tokens):
            old_mode, new_mode, old_id, new_id, _ = text(token[1:]).split(" ", 4)
            yield commit, parents, text(tokens[index]), (old_mode, old_id), (new_mode, new_id)
            index += 1


def steps(git: Git, old: str, new: str) -> tuple[Step, ...]:
    """The first-parent steps of ``old..new``, oldest first, each with the paths it is answerable for."""
    order = dict(_first_parents(git, old, new))  # every step, also those that change no path
    head: dict[str, tuple[str, State]] = {}  # path -> (newest step that changed it, its state at the head)
    base: dict[str, State] = {}  # path -> its state at ``old`` (the oldest step's "before")
    for commit, _, path, before, after in changes(git, "--first-parent", f"{old}..{new}"):
        head.setdefault(path, (commit, after))
        base[path] = before
    answerable: dict[str, list[str]] = {}
    for path, (commit, after) in head.items():
        if after != base[path]:
            answerable.setdefault(commit, []).append(path)
    return tuple(Step(c, p, tuple(sorted(answerable.get(c, ())))) for c, p in reversed(order.items()))


def _first_parents(git: Git, old: str, new: str) -> Iterator[tuple[str, tuple[str, ...]]]:
    for line in git("rev-list", "--first-parent", "--parents", f"{old}..{new}").splitlines():
        commit, *parents = line.split()
        yield commit, tuple(parents)


def brought(git: Git, merge: Step) -> tuple[Brought, ...]:
    """The commits ``merge`` brought (on its merged branch and not on its first parent), with their paths."""
    first, merged = merge.parents[0], merge.parents[1]
    found: dict[str, set[str]] = {c: set() for c in git("rev-list", f"{first}..{merged}").split()}
    for commit, _, path, _, _ in changes(git, f"{first}..{merged}"):
        found.setdefault(commit, set()).add(path)
    return tuple(Brought(c, frozenset(p)) for c, p in found.items())


def beyond_branch(git: Git, merge: Step) -> frozenset[str]:
    """Paths where the merge's tree differs from its merged branch's (the merge did not take them as is)."""
    out = git.raw("diff-tree", "-r", "-z", "--no-renames", "--name-only", merge.parents[1], merge.commit)
    return frozenset(text(p) for p in out.split(b"\0") if p)


def own_changes(git: Git, merge: Step) -> frozenset[str]:
    """Paths where the merge's tree differs from what git's own merge of its parents makes: what the person
    who made the merge wrote themselves (an "evil merge", or a conflict resolved in the merge)."""
    out = git.raw("log", "-1", "--diff-merges=remerge", "--name-only", "-z", "--format=", merge.commit)
    return frozenset(text(p) for p in out.lstrip(b"\n").split(b"\0") if p)
