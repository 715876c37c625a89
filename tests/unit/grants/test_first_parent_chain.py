"""The keeper follows a branch only along its first parents: a new head counts as the branch moving forward
only when the last commit read is on the new head's first-parent chain (being an ancestor is not enough: a
merge whose first parent is an older commit contains the head through its second parent, yet makes the old
chain the branch every piece of evidence follows). Real git repositories."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gitopsguard.evidence.history import Git, History

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# an operation: (0, branch) commits on a branch; (1, into, from) merges ``from`` into ``into`` (``into`` first);
# (2, into, from) merges with the parents swapped (``from`` first), as a hand-made merge may
Op = tuple[int, int, int]


def build(root: Path, ops: list[Op]) -> tuple[History, list[str], list[str]]:
    """Runs ``ops`` over two branches that start at one root commit; (history, every commit, branch heads)."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    git = Git(root, ["-c", "user.name=t", "-c", "user.email=t@example.com"])
    commits = [git("commit-tree", EMPTY_TREE, "-m", "root")]
    heads = [commits[0], commits[0]]
    for n, (kind, into, other) in enumerate(ops):
        parents = [heads[into]] if kind == 0 else [heads[into], heads[other]]
        if kind == 2:
            parents.reverse()
        made = git("commit-tree", EMPTY_TREE, *[a for p in parents for a in ("-p", p)], "-m", str(n))
        commits.append(made)
        heads[into] = made
    return History(git), commits, heads


operations = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), st.integers(0, 1)), max_size=7)


@settings(max_examples=40)  # each example builds a repository: 40 keep this test within seconds
@given(operations)
@example([(0, 1, 0), (0, 0, 0), (2, 0, 1)])  # main's head merged with branch 1 put first: the swap
@example([(0, 1, 0), (1, 1, 0), (0, 0, 0)])  # main merged into a side branch, which is then taken as main
def test_a_commit_is_on_a_heads_chain_exactly_when_the_first_parent_walk_meets_it(ops: list[Op]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        history, commits, heads = build(Path(folder), ops)
        for tip in heads:
            chain = set(history.first_parents(tip))
            for commit in commits:
                assert history.on_first_parent_chain(commit, tip) == (commit in chain), (commit, tip)


def test_a_merge_that_puts_the_old_commit_first_is_not_the_branch_moving_forward(tmp_path: Path) -> None:
    history, (root, old), _ = build(tmp_path, [(0, 0, 0)])
    git = Git(tmp_path, ["-c", "user.name=t", "-c", "user.email=t@example.com"])
    head = git("commit-tree", EMPTY_TREE, "-p", old, "-m", "the head, last read")
    swapped = git("commit-tree", EMPTY_TREE, "-p", old, "-p", head, "-m", "Merge main")
    assert history.is_ancestor(head, swapped)  # what the forward-only fetch checks: it passes
    assert not history.on_first_parent_chain(head, swapped)
    assert history.on_first_parent_chain(old, swapped) and history.on_first_parent_chain(root, swapped)


def test_a_merge_into_the_branch_and_fast_forwards_are_the_branch_moving_forward(tmp_path: Path) -> None:
    history, commits, (main, _) = build(tmp_path, [(0, 0, 0), (0, 1, 0), (1, 0, 1), (0, 0, 0)])
    assert all(history.on_first_parent_chain(commits[i], main) for i in (0, 1, 3, 4))
    assert not history.on_first_parent_chain(commits[2], main)  # the side branch's commit came as second parent
