"""Fixtures for the red team's attacks on Units (issue 19): the Units loop of ``test_units_loop.py`` (a root
declaring ``infra`` and ``apps`` in the test's namespace, served on a thread), and a tenant: user alice with
``edit`` in a namespace of her own and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kubernetes import client

from tests.integration.conftest import LiveCluster, bind_user
from tests.integration.test_tenant_impersonation import make_namespace
from tests.integration.test_units_loop import running  # noqa: F401  (the loop, as a fixture of this folder)
from tests.kube import close


@dataclass(frozen=True)
class Alice:
    """A tenant: ``edit`` in ``namespace`` only, as user alice (the dev cluster's token)."""

    namespace: str
    api: client.ApiClient


@pytest.fixture
def alice(dev_cluster: LiveCluster, admin_api: client.ApiClient) -> Iterator[Alice]:
    namespace = make_namespace(admin_api)
    bind_user(admin_api, namespace, "alice-edit", "ClusterRole", "edit", user="alice")
    api = dev_cluster.api("dev-alice")
    try:
        yield Alice(namespace, api)
    finally:
        close(api)
        client.CoreV1Api(admin_api).delete_namespace(namespace)
