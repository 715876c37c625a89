"""The dev cluster's API server shows webhooks a client certificate (pki.ensure_webhook_client): made once, its
key private, and passed to the API server only when present, so a cluster made before it keeps starting."""

from __future__ import annotations

import ssl
from pathlib import Path

import yaml

from gitopsguard.devcluster.components import APISERVER, Ports, component_spec
from gitopsguard.devcluster.paths import CacheLayout, StateLayout
from gitopsguard.devcluster.pki import ADMISSION_CONFIG, WEBHOOK_CLIENT_CA, ensure_webhook_client

PORTS = Ports(etcd_client=2379, etcd_peer=2380, apiserver=6443)


def _apiserver_flags(state: StateLayout, tmp_path: Path) -> tuple[str, ...]:
    return component_spec(APISERVER, CacheLayout(tmp_path / "cache"), state, PORTS).argv


def test_a_cluster_made_before_the_client_certificate_starts_without_the_flag(tmp_path: Path) -> None:
    state = StateLayout(tmp_path / "state")
    assert not any(flag.startswith("--admission-control-config-file") for flag in _apiserver_flags(state, tmp_path))


def test_the_api_server_is_given_an_admission_configuration_naming_a_client_certificate_for_every_webhook(
    tmp_path: Path,
) -> None:  # fmt: skip
    state = StateLayout(tmp_path / "state")
    config = ensure_webhook_client(state.pki_dir)
    flags = _apiserver_flags(state, tmp_path)
    assert flags[flags.index("--admission-control-config-file") + 1] == str(config)
    admission = yaml.safe_load(config.read_text())
    assert admission["kind"] == "AdmissionConfiguration"
    plugins = {p["name"]: p["configuration"] for p in admission["plugins"]}
    assert set(plugins) == {"ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"}
    kubeconfig = yaml.safe_load(Path(plugins["ValidatingAdmissionWebhook"]["kubeConfigFile"]).read_text())
    [user] = kubeconfig["users"]
    assert user["name"] == "*"  # any webhook host: the dev cluster's webhooks are on loopback ports of the day
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_cert_chain(user["user"]["client-certificate"], user["user"]["client-key"])  # a matching pair
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_verify_locations(state.pki_dir / WEBHOOK_CLIENT_CA)
    assert Path(user["user"]["client-key"]).stat().st_mode & 0o077 == 0  # the key is the owner's alone


def test_the_client_certificate_is_made_once(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    ensure_webhook_client(pki)
    ca = (pki / WEBHOOK_CLIENT_CA).read_bytes()
    assert ensure_webhook_client(pki) == pki / ADMISSION_CONFIG
    assert (pki / WEBHOOK_CLIENT_CA).read_bytes() == ca  # a restart keeps what webhooks were told to trust
