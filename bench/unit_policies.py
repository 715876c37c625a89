"""What a Unit's own policies (``policiesPath``, issue 19) cost: the policy load of one pass with and without
them, on repo-template/ (shop's Unit), and, for 1,000 Units that each add one policy, the checks of where
their folders are and the live scan's view of which policies govern which namespace.

    PYTHONPATH=$PWD .venv/bin/python bench/unit_policies.py [--repeat 200]

Pure: no cluster. Prints the median of ``--repeat`` runs of each, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gitopsguard.gate import policies_at
from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.policy import parse_policies
from gitopsguard.policy.compose import governance, restricting
from gitopsguard.units.policies_path import _misplaced, misplaced_policies
from gitopsguard.units.spec import UnitSpec, parse_unit

TEMPLATE = Path(__file__).resolve().parents[1] / "repo-template"
UNITS = 1000
OWN = """apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: tier}
spec:
  enforcement: enforce
  code: T1
  validations: [{expression: "has(object.metadata.labels)"}]
"""


def median_ms(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def specs() -> list[UnitSpec]:
    found = []
    for i in range(UNITS):
        body = {"apiVersion": "gitopsguard.io/v1alpha1", "kind": "Unit",
                "metadata": {"name": "app", "namespace": f"team-{i}"},
                "spec": {"path": f"teams/t{i}/app", "policiesPath": f"teams/t{i}/policies"}}  # fmt: skip
        found.append(parse_unit(Manifest(ObjectKey.of(body), body, f"clusters/prod/t{i}.yaml:1")))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200)
    repeat = parser.parse_args().repeat
    root = policies_at(TEMPLATE, "policies")
    own = parse_policies({"teams/t/policies/tier.yaml": OWN}, units=True)
    few = max(repeat // 10, 5)
    all_specs = specs()
    added = [(s.id, s.ref.namespace, restricting(root, own, unit=s.id)) for s in all_specs]
    found = governance(root, added)
    rows = [
        ("load the platform's policies (a pass today), ms",
         median_ms(lambda: policies_at(TEMPLATE, "policies"), repeat)),
        ("load them and shop's, checked and combined, ms",
         median_ms(lambda: policies_at(TEMPLATE, "policies", own="apps/shop/policies", unit="shop.shop"), repeat)),
        ("combine alone (restricting), ms", median_ms(lambda: restricting(root, own, unit="t.app"), repeat)),
        (f"{UNITS} Units' folders checked (misplaced_policies), first time, ms",
         median_ms(lambda: _uncached(all_specs), few)),
        (f"{UNITS} Units' folders checked again (each round), ms",
         median_ms(lambda: misplaced_policies("clusters/prod", "policies", all_specs), few)),
        (f"the live scan's governance over {UNITS} Units, made again, ms",
         median_ms(lambda: governance(root, added), few)),
        ("one namespace's policies (for_namespace), µs",
         median_ms(lambda: found.for_namespace("team-7"), repeat) * 1000),
    ]  # fmt: skip
    print(f"repo-template: {len(root.policies)} platform policies, shop adds 1; {UNITS} Units each add 1")
    for what, value in rows:
        print(f"  {what:<68} {value:9.2f}")


def _uncached(all_specs: list[UnitSpec]) -> object:
    _misplaced.cache_clear()
    return misplaced_policies("clusters/prod", "policies", all_specs)


if __name__ == "__main__":
    main()
