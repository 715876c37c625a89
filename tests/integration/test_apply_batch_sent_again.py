"""A batch of applies sent again after a dropped connection (``RawApi.send_each``: applies are safe to repeat) on
the REAL API server, through the fault proxy: an object the first attempt created is answered 200 the second
time, and must still count as created by this unit, or a failed revision's rollback would leave it behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.model import UNIT_LABEL, ObjectKey
from tests.faultproxy import Fault, FaultProxy, fault_proxy

pytestmark = pytest.mark.integration
UNIT = "sent-again"


@dataclass(frozen=True)
class Wanted:
    """One ConfigMap as the plan would prepare it (``apply.Prepared``)."""

    key: ObjectKey
    origin: str = "apps/all.yaml:1"
    api_version: str = "v1"

    @property
    def payload(self) -> bytes:
        metadata = {"name": self.key.name, "namespace": self.key.namespace, "labels": {UNIT_LABEL: UNIT}}
        return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"v": "1"}}).encode()


@pytest.fixture
def proxy(admin_api: client.ApiClient, tmp_path: Path) -> Iterator[FaultProxy]:
    with fault_proxy(admin_api, tmp_path / "proxy") as running:
        yield running


def test_an_object_created_before_a_batch_was_sent_again_still_counts_as_created(
    proxy: FaultProxy, namespace: str
) -> None:
    first, second = (Wanted(ObjectKey("", "ConfigMap", namespace, name)) for name in ("first", "second"))
    cut = proxy.add(Fault("reset", lambda method, p: method == "PATCH" and "/configmaps/second?" in p, times=1))
    applier = Applier(proxy.api(), workers=1)  # one at a time: "first" is created before "second" is cut
    outcomes, created = applier.apply_noting_created([first, second], UNIT)
    assert len(cut.hits) == 1 and all(outcome.ok for outcome in outcomes)  # type: ignore[union-attr]
    patched = [p for p in proxy.forwarded if p.startswith("PATCH") and "/configmaps/first?" in p]
    assert len(patched) == 2, "the whole batch went out again"
    assert [c.key.name for c in created] == ["first", "second"], "created by this unit, whichever answer came last"
