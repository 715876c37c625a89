"""Issue 19: what the pure part of many Units costs, before any API call: 1,000 Units of one root path.

    PYTHONPATH=$PWD .venv/bin/python bench/units_pure.py [--units 1000] [--rounds 5]

A root path of --units Unit files (one per team folder, each depending on a platform Unit, every tenth on
the previous tenth as well) is rendered by the real renderer (plain YAML); then, each round:
  * units_of_root: every Unit read and checked (spec, overlapping folders);
  * apply_order and blocked: dependsOn ordered, and who waits for whom with half the Units not Ready;
  * status_of for every Unit (the /status bodies of one round).
Prints the median of the rounds for each step, and the render once. No cluster is needed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from gitopsguard.render import render
from gitopsguard.units import PassOutcome, Phase, Readiness, apply_order, blocked, status_of
from gitopsguard.units.root import Root, units_of_root

UNIT = """apiVersion: gitopsguard.io/v1alpha1
kind: Unit
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  path: {path}
  interval: 5m
  serviceAccountName: deployer
  dependsOn: [{depends}]
"""


def write_root(top: Path, units: int) -> None:
    root = top / "clusters" / "prod"
    root.mkdir(parents=True)
    (root / "platform.yaml").write_text(UNIT.format(name="infra", namespace="platform", path="platform",
                                                    depends="").replace("dependsOn: []\n", ""))  # fmt: skip
    for i in range(units - 1):
        depends = "{name: infra, namespace: platform}"
        if i % 10 == 0 and i >= 10:
            depends += f", {{name: app, namespace: team-{i - 10:04}}}"
        text = UNIT.format(name="app", namespace=f"team-{i:04}", path=f"teams/{i:04}", depends=depends)
        (root / f"team-{i:04}.yaml").write_text(text)


def timed(step: Callable[[], object], rounds: int) -> float:
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        step()
        took.append(time.perf_counter() - started)
    return statistics.median(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as top:
        write_root(Path(top), options.units)
        started = time.perf_counter()
        manifests = render(Path(top), "clusters/prod").manifests
        rendered = time.perf_counter() - started
    root = Root("clusters/prod", "clusters-prod")
    found = units_of_root(root, manifests)
    if len(found.units) != options.units or found.refused:
        raise SystemExit(f"the bench's own Units were refused: {found.refused[:3]}")
    ready = {u.ref: Readiness(i % 2 == 0, "ReconciliationSucceeded") for i, u in enumerate(found.units)}
    now = datetime.now(UTC)
    outcome = PassOutcome(Phase.SUCCEEDED, 1, "0123456789abcdef0123456789abcdef01234567", objects=4)
    steps = {
        "units_of_root": lambda: units_of_root(root, manifests),
        "apply_order": lambda: apply_order(found.units),
        "blocked": lambda: blocked(found.units, ready),
        "status_of for every Unit": lambda: [status_of(outcome, None, now) for _ in found.units],
    }
    print(f"{options.units} Units, median of {options.rounds} rounds")
    print(f"  {'render of the root path (once)':<32} {rendered * 1000:8.1f} ms")
    for name, step in steps.items():
        print(f"  {name:<32} {timed(step, options.rounds) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
