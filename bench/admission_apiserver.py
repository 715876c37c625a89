"""Issue 16's webhook numbers through the API server: what the webhook adds to a request.

    .venv/bin/python bench/admission_apiserver.py [--kubeconfig PATH] [--clients 100] [--seconds 15] [--rounds 3]
        [--pin] [--interval S] [--no-client-ca]

Needs a running dev cluster (`gitopsguard dev-cluster up`). Dry-run Pod creations (``dryRun=All``) are sent
by N concurrent clients (asyncio, keep-alive TLS, the admin's token) into a namespace of the bench's own,
without and then with the validating (and mutating) webhooks called for that namespace only, in rounds
(the server in a process of its own, ``pss-restricted`` and ``magtape`` enforced, as in
``admission_load.py``). The Pod is compliant, so both runs do the same work apart from the webhook calls.
The configurations and the namespace are deleted at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import ssl
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.affinity import control_plane_pids, pinned  # noqa: E402
from gitopsguard.devcluster import StateLayout  # noqa: E402
from gitopsguard.devcluster.pki import WEBHOOK_CLIENT_CA  # noqa: E402

DEFAULT_KUBECONFIG = Path.home() / ".local/state/gitopsguard/dev-cluster/kubeconfig"


def cluster(kubeconfig: Path) -> tuple[str, int, ssl.SSLContext, str]:
    """(host, port, TLS context, admin token) from the dev cluster's kubeconfig."""
    config = yaml.safe_load(kubeconfig.read_text())
    entry = config["clusters"][0]["cluster"]
    server = entry["server"].removeprefix("https://")
    host, _, port = server.rpartition(":")
    if "certificate-authority-data" in entry:
        context = ssl.create_default_context(cadata=base64.b64decode(entry["certificate-authority-data"]).decode())
    else:
        context = ssl.create_default_context(cafile=entry["certificate-authority"])
    user = next(u for u in config["users"] if u["name"] == "admin")["user"]
    return host, int(port), context, user["token"]


async def run(host: str, port: int, context: ssl.SSLContext, token: str, namespace: str, clients: int,
              seconds: float, interval: float = 0.0) -> list[float]:  # fmt: skip
    from tests.unit.policy.workloads import as_pod, compliant_spec

    pod = as_pod(compliant_spec())
    pod["metadata"] = {**pod["metadata"], "namespace": namespace, "name": None, "generateName": "bench-"}
    del pod["metadata"]["name"]
    body = json.dumps(pod).encode()
    head = (f"POST /api/v1/namespaces/{namespace}/pods?dryRun=All HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def client(offset: float) -> None:
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        await asyncio.sleep(offset)  # paced clients start spread over one interval, not as one burst a second
        while time.perf_counter() < end:
            sent = time.perf_counter()
            writer.write(head + body)
            status, answer = await response(reader)
            if status != 201:
                raise RuntimeError(f"dry run refused: HTTP {status}: {answer[:300]!r}")
            latencies.append(time.perf_counter() - sent)
            await asyncio.sleep(interval)
        writer.close()

    await asyncio.gather(*(client(interval * i / clients) for i in range(clients)))
    return latencies


async def response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.1 answer; the API server sends larger ones chunked."""
    status = int((await reader.readline()).split()[1])
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    parts = []
    while size := int((await reader.readline()).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readline()
    await reader.readline()
    return status, b"".join(parts)


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return {"n": len(ordered), "avg_ms": statistics.fmean(ordered) * 1000, "p95_ms": pct(0.95), "p99_ms": pct(0.99)}


def state(line: str) -> tuple[float, float, dict[str, int]]:
    """(CPU seconds, connections accepted, {how connections ended / ALPN chosen: count}) from the server."""
    cpu, accepted, seen = line.split(" ", 2)
    return float(cpu), float(accepted), json.loads(seen)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, default=DEFAULT_KUBECONFIG)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--mutate", action="append", default=[], help="register the mutating webhook for Pods "
                        "too (--mutate Pod), as when a policy mutates them: a second call per request")  # fmt: skip
    parser.add_argument("--alpn", default="", help="the protocols the webhook offers by ALPN (h2,http/1.1): the "
                        "server counts the one chosen on each connection")  # fmt: skip
    parser.add_argument("--interval", type=float, default=0.0, help="seconds each client waits between its "
                        "requests (a quiet cluster: the webhook's connections idle between calls)")  # fmt: skip
    parser.add_argument("--idle", help="seconds the webhook keeps an idle connection (default: the server's)")
    parser.add_argument(
        "--no-client-ca",
        action="store_true",
        help="serve without asking for the API server's "
        "client certificate (default: ask, when the dev cluster has one, as --admission-client-ca)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds of a run without and a run with the webhooks")
    parser.add_argument("--pin", action="store_true", help="the control plane and this generator on core 0, the "
                        "webhook on core 1: a webhook that does not share the API server's cores")  # fmt: skip
    args = parser.parse_args()
    state = StateLayout(args.kubeconfig.parent)
    client_ca = state.pki_dir / WEBHOOK_CLIENT_CA
    client_ca_env = {} if args.no_client_ca or not client_ca.exists() else {"BENCH_CLIENT_CA": str(client_ca)}
    print(f"webhook client certificates: {'required' if client_ca_env else 'not asked for'}; "
          f"{'pinned: control plane + generator on core 0, webhook on core 1' if args.pin else 'not pinned'}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    with contextlib.ExitStack() as stack:
        if args.pin:
            os.sched_setaffinity(0, {0})
            stack.enter_context(pinned(control_plane_pids(state), 0))
        measure(args, client_ca_env)


class Bench:
    """The cluster, the bench's namespace and the webhook server process, for rounds of both runs."""

    def __init__(self, args: argparse.Namespace, raw: Any, namespace: str, server: subprocess.Popen[str]) -> None:
        self.args, self.raw, self.namespace, self.server = args, raw, namespace, server
        self.host, self.port, self.context, self.token = cluster(args.kubeconfig)

    def load(self) -> dict[str, Any]:
        return summary(asyncio.run(run(self.host, self.port, self.context, self.token, self.namespace,
                                       self.args.clients, self.args.seconds, self.args.interval)))  # fmt: skip

    def webhook(self, on: bool, scope: str) -> None:
        """Turn the webhooks on or off for the namespace (its label), and wait until the API server agrees."""
        body = {"metadata": {"labels": {LABEL: scope if on else None}}}
        self.raw.request("PATCH", f"/api/v1/namespaces/{self.namespace}", body=body,
                         content_type="application/merge-patch+json")  # fmt: skip
        deadline = time.monotonic() + 30
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        while (self.raw.request("POST", path, body=PROBE, query={"dryRun": "All"})[0] >= 400) != on:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not {'start' if on else 'stop'} calling the webhook in 30 s")
            time.sleep(0.2)

    def served(self) -> tuple[float, float, dict[str, int]]:
        self.server.stdin.write("\n")  # type: ignore[union-attr]
        self.server.stdin.flush()  # type: ignore[union-attr]
        return state(self.server.stdout.readline())  # type: ignore[union-attr]

    def with_webhook(self, scope: str) -> dict[str, Any]:
        self.webhook(True, scope)
        before, opened, seen = self.served()
        result = self.load()
        used, connections, ended = self.served()
        result["webhook_cpu_ms_per_request"] = (used - before) * 1000 / result["n"]
        result["webhook_connections"] = connections - opened
        result["connections"] = {k: v - seen.get(k, 0) for k, v in ended.items()}
        return result


LABEL = "gitopsguard.io/admission-bench"
PROBE = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
         "spec": {"hostPID": True, "containers": [{"name": "c", "image": "x"}]}}  # fmt: skip


def measure(args: argparse.Namespace, client_ca_env: dict[str, str]) -> None:
    """``--rounds`` rounds of a run without and a run with the webhooks (alternating, so that the machine's
    other load drifts across both alike); the added latency of each round, and their median."""
    from gitopsguard.admission.configurations import WebhookSettings, configurations, keep, remove
    from gitopsguard.cluster import connect
    from gitopsguard.cluster.rest import RawApi

    raw = RawApi(connect(args.kubeconfig, "dev-admin"))
    scope = uuid.uuid4().hex[:10]
    namespace, name = f"bench-adm-{scope}", f"gitopsguard-bench-{scope}"
    raw.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    ca = Path(f"/tmp/gitopsguard-bench-ca-{os.getpid()}.pem")  # noqa: S108  (a public certificate)
    server = subprocess.Popen([*(["taskset", "-c", "1"] if args.pin else []), sys.executable,
                               str(ROOT / "bench" / "admission_load.py"), "--serve", "0",
                               "--alpn", args.alpn, *(["--idle", args.idle] if args.idle else [])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "BENCH_CA": str(ca), **client_ca_env})  # fmt: skip
    added: list[float] = []
    try:
        webhook_port = int(server.stdout.readline())  # type: ignore[union-attr]
        settings = WebhookSettings(name=name, url=f"https://127.0.0.1:{webhook_port}",
                                   also_match=({"key": LABEL, "operator": "In", "values": [scope]},))  # fmt: skip
        # as the controller registers them: the mutating webhook only for kinds a policy mutates (none here)
        keep(raw, configurations(settings, frozenset({"Pod"}), ca.read_bytes(), frozenset(args.mutate)))
        bench = Bench(args, raw, namespace, server)
        for round_ in range(1, args.rounds + 1):
            bench.webhook(False, scope)
            without = bench.load()
            print(f"round {round_}, without webhook: {json.dumps(without)}", flush=True)
            with_ = bench.with_webhook(scope)
            print(f"round {round_}, with webhooks ({'validating + mutating' if args.mutate else 'validating'}): "
                  f"{json.dumps(with_)}; load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
            added.append(with_["avg_ms"] - without["avg_ms"])
    finally:
        remove(raw, name)
        raw.request("DELETE", f"/api/v1/namespaces/{namespace}")
        server.kill()
        ca.unlink(missing_ok=True)
    middle = statistics.median(added)
    print(f"the webhooks add {', '.join(f'{a:.1f}' for a in added)} ms on average at {args.clients} concurrent "
          f"clients (median {middle:.1f} ms; target <= 5 ms: {'met' if middle <= 5 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
