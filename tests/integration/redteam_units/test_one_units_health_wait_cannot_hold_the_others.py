"""A team's commit holds every other team's Units for as long as its own Unit's health wait.

The Units loop serves Units one at a time, in order, on one thread (``fleet.py``), and a Unit with ``wait``
waits there, after its pass, until what it applied is healthy or its ``timeout`` (up to a day) runs out. A
team that may write only its own folder commits a Deployment that never becomes available (an image nobody
serves): every interval, its Unit's wait holds the round, and a commit or a reconcile request for any other
team's Unit waits behind it. Open (``docs/units.md``, "Not yet"; ``docs/threat-model.md``, known gaps): the
fix is a worker per independent Unit, or waits that leave the round."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from tests.integration.test_units_loop import DEPLOYMENT, Running, commit, configmap
from tests.waiting import eventually, value_of


@pytest.mark.xfail(strict=True, reason="a Unit's health wait holds the one thread that serves every Unit")
def test_a_commit_to_another_unit_is_applied_while_one_unit_waits_for_its_health(
    running: Running, admin_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin_api)
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    running.declare(infra="{path: infra}", apps="{path: apps}",
                    slow="{path: slow, wait: {enabled: true}, timeout: 45s}")  # fmt: skip
    sha = commit(running, {"slow/web.yaml": DEPLOYMENT.format(namespace=namespace)})
    # the team's Unit applied its Deployment and now waits for it (its result comes before its wait)
    eventually(lambda: any(r.unit == f"{namespace}.slow" and r.revision == sha for r in running.results), 60,
               every=0.5)  # fmt: skip
    committed = time.monotonic()
    commit(running, {"apps/cm.yaml": configmap("apps", namespace, "2")})
    eventually(lambda: value_of(core, "apps", namespace) == "2" or time.monotonic() - committed > 15, 20, every=0.5)
    assert value_of(core, "apps", namespace) == "2", "another team's commit waited behind the health wait"
