"""`make demo` shows a failing Unit in one line (``demo_incluster_units.units_table``), on the real API server.

A failing Unit's error holds a line per refused object, and kubectl pads a column to the whole length of its
widest cell even when it shows only the first line of it: in the story's confinement and policy-gate steps
`kubectl get units` ran 400 to 1,500 characters wide while the conditions held the whole error. They now hold
its first line (``status.lastError`` the whole); the story shows the condition's reason there too."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

import pytest
from kubernetes import client

from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.units import UnitStore
from gitopsguard.commands.demo_incluster import DemoInstall
from gitopsguard.commands.demo_incluster_units import units_table
from gitopsguard.units import PassOutcome, Phase, Reason, status_of
from tests.integration.conftest import LiveCluster
from tests.integration.test_units_crd import install_unit_crd, make_unit, run_kubectl
from tests.kubectl import kubectl

pytestmark = pytest.mark.integration
REFUSED = "the server refused 1 of 1 objects in a dry run\n  - ConfigMap/payments/written-by-shop: " + "x" * 400


def test_a_failing_unit_with_a_long_message_is_shown_in_one_short_line_with_its_reason(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = RawApi(admin_api)
    install_unit_crd(raw)
    make_unit(raw, namespace, "shop", {"path": "apps/shop/dev"})
    store = UnitStore(raw)
    failed = PassOutcome(Phase.FAILED, 1, "abc123", message=REFUSED, failure=Reason.FAILED)
    store.write_status(store.get(namespace, "shop"), status_of(failed, None, datetime.now(UTC)))
    # the conditions hold the failure's first line (``units.conditions._summary``): the plain table is short too
    plain = run_kubectl(dev_cluster, "get", "units", "-n", namespace)
    assert max(len(line) for line in plain.stdout.splitlines()) < 160, plain.stdout
    assert "(the whole error: status.lastError)" in plain.stdout
    demo = cast(DemoInstall, SimpleNamespace(kubectl=kubectl(), kubeconfig=dev_cluster.kubeconfig))
    assert units_table(demo, "-n", namespace) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith(f"  $ kubectl get units -n {namespace} -o custom-columns=")  # the command, as typed
    header, row = shown[1:]
    assert header.split() == ["NAMESPACE", "NAME", "READY", "REASON", "REVISION"]
    assert row.split() == [namespace, "shop", "False", "ReconciliationFailed", "<none>"]
    assert max(len(line) for line in shown[1:]) < 120
