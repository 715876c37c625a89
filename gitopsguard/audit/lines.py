"""The audit log's lines, read as bytes and split on b"\\n" alone: no other code point ends a line here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Tail:
    """The end of the file: its last complete line and whatever follows that line's b"\\n"."""

    line: bytes | None  # without its b"\n"; None when the file has no complete line
    fragment: bytes  # bytes after the last b"\n": a record that lacks its end of line, or an append cut off


def read_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, the line without its b"\\n", whether it had one) for each line of ``path``."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):  # binary files split on b"\n" only
            yield number, raw.removesuffix(b"\n"), raw.endswith(b"\n")


def read_tail(handle: BinaryIO) -> Tail:
    """The tail of an open file, read backwards: an append costs the same on a log of any length."""
    start = handle.seek(0, os.SEEK_END)
    buffer, breaks = b"", 0
    while start > 0 and breaks < 2:
        step = min(_CHUNK, start)
        start -= step
        handle.seek(start)
        chunk = handle.read(step)
        breaks += chunk.count(b"\n")
        buffer = chunk + buffer
    head, newline, fragment = buffer.rpartition(b"\n")
    if not newline:
        return Tail(None, buffer)
    return Tail(head.rpartition(b"\n")[2], fragment)


def count_lines(handle: BinaryIO) -> int:
    """How many b"\\n" the open file holds: the number of its last complete line."""
    handle.seek(0)
    count = 0
    while chunk := handle.read(_CHUNK):
        count += chunk.count(b"\n")
    return count
