"""What one apply request costs, per side: the API server's CPU with a JSON or a protobuf answer, and the
client's, for 500 Deployments at a time (dry run, then for real) with 8 workers.

    .venv/bin/python bench/request_cost.py [--count 500]

Needs a running dev cluster (`gitopsguard dev-cluster up`); works in a namespace of its own, removed after.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.controlplane import ControlPlane
from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi
from gitopsguard.devcluster import StateLayout


def deployment(namespace: str, name: str) -> dict[str, object]:
    labels = {"app": name}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template}}  # fmt: skip


def apply_one(job: tuple[RawApi, str, str, str, bool]) -> int:
    raw, namespace, name, answer, dry_run = job
    path, body = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", deployment(namespace, name)
    query = {"fieldManager": "bench", "force": "true", **({"dryRun": "All"} if dry_run else {})}
    if answer == "json":
        return raw.request("PATCH", path, query=query, body=body, content_type="application/apply-patch+yaml")[0]
    return raw.write("PATCH", path, query=query, body=body, content_type="application/apply-patch+yaml").status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    raw, plane = RawApi(connect(StateLayout.default().kubeconfig)), ControlPlane()
    namespace = f"bench-requests-{int(time.time())}"
    raw.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    try:
        for answer in ("json", "protobuf"):
            for dry_run in (True, False):
                plane.settle()
                with ThreadPoolExecutor(8) as pool:
                    work = [(raw, namespace, f"{answer}-{dry_run}-{i}", answer, dry_run) for i in range(args.count)]
                    usage, statuses = plane.measure(lambda: list(pool.map(apply_one, work)))  # noqa: B023
                if set(statuses) != {201}:  # type: ignore[call-overload]
                    raise SystemExit(f"the server refused some: {set(statuses)}")  # type: ignore[call-overload]
                per = {name: f"{seconds * 1000 / args.count:.2f} ms" for name, seconds in usage.cpu.items()}
                print(f"{'dry run' if dry_run else 'apply  '}, answer in {answer:8}, CPU per request: {per}")
    finally:
        raw.request("DELETE", f"/api/v1/namespaces/{namespace}")


if __name__ == "__main__":
    main()
