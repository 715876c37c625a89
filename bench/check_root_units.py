"""Issue 19's `gitopsguard check --root` over many Units: how long a pull request's CI waits.

    PYTHONPATH=$PWD .venv/bin/python bench/check_root_units.py [--units 1000] [--runs 3]

Writes a checkout whose root path declares --units Units in one namespace, each depending on the one before
(the longest order the loop has), each folder one ConfigMap, under a platform policy that wants an owner
label (every object passes it); then runs `gitopsguard check --root root` in it as a separate process, --runs
times, and prints the wall time and peak RSS of each run (the process's, from wait4).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNIT = ("apiVersion: gitopsguard.io/v1alpha1\nkind: Unit\nmetadata: {{name: u{i}, namespace: team}}\n"
        "spec: {{path: teams/u{i}{after}}}\n")  # fmt: skip
POLICY = """apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: owner-label}
spec:
  enforcement: enforce
  severity: HIGH
  match: {kinds: [ConfigMap]}
  builtin: {name: required-labels, params: {labels: [owner]}}
"""


def checkout(top: Path, units: int) -> None:
    (top / "root").mkdir()
    (top / "policies").mkdir()
    (top / "policies" / "owner.yaml").write_text(POLICY)
    docs = [UNIT.format(i=i, after=f", dependsOn: [{{name: u{i - 1}}}]" if i else "") for i in range(units)]
    (top / "root" / "units.yaml").write_text("---\n".join(docs))
    for i in range(units):
        folder = top / "teams" / f"u{i}"
        folder.mkdir(parents=True)
        (folder / "cm.yaml").write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}, namespace: team, "
                                        "labels: {owner: team}}\n")  # fmt: skip


def one_run(top: Path) -> tuple[float, float, str]:
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "gitopsguard", "check", "--root", "root"], cwd=top,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - started, usage.ru_maxrss / 1024, output.splitlines()[-1] if output else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitopsguard-check-root-") as where:
        top = Path(where)
        checkout(top, args.units)
        print(f"load {os.getloadavg()[0]:.1f}; {args.units} Units")
        for run in range(args.runs):
            seconds, mib, last = one_run(top)
            print(f"run {run + 1}: {seconds:.2f} s, peak RSS {mib:.0f} MiB: {last}")


if __name__ == "__main__":
    main()
