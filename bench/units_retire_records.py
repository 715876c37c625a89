"""What recording the Units a root serves costs the Units loop (``fleet_retire.py``), with no cluster: the
pure work every round does (compare each served Unit with its record, find the recorded ones gone) and the
size of the records ConfigMap, for N Units.

    PYTHONPATH=$PWD .venv/bin/python bench/units_retire_records.py [--units 1000 10000] [--rounds 200]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta

from gitopsguard.cluster.configmaps import Packed
from gitopsguard.plan.retire import Declared, declared_of, gone, recorded, served_of
from gitopsguard.units import UnitRef, UnitSpec
from gitopsguard.units.root import RootUnits


def specs(count: int) -> tuple[UnitSpec, ...]:
    return tuple(UnitSpec(UnitRef(f"team-{i % 50}", f"unit-{i}"), f"clusters/prod/units.yaml:{i * 8 + 1}",
                          f"teams/{i % 50}/unit-{i}", timedelta(minutes=5), service_account_name="deployer")
                 for i in range(count))  # fmt: skip


def measure(count: int, rounds: int) -> None:
    served = specs(count)
    records = {s.ref: served_of(s) for s in served}
    units = RootUnits(served)
    started = time.process_time()
    for _ in range(rounds):  # what a round at rest does: nothing to write, nothing gone
        facts: Declared = declared_of(("c0ffee", units))
        if recorded(records, served) or gone(records, facts):
            raise SystemExit("a round at rest found something to do")
    per_round = (time.process_time() - started) / rounds
    rows = [records[ref].row() for ref in sorted(records)]
    raw = json.dumps(rows, separators=(",", ":")).encode()
    print(f"{count:>6} Units: {per_round * 1000:.2f} CPU-ms a round at rest; records {len(raw) / 1024:.0f} KiB "
          f"as JSON, {Packed.of(raw).size / 1024:.0f} KiB stored (gzip, base64)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=200)
    options = parser.parse_args()
    for count in options.units:
        measure(count, options.rounds)


if __name__ == "__main__":
    main()
