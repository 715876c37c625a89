"""The audit trail learns which user the API server knows the controller as from the audit line of its probe,
sent through the typed verbs (no status code read outside cluster/): a probe the server answers NotFound or
Forbidden was audited, so it teaches; one that never reached the server raises, so the caller asks again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster import retries
from gitopsguard.cluster.audittrail import AuditTrail
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import UnreachableError
from tests.integration.conftest import LiveCluster
from tests.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def trail(dev_cluster: LiveCluster) -> Iterator[AuditTrail]:
    if not dev_cluster.audit_log.exists():
        pytest.skip("the reused cluster writes no audit log")
    following, stop = AuditTrail(dev_cluster.audit_log), threading.Event()
    thread = following.follow(stop)
    yield following
    stop.set()
    thread.join(5)


@pytest.mark.parametrize(("context", "user"), [("dev-admin", "admin"), ("dev-alice", "alice")])
def test_the_probe_teaches_who_we_are_whether_it_is_answered_not_found_or_forbidden(
    trail: AuditTrail, dev_cluster: LiveCluster, context: str, user: str
) -> None:
    trail.learn_identity(RawApi(dev_cluster.api(context)))  # alice may not delete ConfigMaps in default: 403
    eventually(lambda: trail.me is not None, timeout=10)
    assert trail.me == user


def test_a_probe_that_reaches_no_server_raises_and_teaches_nothing(tmp_path: Path) -> None:
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # nobody listens
    trail = AuditTrail(tmp_path / "audit.log")
    with pytest.raises(UnreachableError, match=rf"configmaps/{trail.probe}: the API server is unreachable"):
        trail.learn_identity(RawApi(client.ApiClient(configuration), retry=retries.ONCE))
    assert trail.me is None
