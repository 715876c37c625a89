"""Hostile paths and modes against the review: a symlink swapped in for a reviewed file, names with glob
characters, bytes that are not UTF-8, newlines. The attacker is a contributor who can push to the branch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from gitopsguard.errors import GitOpsGuardError
from gitopsguard.source.review import UnreviewedRevisionError
from gitopsguard.source.rules import pattern
from tests.reviewrepo import ReviewRepo


@pytest.fixture
def repo(tmp_path: Path) -> ReviewRepo:
    return ReviewRepo(tmp_path)


def test_a_reviewed_file_turned_into_a_symlink_with_the_same_bytes_is_refused(repo: ReviewRepo) -> None:
    repo.change("alice", "link", {"apps/config.yaml": "/etc/passwd"})
    merged = repo.merge("carol", "link")
    target = repo.work / "apps/config.yaml"
    target.unlink()
    target.symlink_to("/etc/passwd")  # the same blob, another mode
    pushed = repo.commit("alice", "make it a link")
    with pytest.raises(UnreviewedRevisionError) as refused:
        repo.reviewer().verify(repo.work, merged, pushed)
    assert refused.value.commit == pushed


def test_a_pushed_name_with_glob_characters_borrows_no_rule_from_a_lookalike(repo: ReviewRepo) -> None:
    trust = yaml.safe_load(repo.trust.read_text())
    trust["pushes"][0]["paths"].append("clusters/dev/[abc].yaml")
    repo.trust.write_text(yaml.safe_dump(trust))
    allowed = repo.push("image-bot", {"clusters/dev/[abc].yaml": "x\n"})
    assert repo.reviewer().verify(repo.work, repo.base, allowed).approved[0].paths == 1
    lookalike = repo.push("image-bot", {"clusters/dev/a.yaml": "x\n"})
    with pytest.raises(UnreviewedRevisionError):
        repo.reviewer().verify(repo.work, allowed, lookalike)


def test_names_that_are_not_utf8_or_hold_newlines_are_judged_not_lost(repo: ReviewRepo) -> None:
    odd = repo.work / "apps"
    odd.mkdir()
    with open(os.fsencode(odd) + b"/caf\xe9.yaml", "wb") as written:  # noqa: PTH123 (a name of bytes)
        written.write(b"a: 1\n")
    (odd / "two\nlines.yaml").write_text("b: 2\n")
    pushed = repo.commit("alice", "odd names")
    with pytest.raises(UnreviewedRevisionError) as refused:
        repo.reviewer().verify(repo.work, repo.base, pushed)
    named = "\n".join(refused.value.problems)
    assert "apps/caf\\xe9.yaml: pushed" in named and "apps/two\\nlines.yaml: pushed" in named
    assert all("\n" not in problem for problem in refused.value.problems)  # no forged lines


def test_an_unreviewed_push_is_not_laundered_by_a_later_reviewed_edit_of_the_same_file(repo: ReviewRepo) -> None:
    """Found by the red team: a reviewed edit of a file does not review lines an earlier push put there
    (git's merge keeps them, and the reviewer's diff never shows them). Reverting the push is what clears it."""
    pushed = repo.push("alice", {"apps/web.yaml": "replicas: 99\n"})
    repo.change("bob", "fix", {"apps/web.yaml": "replicas: 2\n"})
    head = repo.merge("carol", "fix")
    with pytest.raises(UnreviewedRevisionError) as refused:
        repo.reviewer().verify(repo.work, repo.base, head)
    assert refused.value.commit == pushed


@pytest.mark.parametrize(
    ("text", "path", "matches"),
    [
        ("policies/", "policies/a/b.yaml", True),
        ("policies/", "policies", False),
        ("policies/", "policies-old/a.yaml", False),
        ("apps/*/deploy.yaml", "apps/shop/deploy.yaml", True),
        ("apps/*/deploy.yaml", "apps/shop/x/deploy.yaml", False),
        ("apps/**/deploy.yaml", "apps/deploy.yaml", True),
        ("apps/**/deploy.yaml", "apps/a/b/deploy.yaml", True),
        ("**", "anything/at/all", True),
        ("a?.yaml", "ab.yaml", False),
        ("a?.yaml", "a?.yaml", True),
        ("[ab].yaml", "a.yaml", False),
        ("[ab].yaml", "[ab].yaml", True),
        ("a\\*.yaml", "a\\x.yaml", True),
        ("*.yaml", "dir/x.yaml", False),
    ],
)
def test_patterns_have_one_meaning(text: str, path: str, matches: bool) -> None:
    assert pattern(text, "t").matches(path) is matches


@given(st.text(alphabet=st.characters(blacklist_characters="*\x00", blacklist_categories=["Cs"]), min_size=1))
def test_a_pattern_without_stars_matches_only_itself(text: str) -> None:
    if text.startswith("/") or text.endswith("/"):
        return
    compiled = pattern(text, "t")
    assert compiled.matches(text)
    assert not compiled.matches(text + "x") and not compiled.matches("x" + text)


@pytest.mark.parametrize("text", ["", "/abs", "a/***", "x" * 2000, "nul\x00"])
def test_malformed_patterns_are_refused_with_the_place_named(text: str) -> None:
    with pytest.raises(GitOpsGuardError, match="reviews\\[0\\]"):
        pattern(text, "trust.yaml: reviews[0]")
