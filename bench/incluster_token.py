"""What reading the Pod's token on every request costs: CPU per `get_api_key_with_prefix("authorization")`
(the call every transport makes per request) with gitopsguard's in-cluster configuration (a stat of the token
file each time, a read when it changed), against the kubernetes client's own loader (a clock check, a read
once a minute) and a kubeconfig token. No cluster needed: a token folder in a temp dir.

    PYTHONPATH=. .venv/bin/python bench/incluster_token.py [--calls 200000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kubernetes import client
from kubernetes.config.incluster_config import InClusterConfigLoader

from gitopsguard.cluster.incluster import DIR_VARIABLE, incluster_configuration


def per_call(ask: Callable[[], object], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        ask()
    return (time.process_time() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    calls = parser.parse_args().calls
    with tempfile.TemporaryDirectory() as folder:
        account = Path(folder)
        (account / "token").write_text("t" * 900)  # a bound token is about 900 bytes
        (account / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
        environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443", DIR_VARIABLE: folder}
        ours = incluster_configuration(environ)
        library = client.Configuration()
        loader = InClusterConfigLoader(str(account / "token"), str(account / "ca.crt"), environ=environ)  # type: ignore[no-untyped-call]
        loader.load_and_set(library)  # type: ignore[no-untyped-call]
        static = client.Configuration()
        static.api_key["authorization"] = "Bearer " + "t" * 900
        rows = [("gitopsguard in-cluster (stat per call)", lambda: ours.get_api_key_with_prefix("authorization")),
                ("kubernetes load_incluster_config", lambda: library.get_api_key_with_prefix("BearerToken")),
                ("static token (kubeconfig)", lambda: static.get_api_key_with_prefix("authorization"))]  # fmt: skip
        for name, ask in rows:
            print(f"{name:<42} {per_call(ask, calls):6.2f} µs CPU per request")
        replaced = account / "token.new"
        replaced.write_text("u" * 900)
        os.replace(replaced, account / "token")
        seen = ours.get_api_key_with_prefix("authorization") == "Bearer " + "u" * 900
        stale = library.get_api_key_with_prefix("BearerToken") == "bearer " + "t" * 900
        print(f"after the file is replaced: gitopsguard sends the new token at once: {seen}; "
              f"the library's loader still sends the old one (until a minute passed): {stale}")  # fmt: skip


if __name__ == "__main__":
    main()
