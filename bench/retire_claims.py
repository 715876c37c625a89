"""What finding the claims of declared Units costs a retirement (``fleet_retire.Retirer._claims_on``), with no
cluster: the worst case, a replica that has passed none of the declared Units at the applied commit (with
``--shards``, the Units another replica serves), so every Unit's folder is rendered, cold (nothing in the render
store), and read into claims (``plan/retire.claimed_by_render``).

    PYTHONPATH=$PWD .venv/bin/python bench/retire_claims.py [--units 1000] [--objects 4]

The repository is ``bench/units_1000.py``'s (plain YAML, one folder of ``--objects`` objects per Unit).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.units_1000 import Layout, build_repository
from gitopsguard.model import ObjectKey
from gitopsguard.plan.retire import claimed_by_render
from gitopsguard.reconcile import renderer
from gitopsguard.render.stored import RenderStore
from gitopsguard.units import UnitRef, UnitSpec
from gitopsguard.units.spec import DEFAULTS
from tests.gitrepo import git


def measure(units: int, objects: int) -> None:
    layout = Layout(units=units, objects=objects)
    with tempfile.TemporaryDirectory() as folder:
        upstream = build_repository(Path(folder) / "git", layout)
        commit = git(upstream.work, "rev-parse", "HEAD").strip()
        render = renderer(RenderStore(Path(folder) / "renders"))
        specs = [UnitSpec(UnitRef(layout.namespace(n), f"u-{n:04d}"), "bench", f"units/u-{n:04d}", DEFAULTS.interval)
                 for n in range(units)]  # fmt: skip
        wall, cpu = time.perf_counter(), time.process_time()
        claimed: dict[ObjectKey, UnitRef] = {}
        for spec in specs:
            claimed |= claimed_by_render(spec, render(upstream.work, spec.path, commit))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{units} Units of {objects} objects: {len(claimed)} claims in {wall:.2f} s ({cpu:.2f} CPU-s), "
        f"{wall / units * 1000:.1f} ms a Unit; peak RSS {peak:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=4)
    options = parser.parse_args()
    measure(options.units, options.objects)


if __name__ == "__main__":
    main()
