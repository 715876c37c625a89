"""Issue 16's webhook numbers, straight at the webhook: AdmissionReviews over TLS on loopback.

    .venv/bin/python bench/admission_load.py [--seconds 10] [--rates 100,500,1000] [--clients 50,200]

One gitopsguard admission server runs in a process of its own (the validating webhook, ``pss-restricted``
and ``magtape`` enforced at deny level LOW), judging a mix of Pods, Deployments and Namespaces from a corpus
(compliant and not, so that denials, warnings and admissions all happen). The load generator is another
process (asyncio, keep-alive TLS connections, one request in flight per connection):

* open loop: requests are sent at fixed times at each rate; a request's latency is counted from the time it
  was due, so a server that falls behind is charged for the wait (no coordinated omission);
* closed loop: N clients each send their next request when the last is answered, for capacity.

It prints average, p95 and p99 per run, the CPU the server used, and the highest open-loop rate whose p99
stays under 50 ms. The machine has 2 cores shared by the server, the generator and whatever else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import ssl
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
POOL = 64  # connections the open-loop generator keeps (a request waits for a free one)

POLICIES = """apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: pss-restricted}
spec: {builtin: pss-restricted, severity: HIGH, enforcement: enforce}
---
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: magtape}
spec: {builtin: magtape, enforcement: enforce}
"""


def corpus() -> list[bytes]:
    """AdmissionReviews for 60 objects: Pods and Deployments (compliant, missing probes, privileged) and
    Namespaces."""
    from tests.admissionreview import hack_a_node_pod, review
    from tests.unit.policy.workloads import as_deployment, as_pod, compliant_spec

    bodies: list[dict[str, Any]] = []
    for i in range(20):
        spec = compliant_spec()
        if i % 3 == 1:
            del spec["containers"][0]["livenessProbe"]
        bodies.append(as_pod(spec) if i % 2 else as_deployment(spec))
        bodies.append(hack_a_node_pod("team", name=f"hack-{i}") if i % 4 == 0 else as_deployment(compliant_spec()))
        bodies.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"team-{i}", "labels": {
            "team": "a", "pod-security.kubernetes.io/enforce": "restricted"}}})  # fmt: skip
    return [json.dumps(review(b)).encode() for b in bodies]


def serve(port: int, *, alpn: str = "", idle: float | None = None) -> None:
    """The server process: prints its port, then on each line read from stdin its CPU seconds, the connections
    it accepted, and (JSON) how connections ended and which protocol ALPN chose on them.

    ``alpn`` (``h2,http/1.1``) is the list the server offers, to see what the API server's client takes;
    ``idle`` the seconds a kept-alive connection may wait for its next request (None: the server's default).
    """
    from collections import Counter
    from datetime import UTC, datetime

    from gitopsguard.admission.certs import issue
    from gitopsguard.admission.review import Judgement
    from gitopsguard.admission.server import DEFAULT, AdmissionServer, Settings
    from gitopsguard.policy import DenyLevel, parse_policies

    certs = issue(["127.0.0.1"], datetime.now(UTC))
    Path(os.environ["BENCH_CA"]).write_bytes(certs.bundle)
    idle = DEFAULT.idle if idle is None else idle
    judgement = Judgement(parse_policies({"p.yaml": POLICIES}), DenyLevel.LOW)
    context, seen = certs.context(), Counter[str]()
    if alpn:
        context.set_alpn_protocols(alpn.split(","))
    # BENCH_CLIENT_CA: the webhook asks for the API server's client certificate (--admission-client-ca)
    client_ca = Path(os.environ["BENCH_CLIENT_CA"]).read_text() if os.environ.get("BENCH_CLIENT_CA") else ""
    server = AdmissionServer(("127.0.0.1", port), context, lambda: judgement,
                             settings=Settings(timeout=4.0, idle=idle, max_connections=512, workers=4,
                                               client_ca=client_ca))  # fmt: skip
    server.RequestHandlerClass = _counting_handler(server.RequestHandlerClass, seen, idle)
    context.sslsocket_class = _counting_socket(server.RequestHandlerClass.count)
    server.start()
    print(server.server_port, flush=True)
    for _ in sys.stdin:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(f"{usage.ru_utime + usage.ru_stime:.3f} {server.accepted} {json.dumps(dict(seen))}", flush=True)


def _counting_socket(count: Any) -> Any:
    """An SSLSocket class counting the handshakes that fail (the client gave up, or timed out), by error."""

    class Counting(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            try:
                super().do_handshake(block)
            except (OSError, ValueError) as error:
                count(f"handshake failed: {type(error).__name__}")
                raise

    return Counting


def _counting_handler(base: Any, seen: Any, idle: float) -> Any:
    """The server's handler, counting the protocol ALPN chose on each connection, and how each ended: the
    client closed it between requests (``peer``), our idle timeout did (``idle``), or we did after a request
    (``us``)."""

    lock = threading.Lock()  # connections run in threads of their own

    def count(key: str) -> None:
        with lock:
            seen[key] += 1

    class Counting(base):  # type: ignore[misc,valid-type]
        def setup(self) -> None:
            super().setup()
            count(f"alpn {self.connection.selected_alpn_protocol()}")

        def handle_one_request(self) -> None:
            self.raw_requestline, started = b"-", time.monotonic()  # "-" stays when no request came
            try:
                super().handle_one_request()
            except OSError:
                count("ended by reset")
                raise
            if self.close_connection:
                waited = time.monotonic() - started >= idle - 0.5
                ended = {b"": "peer", b"-": "idle" if waited else "peer"}.get(self.raw_requestline, "us")
                count(f"ended by {ended}")

    Counting.count = staticmethod(count)
    return Counting


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, context: ssl.SSLContext) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        return cls(reader, writer)

    async def post(self, body: bytes) -> int:
        head = (f"POST /validate?timeout=5s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self.reader.readexactly(length)
        return int(status_line.split()[1])


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return {"n": len(ordered), "avg_ms": statistics.fmean(ordered) * 1000, "p95_ms": pct(0.95), "p99_ms": pct(0.99)}


async def open_loop(port: int, context: ssl.SSLContext, bodies: list[bytes], rate: int, seconds: float) -> list[float]:
    """Requests due at fixed times over a fixed pool of connections (as the API server keeps a pool): a request
    that waits for a free connection is charged for the wait."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(POOL):
        pool.put_nowait(await Connection.open(port, context))
    latencies: list[float] = []
    tasks = []

    async def one(due: float, body: bytes) -> None:
        connection = await pool.get()
        status = await connection.post(body)
        if status != 200:
            raise RuntimeError(f"the webhook answered HTTP {status}")
        latencies.append(time.perf_counter() - due)
        pool.put_nowait(connection)

    start = time.perf_counter() + 0.05
    for i in range(int(rate * seconds)):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, bodies[i % len(bodies)])))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait().writer.close()
    return latencies


async def closed_loop(port: int, context: ssl.SSLContext, bodies: list[bytes], clients: int,
                      seconds: float) -> tuple[list[float], float]:  # fmt: skip
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        connection = await Connection.open(port, context)
        i = offset
        while time.perf_counter() < end:
            sent = time.perf_counter()
            await connection.post(bodies[i % len(bodies)])
            latencies.append(time.perf_counter() - sent)
            i += clients
        connection.writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return latencies, len(latencies) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="100,500,1000")
    parser.add_argument("--clients", default="50,200")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--alpn", default="", help=argparse.SUPPRESS)
    parser.add_argument("--idle", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, alpn=args.alpn, idle=args.idle)
        return
    ca = Path(f"/tmp/gitopsguard-bench-ca-{os.getpid()}.pem")  # noqa: S108  (a public certificate)
    server = subprocess.Popen([sys.executable, __file__, "--serve", "0"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "BENCH_CA": str(ca)})  # fmt: skip
    if server.stdin is None or server.stdout is None:
        raise RuntimeError("the server process has no pipes")
    port = int(server.stdout.readline())
    context = ssl.create_default_context(cadata=ca.read_text())
    bodies = corpus()

    def cpu() -> float:
        server.stdin.write("\n")  # type: ignore[union-attr]
        server.stdin.flush()  # type: ignore[union-attr]
        return float(server.stdout.readline().split()[0])  # type: ignore[union-attr]

    results: dict[str, Any] = {}
    try:
        for rate in [int(r) for r in args.rates.split(",")]:
            before, mine = cpu(), own_cpu()
            latencies = asyncio.run(open_loop(port, context, bodies, rate, args.seconds))
            results[f"open {rate}/s"] = summary(latencies) | {"server_cpu_s": cpu() - before,
                                                              "generator_cpu_s": own_cpu() - mine}  # fmt: skip
            print(f"open loop {rate}/s: {json.dumps(results[f'open {rate}/s'])}", flush=True)
        for clients in [int(c) for c in args.clients.split(",")]:
            before, mine = cpu(), own_cpu()
            latencies, throughput = asyncio.run(closed_loop(port, context, bodies, clients, args.seconds))
            results[f"closed {clients}"] = summary(latencies) | {"per_s": throughput, "server_cpu_s": cpu() - before,
                                                                 "generator_cpu_s": own_cpu() - mine}  # fmt: skip
            print(f"closed loop {clients} clients: {json.dumps(results[f'closed {clients}'])}", flush=True)
    finally:
        server.kill()
        ca.unlink(missing_ok=True)
    sustained = [int(k.split()[1].removesuffix("/s")) for k, v in results.items()
                 if k.startswith("open") and v["p99_ms"] < 50]  # fmt: skip
    print(f"highest open-loop rate with p99 < 50 ms: {max(sustained, default=0)}/s")
    target = results.get("open 1000/s")
    if target:
        met = target["p99_ms"] <= 20
        print(f"target 1,000/s with p99 <= 20 ms: {'met' if met else 'NOT met'} (p99 {target['p99_ms']:.1f} ms)")


if __name__ == "__main__":
    main()
