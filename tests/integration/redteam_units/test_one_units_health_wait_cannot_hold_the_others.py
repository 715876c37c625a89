"""A team's commit must not hold every other team's Units for as long as its own Unit's health wait.

A Unit with ``wait`` waits, after its pass, until what it applied is healthy or its ``timeout`` (up to a day)
runs out. A team that may write only its own folder commits a Deployment that never becomes available (an
image nobody serves). When one thread served every Unit in order, that wait held the round, and a commit or a
reconcile request for any other team's Unit waited behind it. Now the wait runs off the workers
(``fleet_turns.py``): the other Units are served meanwhile, and the waiting Unit is not passed again until its
wait ends, whatever comes due meanwhile (no Unit is passed twice at once)."""

from __future__ import annotations

import time

from kubernetes import client

from tests.integration.test_units_loop import DEPLOYMENT, Running, commit, configmap
from tests.waiting import eventually, value_of


def test_a_commit_to_another_unit_is_applied_while_one_unit_waits_for_its_health(
    running: Running, admin_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin_api)
    eventually(lambda: running.ready("apps").get("status") == "True", 60, every=0.5)
    running.declare(infra="{path: infra}", apps="{path: apps}",
                    slow="{path: slow, wait: {enabled: true}, timeout: 45s}")  # fmt: skip
    sha = commit(running, {"slow/web.yaml": DEPLOYMENT.format(namespace=namespace)})
    slow = f"{namespace}.slow"
    # the team's Unit applied its Deployment and now waits for it (its result comes before its wait)
    eventually(lambda: any(r.unit == slow and r.revision == sha for r in running.results), 60, every=0.5)
    committed = time.monotonic()
    again = commit(running, {"apps/cm.yaml": configmap("apps", namespace, "2")})
    eventually(lambda: value_of(core, "apps", namespace) == "2" or time.monotonic() - committed > 15, 20, every=0.5)
    assert value_of(core, "apps", namespace) == "2", "another team's commit waited behind the health wait"
    time.sleep(1)  # a round that passed the waiting Unit again would have reported it by now
    passes = [r.revision for r in list(running.results) if r.unit == slow]
    assert again not in passes and passes.count(sha) == 1, f"the waiting Unit was passed again: {passes}"
