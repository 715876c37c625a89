""".dockerignore is read as Docker reads it, and a pattern means its characters, never a regular expression.

The cases come from Docker's documentation of .dockerignore (docs.docker.com, "Build context"): ``*/temp*``,
``*/*/temp*``, ``temp?``, ``**/*.go``, ``*.md`` with ``!README.md``, and the last matching line winning.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.devcluster.image_context import is_excluded, parse_dockerignore
from gitopsguard.errors import ImageBuildError


def excluded(patterns: str, path: str) -> bool:
    return is_excluded(path, parse_dockerignore(patterns))


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/temp*", "somedir/temp", True),
        ("*/temp*", "temp.txt", False),
        ("*/temp*", "a/b/temp.txt", False),
        ("*/*/temp*", "somedir/subdir/temporary.txt", True),
        ("temp?", "tempa", True),
        ("temp?", "temp", False),
        ("temp?", "tempab", False),
        ("**/*.go", "main.go", True),
        ("**/*.go", "a/b/c.go", True),
        ("**/*.go", "a/b/c.gox", False),
        ("*.md\n!README.md", "README.md", False),
        ("*.md\n!README.md", "CHANGES.md", True),
        ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
        ("*.md\n!README*.md\nREADME-secret.md", "README-public.md", False),
        ("*.md\nREADME-secret.md\n!README*.md", "README-secret.md", False),
        ("build", "build/x/y.py", True),
        ("/build", "build/y.py", True),
        ("foo/../build", "build/y.py", True),
        ("# a comment\n\n  build  ", "build", True),
        ("*\n!gitopsguard/", "gitopsguard/cli.py", False),
        ("*\n!gitopsguard/\ngitopsguard/**/__pycache__", "gitopsguard/a/__pycache__/x.pyc", True),
        ("*\n!gitopsguard/\ngitopsguard/**/__pycache__", "gitopsguard/__pycache__/x.pyc", True),
        ("*\n!gitopsguard/", "tests/test_x.py", True),
        ("[ab].txt", "a.txt", True),
        ("[ab].txt", "c.txt", False),
        ("[^a].txt", "b.txt", True),
        ("[^a].txt", "a.txt", False),
        ("[a-c].txt", "b.txt", True),
    ],
)
def test_patterns_mean_what_docker_documents(patterns: str, path: str, expected: bool) -> None:
    assert excluded(patterns, path) is expected


@pytest.mark.parametrize(
    ("pattern", "other"),
    [
        ("a.txt", "abtxt"),  # a dot is a dot
        ("a+b(c).txt", "aab(c).txt"),
        ("x|y", "x"),
        ("^$", ""),
        (r"\*", "anything"),
        (r"\[x\].py", "x.py"),
    ],
)
def test_a_pattern_is_no_regular_expression(pattern: str, other: str) -> None:
    assert not excluded(pattern, other)


def test_a_quoted_glob_character_matches_only_itself() -> None:
    assert excluded(r"\*", "*")
    assert excluded(r"\[x\].py", "[x].py")
    assert excluded(r"\?", "?")


@pytest.mark.parametrize(
    ("text", "line"),
    [("build\n!\n", 2), ("ok\n[abc\n", 2), ("trailing\\", 1)],
)
def test_an_unreadable_pattern_is_refused_naming_its_line(text: str, line: int) -> None:
    with pytest.raises(ImageBuildError, match=rf"^ctx/\.dockerignore:{line}: "):
        parse_dockerignore(text, "ctx/.dockerignore")


def quoted(name: str) -> str:
    """``name`` as a .dockerignore pattern that means exactly that name."""
    return "".join("\\" + c if c in "*?[]\\!#" else c for c in name)


names = st.text(
    alphabet=st.characters(blacklist_characters="/\0\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), min_size=1, max_size=20
).filter(lambda n: n.strip() == n and n not in {".", ".."})


@given(name=names, other=names)
@example(name="a.b", other="axb")
@example(name="[a]", other="a")
@example(name="*", other="x")
@example(name="#x", other="x")
@example(name="!x", other="x")
@example(name="x\\", other="x")
def test_a_quoted_name_excludes_that_name_and_no_other(name: str, other: str) -> None:
    rules = parse_dockerignore(quoted(name))
    assert is_excluded(name, rules)
    assert is_excluded(f"{name}/inside", rules)
    assert is_excluded(other, rules) is (other == name)


@given(name=names)
def test_an_exception_after_star_lets_in_exactly_its_name(name: str) -> None:
    rules = parse_dockerignore(f"*\n!{quoted(name)}")
    assert not is_excluded(name, rules)
    assert is_excluded(name + "x", rules)
