"""What one Pod Security Admission decision costs in-process (issue 16: the webhook's budget is p99 <= 20 ms
at 1,000 requests/s, all of it, so this part must be a small fraction).

    PYTHONPATH=. .venv/bin/python bench/pod_security_speed.py [--rounds 20]

Runs ``pod_security`` on every distinct Pod of Kubernetes' fixtures (tests/data/pss/pods, 380 Pods, passing
and failing), as a Pod (enforce, audit, warn) and as a Deployment's template (audit, warn), under the labels
enforce=restricted, audit=restricted:v1.30, warn=baseline, and reports the mean and the p50/p99/max of one
call, in microseconds, on this process's single thread.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from gitopsguard.policy.podsecurity import PREFIX, pod_security

ROOT = Path(__file__).resolve().parents[1]
LABELS = {PREFIX + "enforce": "restricted", PREFIX + "audit": "restricted", PREFIX + "audit-version": "v1.30",
          PREFIX + "warn": "baseline"}  # fmt: skip


def objects() -> list[dict[str, Any]]:
    pods = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "tests" / "data" / "pss" / "pods").glob("*.yaml"))]
    deployments = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                    "spec": {"template": {"metadata": copy.deepcopy(p.get("metadata") or {}), "spec": p["spec"]}}}
                   for p in pods]  # fmt: skip
    return pods + deployments


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    bodies = objects()
    samples = []
    for _ in range(rounds):
        for body in bodies:
            fresh = copy.deepcopy(body)  # as each admission request decodes its own object
            start = time.perf_counter()
            pod_security(fresh, LABELS, namespace="shop", username="alice")
            samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
    print(f"{len(samples)} calls ({len(bodies)} objects x {rounds}): mean {statistics.fmean(samples):.0f} us, "
          f"p50 {p(0.50):.0f} us, p99 {p(0.99):.0f} us, max {samples[-1]:.0f} us")  # fmt: skip


if __name__ == "__main__":
    main()
