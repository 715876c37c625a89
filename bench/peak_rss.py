"""Run a bench script in this process and print the process's peak RSS when it ends.

    PYTHONPATH=$PWD .venv/bin/python bench/peak_rss.py bench/apply_2000.py --rounds 1

For benches whose passes run in their own process (``apply_2000.py``: the initial apply, the loop's passes and
its live cache), and for an older checkout's copy of such a bench: run from that checkout's root with its
PYTHONPATH, this file needs nothing of gitopsguard. Children (kubectl, git) are not counted.
"""

from __future__ import annotations

import resource
import runpy
import sys


def main() -> None:
    script, *args = sys.argv[1:]
    sys.argv = [script, *args]
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of the bench's process ({script}): {peak:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
