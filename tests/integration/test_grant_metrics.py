"""The keeper's counters are Prometheus metrics: rounds that failed as a whole
(``gitopsguard_grant_round_failures_total``) and grant files or evidence denied because reading or deciding
them raised (``gitopsguard_grant_bad_inputs_total``), read from the keeper at each scrape. A real keeper on
the real API server, a real repository."""

from __future__ import annotations

import re

import pytest
from kubernetes import client
from prometheus_client import generate_latest

from gitopsguard.errors import SourceError
from gitopsguard.grants.keeper import Transition
from gitopsguard.notify.metrics import Metrics
from tests.integration.grantsetup import Clock, keeper_for, signed, sync
from tests.signedrepo import SignedRepo, grant

pytestmark = pytest.mark.integration
__all__ = ["signed"]  # the fixture


def scraped(metrics: Metrics, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", generate_latest(metrics.registry).decode(), re.MULTILINE)
    assert found, f"{name} is not exported"
    return float(found[1])


def test_failed_rounds_and_bad_inputs_are_exported_as_they_are_counted(
    signed: tuple[SignedRepo, Clock], admin_api: client.ApiClient, namespace: str
) -> None:
    repo, clock = signed
    keeper = keeper_for(admin_api, namespace, clock)
    metrics = Metrics()
    metrics.watch_grants(keeper.counts)
    assert scraped(metrics, "gitopsguard_grant_round_failures_total") == 0

    def unreachable() -> list[Transition]:
        raise SourceError("grants: the repository is unreachable")

    for _ in range(3):
        keeper._attempt(unreachable)
    repo.write("access/grants/broken.yaml", grant("broken", namespace).replace("subject: {kind: User, name: alice}",
                                                                              "subject: alice"))  # fmt: skip
    repo.commit("alice", "a broken grant", signed=False)
    sync(repo, keeper)
    assert scraped(metrics, "gitopsguard_grant_round_failures_total") == 3
    assert scraped(metrics, "gitopsguard_grant_bad_inputs_total") == 1
