"""Admission never judges a Pod by namespace labels older than the cached read the watch of every Namespace
replaced (``admission.serve.watched_namespaces``).

Who would break it: a watch whose connection went silent without closing (a stalled proxy, a half-open TCP
connection) still says it is in sync until its read timeout (WATCH_SECONDS + READ_SLACK, over 5 minutes). An
operator tightens a namespace's enforce level meanwhile; a tenant's privileged Pod must not be judged by the old
level for those minutes. The silence here is real: the watch goes through a TCP relay that stops passing bytes."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from kubernetes import client

from gitopsguard.admission.serve import namespace_cache, watched_namespaces
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.namespaces import NamespaceView
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import KubeObject
from tests.integration.conftest import LiveCluster
from tests.waiting import eventually

pytestmark = pytest.mark.integration
ENFORCE = "pod-security.kubernetes.io/enforce"
MERGE = "application/merge-patch+json"


class Relay:
    """A port on the API server's own address (its certificate names that address: loopback, or the node's
    bridge when the dev cluster runs a node, as in CI) to the API server, byte for byte, until ``silence``: then
    no byte passes either way and no connection closes, as a stalled proxy does."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream, self.silent, self.closed = upstream, threading.Event(), threading.Event()
        self.listener = socket.create_server((upstream[0], 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            far = socket.create_connection(self.upstream)
            self.sockets += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while not self.closed.is_set():
            try:
                readable, _, _ = select.select([source], [], [], 0.2)
                if not readable:
                    continue
                data = source.recv(65536)
                if not data:
                    return
                if self.silent.is_set():
                    self.closed.wait()  # held: nothing passes, nothing closes
                    return
                sink.sendall(data)
            except OSError:
                return

    def silence(self) -> None:
        self.silent.set()

    def close(self) -> None:
        self.closed.set()
        for s in self.sockets:
            s.close()


@pytest.fixture
def relayed_api(dev_cluster: LiveCluster, tmp_path: Path) -> Iterator[tuple[client.ApiClient, Relay]]:
    """The dev cluster's admin, through a Relay: a kubeconfig of its own (the client copies configurations
    where a changed host of a copy is not kept)."""
    kubeconfig = yaml.safe_load(dev_cluster.kubeconfig.read_text())
    server = urlparse(kubeconfig["clusters"][0]["cluster"]["server"])
    relay = Relay((server.hostname or "127.0.0.1", server.port or 443))
    for cluster in kubeconfig["clusters"]:
        cluster["cluster"]["server"] = f"https://{relay.upstream[0]}:{relay.port}"
    relayed = tmp_path / "kubeconfig"
    relayed.write_text(yaml.safe_dump(kubeconfig))
    api = LiveCluster(relayed, None).api()
    try:
        yield api, relay
    finally:
        relay.close()
        api.close()  # type: ignore[no-untyped-call]  # the kubernetes client is untyped


def enforced(namespace: KubeObject | None) -> str | None:
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(ENFORCE)


def test_a_tightened_level_is_not_judged_by_a_silent_watch_still_in_sync(
    admin_api: client.ApiClient, relayed_api: tuple[client.ApiClient, Relay], namespace: str
) -> None:
    api, relay = relayed_api
    direct = RawApi(admin_api)
    direct.request("PATCH", f"/api/v1/namespaces/{namespace}", body={"metadata": {"labels": {ENFORCE: "privileged"}}},
                   content_type=MERGE)  # fmt: skip
    stop = threading.Event()
    view = NamespaceView(Applier(api), RawApi(api))
    view.start(stop)
    try:
        eventually(lambda: enforced(view.known(namespace)[1]) == "privileged", timeout=20)
        relay.silence()
        direct.request("PATCH", f"/api/v1/namespaces/{namespace}",
                       body={"metadata": {"labels": {ENFORCE: "restricted"}}}, content_type=MERGE)  # fmt: skip
        judged_by = watched_namespaces(view, namespace_cache(direct))

        assert view.known(namespace)[0] is True  # the watch still says it is in sync
        assert enforced(view.known(namespace)[1]) == "privileged"  # with the old level
        assert enforced(judged_by(namespace)) == "restricted"
    finally:
        stop.set()
