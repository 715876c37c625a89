"""Connecting to an API server (from a kubeconfig, or as the Pod's service account) and asking it who it is
and whether it is ready."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from gitopsguard.cluster import incluster
from gitopsguard.errors import ClusterError


@dataclass(frozen=True)
class ServerInfo:
    server: str
    version: str
    ready: bool
    failing_checks: tuple[str, ...]


POOL_SIZE = 32  # urllib3's (proxies, watches); the direct transport keeps every connection it opened


def connect(
    kubeconfig: Path | None = None, context: str | None = None, *, environ: Mapping[str, str] | None = None
) -> client.ApiClient:
    """An ``ApiClient`` for ``kubeconfig``; without one, for $KUBECONFIG (which must then load), else
    ~/.kube/config when it exists, else the Pod's service account (``incluster``). Nothing found: ClusterError.
    A kubeconfig that was named but does not load is an error, never a reason to act as the Pod's account."""
    environ = os.environ if environ is None else environ
    if kubeconfig is None and not environ.get("KUBECONFIG") and not _home_kubeconfig(environ).is_file():
        if not incluster.in_a_pod(environ):
            raise ClusterError(
                f"{_home_kubeconfig(environ)}: no kubeconfig, $KUBECONFIG is not set, and this is not a Pod "
                "($KUBERNETES_SERVICE_HOST/PORT unset); give --kubeconfig, or for the local dev cluster run "
                "`eval $(gitopsguard dev-cluster env)`"
            )
        configuration = incluster.incluster_configuration(environ)
    else:
        configuration = _from_kubeconfig(kubeconfig or Path(environ.get("KUBECONFIG") or _home_kubeconfig(environ)),
                                         context)  # fmt: skip
    configuration.connection_pool_maxsize = POOL_SIZE
    return client.ApiClient(configuration)


def _home_kubeconfig(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("HOME") or Path.home()) / ".kube" / "config"


def _from_kubeconfig(path: Path, context: str | None) -> client.Configuration:
    try:
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path), context=context, client_configuration=configuration, persist_config=False
        )
    except (ConfigException, OSError, TypeError) as error:
        raise ClusterError(
            f"{path}: cannot load kubeconfig ({error}); for the local dev cluster run "
            "`eval $(gitopsguard dev-cluster env)`"
        ) from error
    _mirror_bearer(configuration)
    return configuration


def _mirror_bearer(configuration: client.Configuration) -> None:
    """Keep the token under ``authorization`` as well, refreshed with ``BearerToken``: the key every transport
    asks for (``get_api_key_with_prefix("authorization")``), whichever loader filled the configuration."""
    loaded = configuration.refresh_api_key_hook

    def refresh(target: client.Configuration) -> None:
        if loaded is not None:
            loaded(target)
        if "BearerToken" in target.api_key:
            target.api_key["authorization"] = target.api_key["BearerToken"]

    if "BearerToken" in configuration.api_key:
        refresh(configuration)
        configuration.refresh_api_key_hook = refresh  # type: ignore[assignment]  # typed as None in the client


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
