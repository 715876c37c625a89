"""Connecting to an API server from a kubeconfig and asking it who it is and whether it is ready."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from gitopsguard.errors import ClusterError


@dataclass(frozen=True)
class ServerInfo:
    server: str
    version: str
    ready: bool
    failing_checks: tuple[str, ...]


POOL_SIZE = 32  # urllib3's (proxies, watches); the direct transport keeps every connection it opened


def connect(kubeconfig: Path | None = None, context: str | None = None) -> client.ApiClient:
    """An ``ApiClient`` for ``kubeconfig`` (default: $KUBECONFIG or ~/.kube/config)."""
    where = str(kubeconfig) if kubeconfig else "$KUBECONFIG or ~/.kube/config"
    try:
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig) if kubeconfig else None, context=context,
            client_configuration=configuration, persist_config=False,
        )  # fmt: skip
        configuration.connection_pool_maxsize = POOL_SIZE
        return client.ApiClient(configuration)
    except (ConfigException, OSError, TypeError) as error:
        raise ClusterError(
            f"{where}: cannot load kubeconfig ({error}); for the local dev cluster run "
            "`eval $(gitopsguard dev-cluster env)`"
        ) from error


def server_info(api: client.ApiClient) -> ServerInfo:
    """The server's version and its ``/readyz`` verdict, with the names of any failing checks."""
    server = str(api.configuration.host)
    try:
        version = str(client.VersionApi(api).get_code().git_version)
        status, body = get_raw(api, "/readyz", query=[("verbose", "true")])
    except ApiException as error:
        raise ClusterError(f"{server}: the API server refused the request: {error.status} {error.reason}") from error
    except urllib3.exceptions.HTTPError as error:
        raise ClusterError(
            f"{server}: the API server is unreachable ({error}); is it running? For the dev cluster: "
            "`gitopsguard dev-cluster status`"
        ) from error
    return ServerInfo(server, version, status == 200, _failing(body))


def get_raw(api: client.ApiClient, path: str, query: list[tuple[str, str]] | None = None) -> tuple[int, str]:
    """GET a non-resource path (``/readyz``, ``/version``) with the client's credentials; (status, body)."""
    method, url, headers, _, _ = api.param_serialize(
        "GET", path, query_params=query or [], auth_settings=["BearerToken"]
    )
    try:
        response = api.call_api(method, url, header_params=headers, _request_timeout=10)
        response.read()  # type: ignore[no-untyped-call]
        return int(response.status), bytes(response.data or b"").decode(errors="replace")
    except ApiException as error:
        if error.status is not None and error.status >= 500:
            return int(error.status), str(error.body or "")
        raise


def _failing(readyz_body: str) -> tuple[str, ...]:
    return tuple(line[3:].split(" ")[0] for line in readyz_body.splitlines() if line.startswith("[-]"))
