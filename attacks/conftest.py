"""Fixtures for the attack tests: the integration suite's (dev cluster, admin client, a namespace per test)."""

from tests.integration.conftest import admin_api, dev_cluster, namespace

__all__ = ["admin_api", "dev_cluster", "namespace"]
