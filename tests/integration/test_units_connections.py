"""`run --root` keeps a number of connections to the API server that does not grow with its Units.

Each connection pool (one per ``RawApi``) costs its own TLS context and sessions, and each connection a TLS
state and buffers: about 0.1 MiB a Unit when a part of the loop made a pool per Unit (bench/README.md,
"1,000 Units"). Seen failing before the change: the Events of each Unit went through a ``RawApi`` of their
own: 66 connections for 30 Units, 30 of them the root's batch (so 100 Units here)."""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import WIDTH, Applier
from gitopsguard.cluster.http import Http
from gitopsguard.cluster.impersonation import ServiceAccount
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.units import UnitStore
from gitopsguard.fleet import accounts
from gitopsguard.model import UNIT_LABEL
from gitopsguard.units import UnitRef, UnitSpec
from tests.integration.conftest import LiveCluster
from tests.integration.test_units_loop import units_of_one_configmap
from tests.waiting import eventually

pytestmark = pytest.mark.integration

UNITS = 100
# A batch (the root's apply of every Unit) has up to WIDTH requests in flight, each on a connection of the
# applier's pool, kept alive for the next batch; the loop's other pools (inventories, Units, Events) and its
# watches hold a few more: a number of the process's parts, not of its Units.
MOST = WIDTH + 16


def connections_to(pid: int, port: int) -> int:
    """Established TCP connections of process ``pid`` to ``port`` (its sockets matched in /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            remote_port, state, inode = int(fields[2].rsplit(":", 1)[1], 16), fields[3], fields[9]
            count += remote_port == port and state == "01" and inode in inodes
    return count


def test_a_run_over_many_units_keeps_its_connections_to_the_api_server_whatever_the_unit_count(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    raw = RawApi(admin_api)
    upstream, _ = units_of_one_configmap(raw, namespace, tmp_path, [f"u{n:02d}" for n in range(UNITS)])
    process = subprocess.Popen([
        sys.executable, "-m", "gitopsguard", "run", "--repo", str(upstream.bare), "--root", "root",
        "--unit", f"{namespace}-root", "--kubeconfig", str(dev_cluster.kubeconfig), "--workdir", str(tmp_path / "gg"),
        "--audit-log", str(tmp_path / "audit.jsonl"), "--interval", "60", "--no-live-scan",
        "--metrics-address", "", "--policies-path", "",
    ], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    units = UnitStore(raw)
    port = urlsplit(str(admin_api.configuration.host)).port or 443
    try:
        eventually(lambda: sum(ready(u.body) for u in units.list(namespace)) == UNITS or process.poll() is not None,
                   180, every=0.5)  # fmt: skip
        assert process.poll() is None, "the controller ended early"
        held = connections_to(process.pid, port)
        # a Unit's drift repaired: its Event still carries that Unit's label, its recorder its own
        raw.call("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/u07", body={"data": {"value": "drifted"}},
                 content_type="application/merge-patch+json")  # fmt: skip
        eventually(lambda: bool(repaired_events(admin_api, namespace, "u07")), 60, every=0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output = process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert held <= MOST, f"{held} connections to the API server for {UNITS} Units; the controller printed:\n{output}"
    assert {(e.metadata.labels or {}).get(UNIT_LABEL) for e in repaired_events(admin_api, namespace, "u07")} == {
        f"{namespace}.u07"
    }


def repaired_events(api: client.ApiClient, namespace: str, name: str) -> list[client.CoreV1Event]:
    found = client.CoreV1Api(api).list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    return [e for e in found.items if e.reason == "DriftRepaired"]


def ready(body: dict[str, object]) -> bool:
    status = body.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions or [])


def test_units_acting_as_many_accounts_share_the_controllers_connection_pool(
    admin_api: client.ApiClient, namespace: str
) -> None:
    """One applier per account, each writing as its account: a pool of its own for each cost about 0.1 MiB an
    account (seen failing before: 20 Http pools for 20 accounts). Reads stay the controller's."""
    own = Applier(admin_api)
    account_of = accounts(own)
    before = pools()
    appliers = [account_of(unit_acting_as(namespace, f"team-{n}")) for n in range(20)]
    assert pools() == before
    assert [a.acting_as for a in appliers] == [ServiceAccount(namespace, f"team-{n}") for n in range(20)]
    assert all(a.raw is own.raw for a in appliers)
    assert account_of(unit_acting_as(namespace, "team-3")) is appliers[3]  # kept, not made again


def pools() -> int:
    gc.collect()
    return sum(isinstance(o, Http) for o in gc.get_objects())


def unit_acting_as(namespace: str, account: str) -> UnitSpec:
    return UnitSpec(UnitRef(namespace, f"unit-of-{account}"), "root/units.yaml:1", f"apps/{account}",
                    timedelta(minutes=5), service_account_name=account)  # fmt: skip
