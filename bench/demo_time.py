"""Time `make demo` warm: the Kubernetes binaries and both images cached, no cluster running.

    GITOPSGUARD_DEV_CLUSTER_DIR=/tmp/demo-bench PYTHONPATH=$PWD .venv/bin/python bench/demo_time.py [--runs 3] \
        [--output DIR]

Each run is ``gitopsguard demo`` from nothing running (what `make demo` runs after its venv exists), then
``gitopsguard demo --down`` (`make demo-down`). It prints, per run: the seconds until gitopsguard was installed
(cluster and node up, images checked and imported, ``kubectl apply -k``, two Pods running, the leader Ready),
until the rollout completed (the standby Ready too: awaited beside the story's first steps), the whole
demo's seconds (the story included, over the Units layout since issue 19: its waits are the story's own, the
three Units Ready, a 2 s look at a suspended Unit, a 2 s grace, a 10 s grant, a Lease changing hands), and the
teardown's. ``--output DIR`` keeps each run's output, each line stamped with the seconds since the run's start
(so that it says where the install's and the story's time go), as ``DIR/run-N.txt``. Where other sessions
build images into the shared cache, give the runs a copy of their own (GITOPSGUARD_CACHE_DIR): a rebuilt image
makes a run cold. Needs root and a machine whose node nobody else holds; use a state directory of its own
(GITOPSGUARD_DEV_CLUSTER_DIR) so that no other dev cluster is touched. A cold image build is measured by
``bench/image_build.py --cold``; a cold Kubernetes build is not repeated here (about half an hour).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

# "installed": two Pods running, the leader Ready (before 2026-12-05 21:40 UTC the whole rollout, the standby Ready
# too, which the story now awaits beside its first steps: ROLLOUT)
INSTALLED = re.compile(r"gitopsguard is installed: two Pods running, .*?(\d+) s after the start")
ROLLOUT = re.compile(r"the rollout completed (\d+) s after the start")


def run(argv: list[str]) -> tuple[float, str, int]:
    """Seconds, the output (stdout and stderr as they came, each line after the seconds since the start: the
    story's steps print no times of their own), exit code."""
    started = time.monotonic()
    lines = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL) as child:  # fmt: skip
        for line in child.stdout or ():
            lines.append(f"{time.monotonic() - started:6.1f} {line}")
    return time.monotonic() - started, "".join(lines), child.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, help="keep each run's output here")
    arguments = parser.parse_args()
    runs, keep = arguments.runs, arguments.output
    if not os.environ.get("GITOPSGUARD_DEV_CLUSTER_DIR"):
        sys.exit("set GITOPSGUARD_DEV_CLUSTER_DIR to a directory of its own: the runs take that cluster down")
    gg = [sys.executable, "-m", "gitopsguard"]
    totals, installs = [], []
    for number in range(1, runs + 1):
        load = os.getloadavg()[0]  # at the start: other sessions' load decides much of a run's time
        seconds, output, code = run([*gg, "demo"])
        found, rolled = INSTALLED.search(output), ROLLOUT.search(output)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"run-{number}.txt").write_text(output)
        down, _, _ = run([*gg, "demo", "--down"])
        print(f"run {number}: demo {seconds:.0f} s (exit {code}), installed after "
              f"{found.group(1) if found else '?'} s, rollout complete after {rolled.group(1) if rolled else '?'} s; "
              f"down {down:.0f} s; load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end",
              flush=True)  # fmt: skip
        if code != 0 or found is None:
            print(output[-4000:], file=sys.stderr)
            continue
        totals.append(seconds)
        installs.append(float(found.group(1)))
    if totals:
        print(f"median of {len(totals)}: demo {statistics.median(totals):.0f} s, installed after "
              f"{statistics.median(installs):.0f} s; load average now {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
