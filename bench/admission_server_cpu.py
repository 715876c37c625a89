"""The webhook server's CPU per request, by HTTP stack and connection pattern (issue 16, part 2).

    PYTHONPATH=$PWD .venv/bin/python bench/admission_server_cpu.py [--seconds 5] [--clients 10] [--rounds 3]

The server runs in a process of its own (``pss-restricted`` and ``magtape``, the corpus of
``admission_load.py``) and reports the CPU it used; a closed-loop generator in this process keeps ``clients``
connections busy for ``seconds``, either kept alive (``keep``) or a new TLS connection per request (``new``:
what the API server's webhook client does for about every second call at 100 concurrent requests, see
bench/README.md). Stacks: ``threaded`` is gitopsguard's server (``http.server``, a thread per connection);
``aiohttp`` serves the same judging (``AdmissionServer.judge``) with aiohttp on asyncio's TLS, a sketch of
the alternative without the server's deadlines, caps or client check. ``+client-cert``: the server asks for
and verifies a client certificate (``--admission-client-ca``), which the generator shows. Variants run
round-robin so that the machine's other load falls on all alike; medians are printed.
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
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.admission_load import POLICIES, Connection, corpus  # noqa: E402

VARIANTS = ("threaded keep", "threaded new", "threaded new +client-cert", "aiohttp keep", "aiohttp new")


def serve(stack: str, folder: Path, client_cert: bool) -> None:
    """The server process: writes its CA (and the client's certificate) into ``folder``, prints its port,
    then its CPU seconds for each line read from stdin."""
    from gitopsguard.admission.certs import issue
    from gitopsguard.admission.review import Judgement
    from gitopsguard.admission.server import AdmissionServer, Settings
    from gitopsguard.devcluster.pki import webhook_client_certificates
    from gitopsguard.policy import DenyLevel, parse_policies

    certs = issue(["127.0.0.1"], datetime.now(UTC))
    (folder / "ca.pem").write_bytes(certs.bundle)
    client_ca, cert, key = webhook_client_certificates(datetime.now(UTC))
    (folder / "client.crt").write_bytes(cert)
    (folder / "client.key").write_bytes(key)
    judgement = Judgement(parse_policies({"p.yaml": POLICIES}), DenyLevel.LOW)
    settings = Settings(max_connections=512, workers=4, client_ca=client_ca.decode() if client_cert else "")
    server = AdmissionServer(("127.0.0.1", 0), certs.context(), lambda: judgement, settings=settings)
    if stack == "threaded":
        server.start()
        print(server.server_port, flush=True)
        _report_cpu()
    else:
        asyncio.run(_aiohttp(server, certs.context()))


def _report_cpu() -> None:
    for _ in sys.stdin:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(f"{usage.ru_utime + usage.ru_stime:.4f}", flush=True)


async def _aiohttp(judge: Any, context: ssl.SSLContext) -> None:
    from aiohttp import web

    async def validate(request: web.Request) -> web.Response:
        data = await request.read()
        answer = judge.judge("validate", data, time.monotonic() + 4)  # 0.1 ms: inline, as a pool hop costs more
        return web.Response(body=json.dumps(answer).encode(), content_type="application/json")

    app = web.Application(client_max_size=7 * 1024 * 1024)
    app.router.add_post("/validate", validate)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    await asyncio.get_running_loop().run_in_executor(None, _report_cpu)


async def load(port: int, context: ssl.SSLContext, clients: int, seconds: float, new: bool) -> int:
    bodies, done = corpus(), 0
    end = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        nonlocal done
        connection = await Connection.open(port, context)
        i = offset
        while time.perf_counter() < end:
            if new:
                connection.writer.close()
                connection = await Connection.open(port, context)
            if await connection.post(bodies[i % len(bodies)]) != 200:
                raise RuntimeError("the webhook did not answer 200")
            done, i = done + 1, i + clients
        connection.writer.close()

    await asyncio.gather(*(client(c) for c in range(clients)))
    return done


def one(variant: str, clients: int, seconds: float) -> float:
    """Server CPU milliseconds per request for one variant."""
    stack, pattern, *extra = variant.split()
    with tempfile.TemporaryDirectory(prefix="gitopsguard-bench-") as folder:
        server = subprocess.Popen([sys.executable, __file__, "--serve", stack, "--folder", folder,
                                   *(["--client-cert"] if extra else [])],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert server.stdin is not None and server.stdout is not None  # noqa: S101  (pipes asked for)
        try:
            port = int(server.stdout.readline())
            context = ssl.create_default_context(cafile=f"{folder}/ca.pem")
            if extra:
                context.load_cert_chain(f"{folder}/client.crt", f"{folder}/client.key")
            server.stdin.write("\n")
            server.stdin.flush()
            before = float(server.stdout.readline())
            done = asyncio.run(load(port, context, clients, seconds, pattern == "new"))
            server.stdin.write("\n")
            server.stdin.flush()
            return (float(server.stdout.readline()) - before) * 1000 / done
        finally:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--client-cert", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.folder, args.client_cert)
        return
    print(f"load average {os.getloadavg()[0]:.1f}; {ssl.OPENSSL_VERSION}", flush=True)
    measured: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            measured[variant].append(one(variant, args.clients, args.seconds))
    for variant, values in measured.items():
        shown = ", ".join(f"{v:.3f}" for v in values)
        print(f"{variant:28} median {statistics.median(values):.3f} ms CPU/request ({shown})")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
