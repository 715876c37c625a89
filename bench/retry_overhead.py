"""Client CPU the retry layer adds to a batch: ``RawApi.send_all`` (safety per request, a scan of the answers
for transient ones) against the bare ``http.Http.send_all``, for 2,020 server-side apply requests answered
200 by a loopback server in another process (so that its CPU is not counted).

    .venv/bin/python bench/retry_overhead.py [--count 2020] [--rounds 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes import client

from gitopsguard.cluster.rest import RawApi, Request

SERVER = """
import socket, threading
ok = b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: 2\\r\\n\\r\\n{}"
listener = socket.create_server(("127.0.0.1", 0)); print(listener.getsockname()[1], flush=True)
def serve(conn):
    buffer = b""
    with conn:
        while data := conn.recv(65536):
            buffer += data
            while b"\\r\\n\\r\\n" in buffer:
                head, _, rest = buffer.partition(b"\\r\\n\\r\\n")
                lines = head.lower().split(b"\\r\\n")
                length = int(next((l.split(b":")[1] for l in lines if l.startswith(b"content-length")), b"0"))
                if len(rest) < length: break
                buffer = rest[length:]; conn.sendall(ok)
while True:
    conn, _ = listener.accept(); threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2020)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        if server.stdout is None:
            raise SystemExit("the server did not start")
        configuration = client.Configuration()
        configuration.host = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        raw = RawApi(client.ApiClient(configuration))
        requests = [Request("PATCH", f"/o/{i}", {"fieldManager": "gitopsguard", "force": "true", "dryRun": "All"},
                            b"{}", "application/apply-patch+yaml") for i in range(args.count)]  # fmt: skip
        calls = [(r.method, r.path + "?fieldManager=gitopsguard&force=true&dryRun=All", r.body, {}) for r in requests]
        bare = raw._http  # the layer below the retries, for comparison
        for name, run in (("http.send_all", lambda: bare.send_all(calls, 64)),
                          ("RawApi.send_all (with retries)", lambda: raw.send_all(requests, 64))):  # fmt: skip
            run()  # warm: connections opened
            cpu = []
            for _ in range(args.rounds):
                started = time.process_time()
                run()
                cpu.append(time.process_time() - started)
            cpu.sort()
            print(f"{name}: median client CPU {cpu[len(cpu) // 2] * 1000:.1f} ms for {args.count} requests")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
