"""Finding and reading the YAML files of a commit, within the render's bounds and inside the checkout.

Symlinks are refused outright, pointing inside the checkout or not (issue 15.16: a symlink made a render
read files that are in no commit). Checking where each one points would be a second, weaker rule for a
thing no manifest folder needs; a plain copy of the file does the same job and is reviewed as what it is.
Sizes are checked from the file system before a byte is read (issue 21.10: a 9 MB file took 1.2 GiB to
parse), and folders may nest only so deep (a folder 1,500 deep broke Python's recursion and PATH_MAX).
"""

from __future__ import annotations

import os
from pathlib import Path

from gitopsguard.documents.limits import LIMITS, ReadLimits
from gitopsguard.errors import GitOpsGuardError

YAML_SUFFIXES = (".yaml", ".yml")


def yaml_files(
    directory: Path, root: Path, error: type[GitOpsGuardError], *, settings: ReadLimits = LIMITS,
    skip_hidden: bool = True,
) -> list[Path]:  # fmt: skip
    """The .yaml/.yml files below ``directory`` in path order, their sizes within the render's bounds. Raises
    ``error`` naming the path (relative to ``root``) for a symlink, a folder nested too deep, a file or all
    files together too big, or one that cannot be listed."""
    found: list[Path] = []
    pending = [(directory, 0)]
    while pending:
        folder, depth = pending.pop()
        if depth > settings.max_folder_depth:
            raise error(f"{shown(folder, root)}: folders nested deeper than {settings.max_folder_depth} "
                        "(max_folder_depth); flatten the folders")  # fmt: skip
        for entry in _entries(folder, root, error):
            path = Path(entry.path)
            if skip_hidden and entry.name.startswith("."):
                continue
            if not _plain_name(entry.name):
                raise error(f"{ascii(shown(path, root))[1:-1]}: the name is not UTF-8 text or holds control "
                            "characters; rename it (names end up in messages, logs and notices)")  # fmt: skip
            if entry.is_symlink():
                raise error(f"{shown(path, root)}: is a symlink; a render reads only files in the commit, so "
                            "replace the symlink with the file or folder itself")  # fmt: skip
            if entry.is_dir(follow_symlinks=False):
                pending.append((path, depth + 1))
            elif entry.is_file(follow_symlinks=False) and path.suffix in YAML_SUFFIXES:
                found.append(path)
    found.sort()
    _require_sizes(found, root, error, settings)
    return found


def _plain_name(name: str) -> bool:
    """UTF-8 text without control characters (os.scandir gives undecodable bytes as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return name.isprintable()


def _entries(folder: Path, root: Path, error: type[GitOpsGuardError]) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as e:
        raise error(f"{shown(folder, root)}: cannot list the folder: {e.strerror}") from e


def _require_sizes(files: list[Path], root: Path, error: type[GitOpsGuardError], settings: ReadLimits) -> None:
    total = 0
    for path in files:
        size = _size(path, root, error)
        if size > settings.max_file_bytes:
            raise error(f"{shown(path, root)}: {size} bytes, more than the {settings.max_file_bytes} a file may "
                        "have (max_file_bytes); split it into smaller files")  # fmt: skip
        total += size
        if total > settings.max_total_bytes:
            raise error(f"{shown(path, root)}: with this file the render passes {settings.max_total_bytes} bytes "
                        "of YAML (max_total_bytes); render smaller paths")  # fmt: skip


def _size(path: Path, root: Path, error: type[GitOpsGuardError]) -> int:
    try:
        return path.stat(follow_symlinks=False).st_size
    except OSError as e:
        raise error(f"{shown(path, root)}: cannot read the file: {e.strerror}") from e


def read_bounded(
    path: Path, root: Path, error: type[GitOpsGuardError], settings: ReadLimits = LIMITS, *,
    shown: str | None = None,
) -> str:  # fmt: skip
    """The text of one file, refused (naming it) when it is a symlink or bigger than ``max_file_bytes``; at
    most that many bytes are ever read, even if the file grows meanwhile."""
    return read_bounded_bytes(path, root, error, settings, shown=shown).decode("utf-8", errors="replace")


def read_bounded_bytes(
    path: Path, root: Path, error: type[GitOpsGuardError], settings: ReadLimits = LIMITS, *,
    shown: str | None = None,
) -> bytes:  # fmt: skip
    """The bytes of one file, within the same bounds as ``read_bounded``."""
    name = shown or _shown(path, root)
    if path.is_symlink():
        raise error(f"{name}: is a symlink; replace it with the file itself (only files in the commit are read)")
    try:
        with path.open("rb") as handle:
            data = handle.read(settings.max_file_bytes + 1)
    except OSError as e:
        raise error(f"{name}: cannot read the file: {e.strerror}") from e
    if len(data) > settings.max_file_bytes:
        raise error(f"{name}: more than the {settings.max_file_bytes} bytes a file may have "
                    "(max_file_bytes); split it into smaller files")  # fmt: skip
    return data


def resolved(path: Path, name: str, error: type[GitOpsGuardError]) -> Path:
    """The path with every symlink followed; ``error`` naming ``name`` for a symlink loop or a path the
    system cannot resolve (pathlib raises RuntimeError for a loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as e:
        raise error(f"{name}: cannot be resolved (a symlink loop, or a path too long); remove it") from e


def shown(path: Path, root: Path) -> str:
    """The path as errors show it: relative to the checkout when inside it."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


_shown = shown  # for read_bounded, whose keyword of that name hides it
