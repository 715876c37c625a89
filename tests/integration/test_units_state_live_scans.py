"""Two units' live scans over the same namespace keep a state and Events of their own: a unit whose policies
find nothing wrong no longer erases the first sighting another unit's scan remembered (which restarted that
unit's grace period at each of its restarts), and each unit's Events say whose they are. On the real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.configmaps import ConfigMapStore
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import UNIT_LABEL
from gitopsguard.policy import PolicySet, parse_policies
from gitopsguard.scan.scanner import Scanner
from gitopsguard.scan.state import ScanStateStore, state_name
from tests.integration.test_live_scan import deployment
from tests.kube import as_model, meta
from tests.policies import team_label_policy
from tests.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def units(admin_api: client.ApiClient, namespace: str) -> Iterator[tuple[str, str]]:
    a, b = f"{namespace}.platform", f"{namespace}.team-b"
    yield a, b
    store = ConfigMapStore(RawApi(admin_api), CONTROLLER_NAMESPACE)
    for unit in (a, b, ""):
        store.delete(state_name(namespace, unit))


def scan_once(api: client.ApiClient, namespace: str, policies: PolicySet, unit: str, backups: Path) -> None:
    scanner = Scanner(Applier(api), RawApi(api), policies, backup_dir=backups, namespaces=frozenset({namespace}),
                      unit=unit)  # fmt: skip
    scanner.scan_all()
    scanner.tick()
    scanner.flush()
    assert scanner.drain()


def test_a_units_scan_that_finds_nothing_keeps_its_hands_off_another_units_first_sightings(
    admin_api: client.ApiClient, namespace: str, units: tuple[str, str], tmp_path: Path
) -> None:
    platform, team = units
    body = as_model(client.V1Deployment, deployment("stray", {}))
    uid = meta(client.AppsV1Api(admin_api).create_namespaced_deployment(namespace, body)).uid
    scan_once(admin_api, namespace, parse_policies({"policies/p.yaml": team_label_policy("1h")}), platform, tmp_path)
    remembered, _ = ScanStateStore(RawApi(admin_api), scan=platform).load()
    assert uid is not None
    first_seen = remembered[uid].first_seen

    scan_once(admin_api, namespace, parse_policies({}), team, tmp_path)  # no policy: stray is fine by it

    again, problems = ScanStateStore(RawApi(admin_api), scan=platform).load()
    assert problems == []
    assert uid in again and again[uid].first_seen == first_seen  # the grace period runs on
    assert ScanStateStore(RawApi(admin_api), scan=team).load()[0] == {}
    assert uid not in ScanStateStore(RawApi(admin_api)).load()[0]  # nor is it the scan of no unit's

    def platform_events() -> list[str]:
        listed = client.CoreV1Api(admin_api).list_namespaced_event(namespace, label_selector=f"{UNIT_LABEL}={platform}")
        return [str(e.reason) for e in listed.items if e.involved_object.name == "stray"]

    eventually(lambda: "PolicyViolation" in platform_events(), timeout=10, every=0.1)
