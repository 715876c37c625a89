"""Pin the dev cluster's processes to one core for a timed run, and put them back on both afterwards.

`taskset -cp CORE PID` moves one thread only; etcd, the API server and the controller-manager are Go programs
with a thread per busy goroutine, so every thread is moved (`taskset -a`), and each is checked in
/proc/PID/task/*/status, again until none is left behind (a thread the runtime starts meanwhile inherits the
mask of the thread that started it). Restoring puts every thread on cores 0 and 1, whatever it had before: the
cluster is shared, and both cores are what `gitopsguard dev-cluster up` gives it.

    .venv/bin/python bench/affinity.py --restore      # put the control plane back on 0,1 (after a kill -9)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.controlplane import COMPONENTS
from gitopsguard.devcluster import StateLayout

BOTH = "0,1"


def control_plane_pids(layout: StateLayout | None = None) -> dict[str, int]:
    layout = layout or StateLayout.default()
    return {name: int(layout.pid_file(name).read_text().split()[0]) for name in COMPONENTS}


def allowed(pid: int) -> set[str]:
    """The Cpus_allowed_list of every thread of ``pid`` (e.g. {"0"} or {"0-1"})."""
    lists: set[str] = set()
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:  # the thread ended meanwhile
            continue
        lists.update(
            line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Cpus_allowed_list")
        )
    return lists


def set_cores(pids: Mapping[str, int], cores: str) -> None:
    """Every thread of every process on ``cores`` (a taskset list: "0" or "0,1"); raises if one stays off."""
    expected = {cores.replace(",", "-") if cores == BOTH else cores}
    for _ in range(5):
        for pid in pids.values():
            subprocess.run(["taskset", "-a", "-cp", cores, str(pid)], check=True, capture_output=True)
        left = {name: allowed(pid) - expected for name, pid in pids.items()}
        if not any(left.values()):
            return
    raise RuntimeError(f"control plane threads not on cores {cores} after 5 tries: {left}")


@contextmanager
def pinned(pids: Mapping[str, int], core: int) -> Iterator[None]:
    """The control plane on ``core`` for the block; back on both cores after it, even when it fails."""
    try:
        set_cores(pids, str(core))
        yield
    finally:
        set_cores(pids, BOTH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--restore", action="store_true", help="put every control plane thread on cores 0,1")
    args = parser.parse_args()
    pids = control_plane_pids()
    if args.restore:
        set_cores(pids, BOTH)
    for name, pid in pids.items():
        print(f"{name} (pid {pid}): threads allowed on {', '.join(sorted(allowed(pid)))}")


if __name__ == "__main__":
    main()
