"""An image's build context: the files its ``.dockerignore`` lets in, copied for buildah, and one hash of them.

The hash decides whether an image is built again, so it must cover everything the build can see. It does by
construction: buildah is given the staged copy, never the checkout, and the hash is taken of that copy. A file
the rules let in that the hash missed cannot exist; at worst an odd rule leaves a file out, and then the build
fails or the image lacks it, which the image's tests see.

``.dockerignore`` is read as Docker reads it (moby's patternmatcher): one pattern a line, ``#`` comments, ``!``
for exceptions, the last matching pattern wins, a pattern matching a parent directory matches what is in it,
``**`` spans directories, ``*`` and ``?`` stay within one, ``[...]`` is a class and ``\\`` quotes. An excluded
directory is skipped unless an exception names a path inside it. The Dockerfile and ``.dockerignore`` are
always sent, as Docker does. Symbolic links are copied as links and never followed.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from gitopsguard.errors import ImageBuildError

# A context bigger than this is a mistake (a venv or a cache let in by .dockerignore), not an image's sources.
MAX_CONTEXT_BYTES = 256 * 1024 * 1024
_ALWAYS_SENT = ("Dockerfile", ".dockerignore")
_REGEX_SPECIAL = set(".+()|{}$^")


@dataclass(frozen=True)
class IgnoreRule:
    text: str  # the pattern as cleaned, without its "!"
    exception: bool
    regex: re.Pattern[str]


def parse_dockerignore(text: str, source: str = ".dockerignore") -> tuple[IgnoreRule, ...]:
    """The rules of one .dockerignore; a pattern that cannot be read is an error naming its line."""
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        exception = pattern.startswith("!")
        if exception:
            pattern = pattern[1:].strip()
            if not pattern:
                raise ImageBuildError(f"{source}:{number}: a lone '!' excepts nothing; give a path after it")
        cleaned = posixpath.normpath(pattern).lstrip("/") or "."
        try:
            regex = re.compile(_translate(cleaned), re.DOTALL)
        except (re.error, ValueError) as error:
            raise ImageBuildError(f"{source}:{number}: {line.strip()!r} is not a valid pattern: {error}") from error
        rules.append(IgnoreRule(cleaned, exception, regex))
    return tuple(rules)


def _translate(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 3 if pattern.startswith("**/", i) else 2
            out.append(".*" if i >= len(pattern) else "(?:.*/)?")
            continue
        if char == "[":
            end = _class_end(pattern, i)
            out.append(_translate_class(pattern[i + 1 : end]))
            i = end + 1
            continue
        if char == "\\":
            if i + 1 >= len(pattern):
                raise ValueError("a trailing backslash quotes nothing")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char)))
        i += 1
    return "^" + "".join(out) + "$"


def _class_end(pattern: str, start: int) -> int:
    end = pattern.find("]", start + 2 if pattern.startswith("[^", start) else start + 1)
    if end < 0:
        raise ValueError("a '[' without its ']'")
    return end


def _translate_class(body: str) -> str:
    negated = body.startswith("^")
    chars = body[1:] if negated else body
    escaped = "".join(c if c == "-" or c.isalnum() else re.escape(c) for c in chars)
    return "[" + ("^" if negated else "") + escaped + "]"


def is_excluded(path: str, rules: tuple[IgnoreRule, ...]) -> bool:
    """Whether ``path`` (relative, '/'-separated) is left out: the last rule matching it or a parent decides."""
    parents = path.split("/")[:-1]
    candidates = [path] + ["/".join(parents[: i + 1]) for i in range(len(parents))]
    excluded = False
    for rule in rules:
        if rule.exception != excluded:
            continue  # only an exclusion can change an included path, only an exception an excluded one
        if any(rule.regex.match(candidate) for candidate in candidates):
            excluded = not rule.exception
    return excluded


def _descend_into_excluded(directory: str, rules: tuple[IgnoreRule, ...]) -> bool:
    prefix = directory + "/"
    return any(rule.exception and (rule.text + "/").startswith(prefix) for rule in rules)


def context_entries(context: Path, dockerfile: str = "Dockerfile") -> tuple[str, ...]:
    """Every path the build sees (directories, files, links), relative, sorted; links are not followed."""
    ignore = context / ".dockerignore"
    rules = parse_dockerignore(ignore.read_text(errors="surrogateescape"), str(ignore)) if ignore.is_file() else ()
    found: set[str] = {name for name in (dockerfile, *_ALWAYS_SENT) if os.path.lexists(context / name)}
    for directory, subdirs, files in os.walk(context):
        relative_dir = Path(directory).relative_to(context).as_posix()
        for name in list(subdirs):
            relative = name if relative_dir == "." else f"{relative_dir}/{name}"
            if (context / relative).is_symlink():
                subdirs.remove(name)  # a link to a directory is one entry; never walk through it
                files.append(name)
            elif is_excluded(relative, rules):
                if not _descend_into_excluded(relative, rules):
                    subdirs.remove(name)
            else:
                found.add(relative)
        for name in files:
            relative = name if relative_dir == "." else f"{relative_dir}/{name}"
            if not is_excluded(relative, rules):
                found.add(relative)
    return tuple(sorted(found))


def stage_context(context: Path, destination: Path, dockerfile: str = "Dockerfile") -> str:
    """Copy the build's view of ``context`` into ``destination`` (new) and return the hash of the copy."""
    destination.mkdir(parents=True)
    total = 0
    for relative in context_entries(context, dockerfile):
        source, target = context / relative, destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        total += source.lstat().st_size if source.is_file() and not source.is_symlink() else 0
        if total > MAX_CONTEXT_BYTES:  # checked before the copy: a huge (or sparse) file is never read
            raise ImageBuildError(
                f"{context}: the build context holds more than {MAX_CONTEXT_BYTES >> 20} MiB (at {relative}); "
                "leave caches, venvs and data out of it in .dockerignore"
            )
        _copy_entry(source, target, relative)
    return context_hash(destination)


def _copy_entry(source: Path, target: Path, relative: str) -> None:
    mode = source.lstat().st_mode
    if stat.S_ISLNK(mode):
        target.symlink_to(source.readlink())
        return
    if stat.S_ISDIR(mode):
        target.mkdir(exist_ok=True)
        target.chmod(stat.S_IMODE(mode))
        return
    if not stat.S_ISREG(mode):
        raise ImageBuildError(
            f"{source}: {relative} is neither a file, a directory nor a link (a socket, pipe or device); "
            "remove it or leave it out in .dockerignore"
        )
    shutil.copyfile(source, target, follow_symlinks=False)
    target.chmod(stat.S_IMODE(mode))


def context_hash(root: Path) -> str:
    """sha256 over every entry under ``root``: kind, permission bits, path and content (a link's target).

    Every field is length-prefixed, so no arrangement of names and contents can be read as another.
    """
    digest = hashlib.sha256(b"gitopsguard-context-1\0")
    for relative in _all_entries(root):
        path = root / os.fsdecode(relative)
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            kind, body = b"l", os.fsencode(path.readlink())
        elif stat.S_ISDIR(mode):
            kind, body = b"d", b""
        else:
            kind, body = b"f", path.read_bytes()
        for field in (kind, b"%o" % stat.S_IMODE(mode), relative, body):
            digest.update(len(field).to_bytes(8, "big") + field)
    return digest.hexdigest()


def _all_entries(root: Path) -> list[bytes]:
    found = []
    for directory, subdirs, files in os.walk(root):  # does not descend through links
        for name in (*subdirs, *files):
            found.append(os.fsencode(Path(directory, name).relative_to(root)))
    return sorted(found)
