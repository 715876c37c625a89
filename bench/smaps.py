"""Where a process's resident memory is, from ``/proc/PID/smaps``: the heap, anonymous mappings (malloc's
other arenas and large blocks, Python's obmalloc arenas, thread stacks) and file-backed mappings (the
interpreter, C extensions and shared libraries), each with its size in MiB.

    python bench/smaps.py PID [--top 12]

``bench/units_1000.py`` prints this for its controller before stopping it.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_HEADER = re.compile(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$")


def resident_by_mapping(pid: int) -> Counter[str]:
    """KiB resident per mapping name: ``[heap]``, ``[stack]``, ``[anon]`` (no name), or the file's path."""
    rss: Counter[str] = Counter()
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        header = _HEADER.match(line)
        if header:
            name = header.group(1).strip() or "[anon]"
        elif line.startswith("Rss:"):
            rss[name] += int(line.split()[1])
    return rss


def summary(pid: int, top: int = 8) -> str:
    """A few lines: totals by category, then the largest file-backed mappings."""
    rss = resident_by_mapping(pid)
    files = Counter({name: kib for name, kib in rss.items() if name.startswith("/")})
    heap, anon = rss["[heap]"], rss["[anon]"]
    other = sum(rss.values()) - heap - anon - sum(files.values())
    total, mapped = sum(rss.values()), sum(files.values())
    lines = [f"RSS {total / 1024:.1f} MiB: heap {heap / 1024:.1f}, anonymous {anon / 1024:.1f}, "
             f"file-backed {mapped / 1024:.1f} ({len(files)} files), other {other / 1024:.1f}"]  # fmt: skip
    lines += [f"  {kib / 1024:6.1f} MiB  {name}" for name, kib in files.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pid", type=int)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    print(summary(args.pid, args.top))


if __name__ == "__main__":
    main()
