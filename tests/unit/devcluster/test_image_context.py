"""The staged build context is what buildah sees, and its hash changes exactly when what buildah sees changes.

The attacker here is a commit: a symbolic link to a file outside the checkout (a key, a token) must reach
the build as a link, never as the file's content; and no change to a file the image copies may leave the hash,
and with it a stale image, unchanged.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.devcluster import image_context
from gitopsguard.devcluster.image import SOURCE_ROOT
from gitopsguard.devcluster.image_context import context_entries, context_hash, stage_context
from gitopsguard.errors import ImageBuildError

IGNORE = "*\n!pyproject.toml\n!app/\napp/**/__pycache__\n"


def make_context(root: Path, files: dict[str, str], ignore: str = IGNORE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY app /app\n")
    (root / ".dockerignore").write_text(ignore)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def staged_hash(context: Path, tmp_path: Path) -> str:
    destination = tmp_path / f"staged-{len(list(tmp_path.iterdir()))}"
    return stage_context(context, destination)


def test_only_what_dockerignore_lets_in_is_staged_with_the_dockerfile(tmp_path: Path) -> None:
    context = make_context(
        tmp_path / "ctx",
        {"app/main.py": "x", "app/__pycache__/main.pyc": "b", "tests/t.py": "t", "pyproject.toml": "p"},
    )
    assert context_entries(context) == (".dockerignore", "Dockerfile", "app", "app/main.py", "pyproject.toml")
    stage_context(context, tmp_path / "staged")
    staged = sorted(p.relative_to(tmp_path / "staged").as_posix() for p in (tmp_path / "staged").rglob("*"))
    assert staged == [".dockerignore", "Dockerfile", "app", "app/main.py", "pyproject.toml"]


def test_the_hash_changes_with_content_a_new_file_a_rename_and_the_executable_bit(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx", {"app/main.py": "x"})
    seen = {staged_hash(context, tmp_path)}
    (context / "app/main.py").write_text("y")
    seen.add(staged_hash(context, tmp_path))
    (context / "app/extra.py").write_text("")
    seen.add(staged_hash(context, tmp_path))
    (context / "app/extra.py").rename(context / "app/other.py")
    seen.add(staged_hash(context, tmp_path))
    (context / "app/other.py").chmod(0o755)
    seen.add(staged_hash(context, tmp_path))
    (context / "Dockerfile").write_text("FROM scratch\n")
    seen.add(staged_hash(context, tmp_path))
    assert len(seen) == 6


def test_a_change_the_build_cannot_see_keeps_the_hash(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx", {"app/main.py": "x", "tests/t.py": "1"})
    before = staged_hash(context, tmp_path)
    (context / "tests/t.py").write_text("2")
    (context / "app/__pycache__").mkdir()
    (context / "app/__pycache__/main.cpython-311.pyc").write_bytes(b"\0")
    assert staged_hash(context, tmp_path) == before


def test_a_link_to_a_secret_outside_the_context_is_staged_as_a_link_never_its_content(tmp_path: Path) -> None:
    secret = tmp_path / "id_ed25519"
    secret.write_text("PRIVATE KEY")
    context = make_context(tmp_path / "ctx", {"app/main.py": "x"})
    (context / "app/key").symlink_to(secret)
    (context / "app/keys").symlink_to(tmp_path)  # a link to a directory is not walked either
    before = staged_hash(context, tmp_path)
    staged = tmp_path / "staged-link"
    stage_context(context, staged)
    assert (staged / "app/key").is_symlink()
    assert (staged / "app/key").readlink() == secret
    assert (staged / "app/keys").is_symlink()
    assert not any("PRIVATE KEY" in p.read_text() for p in staged.rglob("*") if p.is_file() and not p.is_symlink())
    secret.write_text("ANOTHER KEY")  # not followed, so not hashed
    assert staged_hash(context, tmp_path) == before
    (context / "app/key").unlink()
    (context / "app/key").symlink_to(tmp_path / "elsewhere")
    assert staged_hash(context, tmp_path) != before


def test_a_pipe_in_the_context_is_refused_naming_it(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx", {"app/main.py": "x"})
    os.mkfifo(context / "app/pipe")
    with pytest.raises(ImageBuildError, match=r"ctx/app/pipe: app/pipe is neither a file"):
        stage_context(context, tmp_path / "staged")


def test_a_context_over_the_size_limit_is_refused_before_it_is_copied(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx", {"app/main.py": "x"})
    with (context / "app/huge.bin").open("wb") as sparse:
        sparse.truncate(image_context.MAX_CONTEXT_BYTES + 1)
    with pytest.raises(ImageBuildError, match=r"more than 256 MiB \(at app/huge.bin\).*\.dockerignore"):
        stage_context(context, tmp_path / "staged")
    assert not (tmp_path / "staged/app/huge.bin").exists()


def test_names_that_are_not_utf8_are_staged_and_hashed(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx", {"app/main.py": "x"})
    odd = os.fsdecode(b"app/\xff\xfe name\n.py")
    (context / odd).write_text("odd")
    before = staged_hash(context, tmp_path)
    (context / odd).write_text("changed")
    assert staged_hash(context, tmp_path) != before


files = st.dictionaries(
    st.text(alphabet="ab/", min_size=1, max_size=4).filter(lambda n: "//" not in n and not n.startswith("/")),
    st.binary(max_size=4),
    max_size=4,
)


def write_tree(root: Path, tree: dict[str, bytes]) -> bool:
    """Write ``tree``; False when its names cannot coexist (a file where another needs a directory)."""
    root.mkdir()
    for name, body in tree.items():
        path = root / name.rstrip("/")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            return False
    return True


@given(first=files, second=files)
@example(first={"a": b"b"}, second={"ab": b""})  # a name and its content run together without framing
@example(first={"a": b""}, second={"a/": b""})
def test_different_trees_never_share_a_hash(tmp_path_factory: pytest.TempPathFactory, first: dict[str, bytes],
                                            second: dict[str, bytes]) -> None:  # fmt: skip
    base = tmp_path_factory.mktemp("trees")
    if not (write_tree(base / "one", first) and write_tree(base / "two", second)):
        return
    same_tree = _snapshot(base / "one") == _snapshot(base / "two")
    assert (context_hash(base / "one") == context_hash(base / "two")) is same_tree
    shutil.rmtree(base)


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None) for p in root.rglob("*")}


def test_the_repository_context_holds_only_what_the_image_copies() -> None:
    top = {entry.split("/", 1)[0] for entry in context_entries(SOURCE_ROOT)}
    assert top == {".dockerignore", "Dockerfile", "README.md", "pyproject.toml", "gitopsguard"}
