"""What a range of a branch's history brought, read from git in one call: the first-parent steps from the
applied commit to the new head, the paths whose content at the head each step is answerable for, and, for a
merge, the commits it brought, the paths each changed, and what the merged branch held.

A path is answerable to every step that changed it since it last held the applied commit's content (mode and
object): a change reverted before the head never reaches the cluster, and one overwritten by a later edit
may still have lines in the head. Every
commit of the range is listed once with its first-parent diff (``git log --raw --diff-merges=first-parent``);
the commits a merge brought are those it reaches through its merged branch that no earlier step reached.
What a merge took beyond git's own merge of its parents is read with ``own_changes`` (one call per merge).
Paths are git's bytes, decoded with ``surrogateescape`` so that two different names never read as one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gitopsguard.errors import SourceError
from gitopsguard.evidence.history import Git

State = tuple[str, str]  # (mode, object id) of a path in a tree; mode "000000" where it is absent
_RAW = ("--raw", "-z", "--no-renames", "--no-abbrev", "--diff-merges=first-parent")


@dataclass(frozen=True)
class Commit:
    commit: str
    parents: tuple[str, ...]
    changed: dict[str, State] = field(default_factory=dict)  # path -> its state after this commit
    before: dict[str, State] = field(default_factory=dict)  # path -> its state in the first parent


@dataclass(frozen=True)
class Step:
    """A first-parent commit, its parents, and the paths whose head content it brought."""

    commit: str
    parents: tuple[str, ...]
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Merged:
    """What a merge step brought: the commits it reached through its merged branch that no earlier step had
    (what its branch held is judged against git's own merge of its parents, ``own_changes``)."""

    commits: tuple[Commit, ...]


@dataclass(frozen=True)
class RangeHistory:
    steps: tuple[Step, ...]  # oldest first
    merged: dict[str, Merged]  # merge step -> what it brought
    commits: dict[str, Commit]


def text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


def read_range(git: Git, old: str, new: str) -> RangeHistory:
    """The steps of ``old..new``; SourceError when the first-parent history from ``new`` does not pass
    through ``old`` (evidence is read along it)."""
    commits = _commits(git, old, new)
    chain = _chain(commits, old, new)
    answerable = _answerable(commits, chain)
    steps = tuple(Step(c, commits[c].parents, tuple(sorted(answerable.get(c, ())))) for c in reversed(chain))
    merged: dict[str, Merged] = {}
    reached: set[str] = set()
    for step in steps:
        reached.add(step.commit)
        if len(step.parents) == 2:
            brought = _reach(commits, step.parents[1], reached)
            merged[step.commit] = Merged(brought)
    return RangeHistory(steps, merged, commits)


def _commits(git: Git, old: str, new: str) -> dict[str, Commit]:
    out = git.raw("log", *_RAW, "--format=%x01%H %P", f"{old}..{new}")
    tokens, index, found = out.split(b"\0"), 0, {}
    current: Commit | None = None
    while index < len(tokens):
        token = tokens[index].lstrip(b"\n")
        index += 1
        if token.startswith(b"\x01"):
            commit, *parents = text(token[1:]).split()
            current = found[commit] = Commit(commit, tuple(parents))
        elif token.startswith(b":") and index < len(tokens) and current is not None:
            old_mode, new_mode, old_id, new_id, _ = text(token[1:]).split(" ", 4)
            path = text(tokens[index])
            current.changed[path], current.before[path] = (new_mode, new_id), (old_mode, old_id)
            index += 1
    return found


def _chain(commits: dict[str, Commit], old: str, new: str) -> list[str]:
    """The first-parent chain from ``new`` back to (not including) ``old``, newest first."""
    chain: list[str] = []
    at = new
    while at in commits and len(chain) <= len(commits):
        chain.append(at)
        parents = commits[at].parents
        at = parents[0] if parents else ""
    if at != old:
        raise SourceError(f"{new[:12]}: the branch's first-parent history does not pass through {old[:12]}; "
                          "review evidence is read along it, so this history is refused")  # fmt: skip
    return chain


def _answerable(commits: dict[str, Commit], chain: list[str]) -> dict[str, list[str]]:
    """Per step, the paths it must answer for: every step that changed a path since the path last held its
    content at the applied commit. Not only the newest: a later reviewed edit of the same file does not
    review the lines an earlier push put there. A revert back to the applied content clears what came before."""
    base: dict[str, State] = {}
    for commit in chain:  # newest first: the oldest step's "before" is the applied commit's state
        for path, before in commits[commit].before.items():
            base[path] = before
    since: dict[str, list[str]] = {}
    for commit in reversed(chain):  # oldest first
        for path, after in commits[commit].changed.items():
            if after == base[path]:
                since[path] = []
            else:
                since.setdefault(path, []).append(commit)
    answerable: dict[str, list[str]] = {}
    for path, steps in since.items():
        for commit in steps:
            answerable.setdefault(commit, []).append(path)
    return answerable


def _reach(commits: dict[str, Commit], tip: str, reached: set[str]) -> tuple[Commit, ...]:
    """Commits of the range reachable from ``tip`` and not yet ``reached`` (added to it)."""
    found, todo = [], [tip]
    while todo:
        at = todo.pop()
        if at in reached or at not in commits:
            continue
        reached.add(at)
        found.append(commits[at])
        todo.extend(reversed(commits[at].parents))
    return tuple(found)


def merge_bases(git: Git, first: str, second: str) -> list[str]:
    """Every merge base of two commits (more than one in a criss-cross history)."""
    return git("merge-base", "--all", first, second).split()


def own_changes(git: Git, merge: str) -> frozenset[str]:
    """Paths where the merge's tree differs from what git's own merge of its parents makes: what the person
    who made the merge wrote themselves (an "evil merge", or a conflict resolved in the merge)."""
    out = git.raw("log", "-1", "--diff-merges=remerge", "--no-renames", "--name-only", "-z", "--format=", merge)
    return frozenset(text(p) for p in out.lstrip(b"\n").split(b"\0") if p)
