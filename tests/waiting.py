"""Waiting for the cluster to get somewhere, and reading what a test's ConfigMaps hold."""

from __future__ import annotations

import time
from collections.abc import Callable

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube import data_of

CONFIGMAP = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: "{value}"\n'


def eventually(check: Callable[[], bool], timeout: float = 15.0, *, every: float = 0.05) -> None:
    """Poll ``check`` every ``every`` seconds until it holds; fail the test after ``timeout`` seconds. The one
    polling helper of the suite: a check that asks the API server polls less often, to spare it."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"condition not met within {timeout:g} s"
        time.sleep(every)


def value_of(core: client.CoreV1Api, name: str, namespace: str) -> str | None:
    """``data.value`` of a ConfigMap made from ``CONFIGMAP``; None when it does not exist."""
    try:
        return str(data_of(core.read_namespaced_config_map(name, namespace))["value"])
    except ApiException as error:
        if error.status == 404:
            return None
        raise
