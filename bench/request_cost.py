"""What one apply request costs, per side: the API server's CPU with a JSON or a protobuf answer, and the
client's, for 500 Deployments at a time (dry run, then for real) with 8 workers, averaged over rounds.
Then the client's CPU per dry run when one thread multiplexes 16 connections (as the Applier sends a
batch) against 16 threads each sending one request at a time.

    .venv/bin/python bench/request_cost.py [--count 500] [--rounds 3]

Needs a running dev cluster (`gitopsguard dev-cluster up`); works in a namespace of its own, removed after.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.controlplane import ControlPlane
from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import JSON, RawApi, Request
from gitopsguard.devcluster import StateLayout

PROTOBUF = "application/vnd.kubernetes.protobuf, application/json"


def deployment(namespace: str, name: str) -> dict[str, object]:
    labels = {"app": name}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": template}}  # fmt: skip


def apply_one(job: tuple[RawApi, str, str, str, bool]) -> int:
    raw, namespace, name, answer, dry_run = job
    path, body = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", deployment(namespace, name)
    query = {"fieldManager": "bench", "force": "true", **({"dryRun": "All"} if dry_run else {})}
    accept = JSON if answer == "json" else PROTOBUF  # only the status is read: protobuf.py went in issue 18
    request = Request("PATCH", path, query, json.dumps(body).encode(), "application/apply-patch+yaml", accept)
    return raw.send_all([request], 1)[0].status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    raw, plane = RawApi(connect(StateLayout.default().kubeconfig)), ControlPlane()
    namespace = f"bench-requests-{int(time.time())}"
    raw.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    totals: dict[tuple[str, bool], list[dict[str, float]]] = {}
    try:
        for round_ in range(args.rounds):  # interleaved, so a slow spell of the cluster hits every mode
            for answer in ("json", "protobuf"):
                for dry_run in (True, False):
                    plane.settle()
                    names = [f"r{round_}-{answer}-{'dry' if dry_run else 'real'}-{i}" for i in range(args.count)]
                    work = [(raw, namespace, name, answer, dry_run) for name in names]
                    with ThreadPoolExecutor(8) as pool:
                        usage, statuses = plane.measure(lambda: list(pool.map(apply_one, work)))  # noqa: B023
                    if set(statuses) != {201}:  # type: ignore[call-overload]
                        raise SystemExit(f"the server refused some: {set(statuses)}")  # type: ignore[call-overload]
                    totals.setdefault((answer, dry_run), []).append(usage.cpu)
        for (answer, dry_run), runs in totals.items():
            mean = {name: sum(run[name] for run in runs) * 1000 / len(runs) / args.count for name in runs[0]}
            shown = ", ".join(f"{name} {ms:.2f}" for name, ms in mean.items())
            print(f"{'dry run' if dry_run else 'apply'}, answer in {answer}: ms of CPU per request ({shown})")
        client_cost(raw, plane, namespace, args.count * 4, args.rounds)
    finally:
        raw.request("DELETE", f"/api/v1/namespaces/{namespace}")


def client_cost(raw: RawApi, plane: ControlPlane, namespace: str, count: int, rounds: int) -> None:
    """Client CPU per dry run: one thread over 16 connections against 16 threads, interleaved."""
    query = {"fieldManager": "bench", "force": "true", "dryRun": "All"}
    requests = [
        Request("PATCH", f"/apis/apps/v1/namespaces/{namespace}/deployments/c-{i}", query,
                json.dumps(deployment(namespace, f"c-{i}")).encode(), "application/apply-patch+yaml", JSON)
        for i in range(count)
    ]  # fmt: skip
    modes = {
        "one thread, 16 connections": lambda: [a[0] for a in raw.send_all(requests, 16)],
        "16 threads": lambda: list(ThreadPoolExecutor(16).map(
            lambda r: raw.write(r.method, r.path, query=r.query, body=r.body, content_type=r.content_type).status,
            requests)),
    }  # fmt: skip
    spent: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(rounds):
        for name, send in modes.items():
            plane.settle()
            usage, statuses = plane.measure(send)
            if set(statuses) != {201}:  # type: ignore[call-overload]
                raise SystemExit(f"the server refused some: {set(statuses)}")  # type: ignore[call-overload]
            spent[name].append(usage.cpu["client"])
    for name, seconds in spent.items():
        print(f"client CPU per dry run, {name}: {sum(seconds) * 1000 / len(seconds) / count:.3f} ms")


if __name__ == "__main__":
    main()
