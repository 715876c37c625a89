"""Which credentials `connect()` uses, and the Pod's token read again as the kubelet rewrites it (no cluster:
files in a temp dir; the real server is in tests/integration/test_incluster_connection.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.cluster import connect
from gitopsguard.cluster.incluster import DIR_VARIABLE, MAX_TOKEN, TokenFile, read_token
from gitopsguard.errors import ClusterError

CA = "-----BEGIN CERTIFICATE-----\n"  # the loader only asks for a non-empty file; nothing here connects


def account(tmp_path: Path) -> Path:
    folder = tmp_path / "serviceaccount"
    folder.mkdir(exist_ok=True)
    (folder / "token").write_text("first-token")
    (folder / "ca.crt").write_text(CA)
    return folder


def pod_environment(tmp_path: Path, **more: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home), "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
            DIR_VARIABLE: str(account(tmp_path))} | more  # fmt: skip


def kubeconfig(path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "kubeconfig-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }))  # fmt: skip
    return path


def test_in_a_pod_without_a_kubeconfig_the_service_account_token_is_sent(tmp_path: Path) -> None:
    api = connect(environ=pod_environment(tmp_path))
    assert api.configuration.host == "https://10.96.0.1:443"
    assert api.configuration.get_api_key_with_prefix("authorization") == "Bearer first-token"
    assert api.configuration.auth_settings()["BearerToken"]["value"] == "Bearer first-token"


def test_a_rewritten_token_file_is_sent_on_the_next_request_not_the_first_token(tmp_path: Path) -> None:
    environment = pod_environment(tmp_path)
    api = connect(environ=environment)
    assert api.configuration.get_api_key_with_prefix("authorization") == "Bearer first-token"
    # as the kubelet does it: a new file swapped in by rename, not the old one edited
    folder = Path(environment[DIR_VARIABLE])
    (folder / "token.new").write_text("second-token")
    os.replace(folder / "token.new", folder / "token")
    assert api.configuration.get_api_key_with_prefix("authorization") == "Bearer second-token"
    assert api.configuration.auth_settings()["BearerToken"]["value"] == "Bearer second-token"


def test_a_token_file_emptied_or_removed_mid_rotation_keeps_the_last_good_token(tmp_path: Path) -> None:
    tokens = TokenFile(account(tmp_path) / "token")
    assert tokens.header() == "Bearer first-token"
    tokens.path.write_text("")
    assert tokens.header() == "Bearer first-token"
    tokens.path.unlink()
    assert tokens.header() == "Bearer first-token"
    tokens.path.write_text("third-token\n")
    assert tokens.header() == "Bearer third-token"


@given(st.binary(max_size=300))
@example(b"good\r\nImpersonate-User: system:admin")
@example(b"good\nX: y")
@example(b"tok\x00en")
@example("t\u00f6ken".encode())
@example(b" \t\n")
def test_no_token_file_content_can_add_a_header_or_break_the_request_line(content: bytes) -> None:
    token = read_token_from(content)
    if token is not None:
        assert token and all(0x21 <= ord(c) <= 0x7E for c in token)
        assert token == content.strip().decode()


def read_token_from(content: bytes) -> str | None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "token"
        path.write_bytes(content)
        return read_token(path)


def test_a_fifo_or_device_in_place_of_the_token_neither_hangs_nor_is_sent(tmp_path: Path) -> None:
    tokens = TokenFile(account(tmp_path) / "token")
    assert tokens.header() == "Bearer first-token"
    tokens.path.unlink()
    os.mkfifo(tokens.path)  # nobody writes: a blocking open would wait for ever
    assert tokens.header() == "Bearer first-token"
    tokens.path.unlink()
    tokens.path.symlink_to("/dev/zero")
    assert tokens.header() == "Bearer first-token"


def test_a_token_file_over_the_size_limit_is_no_token(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"a" * (MAX_TOKEN + 1))
    assert read_token(path) is None


def test_a_pod_whose_token_is_unusable_is_refused_at_start_naming_the_file(tmp_path: Path) -> None:
    environment = pod_environment(tmp_path)
    (Path(environment[DIR_VARIABLE]) / "token").write_text("bad\r\nX-Evil: 1")
    with pytest.raises(ClusterError, match=r"serviceaccount/token: no usable service-account token"):
        connect(environ=environment)


def test_a_pod_without_its_token_mounted_is_refused_saying_what_to_mount(tmp_path: Path) -> None:
    environment = pod_environment(tmp_path)
    (Path(environment[DIR_VARIABLE]) / "token").unlink()
    with pytest.raises(ClusterError, match=r"serviceaccount: cannot use the Pod's service account .*automount"):
        connect(environ=environment)


def test_neither_kubeconfig_nor_pod_is_refused_saying_what_to_give(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    expected = r"no kubeconfig, \$KUBECONFIG is not set, and this is not a Pod.*--kubeconfig"
    with pytest.raises(ClusterError, match=expected):
        connect(environ={"HOME": str(tmp_path / "home")})


def test_a_named_kubeconfig_that_is_missing_is_refused_never_replaced_by_the_pod_account(tmp_path: Path) -> None:
    # an operator's typo must not make the controller act with the Pod's (maybe wider) rights
    environment = pod_environment(tmp_path)
    with pytest.raises(ClusterError, match=r"missing.yaml: cannot load kubeconfig"):
        connect(tmp_path / "missing.yaml", environ=environment)
    with pytest.raises(ClusterError, match=r"missing.yaml: cannot load kubeconfig"):
        connect(environ=environment | {"KUBECONFIG": str(tmp_path / "missing.yaml")})


def test_a_kubeconfig_in_home_comes_before_the_pod_account(tmp_path: Path) -> None:
    environment = pod_environment(tmp_path)
    (Path(environment["HOME"]) / ".kube").mkdir()
    kubeconfig(Path(environment["HOME"]) / ".kube" / "config")
    api = connect(environ=environment)
    assert api.configuration.host == "https://127.0.0.1:6443"
    assert api.configuration.get_api_key_with_prefix("authorization") == "Bearer kubeconfig-token"


def test_a_kubeconfig_token_is_also_under_the_authorization_key_every_transport_asks_for(tmp_path: Path) -> None:
    api = connect(kubeconfig(tmp_path / "config"))
    assert api.configuration.get_api_key_with_prefix("authorization") == "Bearer kubeconfig-token"
