"""With remote bases allowed, a render still reads only the commit and the remote bases (red-team round 2):
`../..//outside` was taken for a remote base (it holds `//`) and never checked as a path, while kustomize loaded
it as a local folder (k6); and a remote base's own kustomization could name `file:///` a repository on the
controller, which kustomize's git cloned (k5)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gitopsguard.errors import RenderError
from gitopsguard.render import render
from gitopsguard.render.kustomize import kustomize_environment
from gitopsguard.render.settings import RenderSettings

SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: stolen, namespace: shop}\nstringData: {k: v}\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine, namespace: shop}\n"
REMOTE = RenderSettings(allow_remote_bases=True)


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    write(tmp_path, "outside/secret.yaml", SECRET)
    write(tmp_path, "outside/kustomization.yaml", "resources: [secret.yaml]\n")
    write(tmp_path, "checkout/apps/cm.yaml", CONFIGMAP)
    return tmp_path / "checkout"


@pytest.mark.parametrize(
    "entry", ["../..//outside", "../../outside//", ".//../../outside", "..//..//outside", "../../outside?ref=x"]
)
def test_a_local_path_outside_spelled_with_a_double_slash_or_ref_is_refused_with_remote_bases_on(
    checkout: Path, entry: str
) -> None:
    write(checkout, "apps/kustomization.yaml", f"resources:\n- cm.yaml\n- '{entry}'\n")
    with pytest.raises(RenderError, match=r"^apps/kustomization\.yaml:3: .*leaves the checkout") as raised:
        render(checkout, "apps", settings=REMOTE)
    assert "stolen" not in str(raised.value)


def test_a_local_path_inside_with_a_double_slash_still_renders_with_remote_bases_on(checkout: Path) -> None:
    write(checkout, "apps/base/cm.yaml", CONFIGMAP)
    write(checkout, "apps/base/kustomization.yaml", "resources: [cm.yaml]\n")
    write(checkout, "apps/kustomization.yaml", "resources: ['.//base']\n")
    (manifest,) = render(checkout, "apps", settings=REMOTE).manifests
    assert manifest.key.name == "mine"


def _clone(source: str, into: Path, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "clone", "-q", source, str(into)], env=environment, capture_output=True, text=True,
                          check=False, timeout=60)  # fmt: skip


@pytest.mark.parametrize("remote", [False, True])
def test_kustomizes_git_cannot_clone_a_local_repository_whatever_the_remote_setting(
    tmp_path: Path, remote: bool
) -> None:
    private = tmp_path / "private"
    subprocess.run(["git", "init", "-q", str(private)], check=True)
    write(private, "secret.yaml", SECRET)
    committed = ["git", "-C", str(private), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "s"]
    subprocess.run(["git", "-C", str(private), "add", "."], check=True)
    subprocess.run(committed, check=True)
    environment = kustomize_environment(RenderSettings(allow_remote_bases=remote), tmp_path / "home")
    for source in (f"file://{private}", str(private)):
        cloned = _clone(source, tmp_path / "clone", environment)
        assert cloned.returncode != 0, f"{source} was cloned"
        assert not (tmp_path / "clone" / "secret.yaml").exists()


def test_kustomize_gets_no_credentials_nor_git_configuration_with_remote_bases_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    monkeypatch.setenv("GIT_SSH_COMMAND", "sh -c 'touch /tmp/pwned'")
    environment = kustomize_environment(REMOTE, tmp_path / "home")
    assert "hunter2" not in "".join(environment.values())
    assert "GIT_SSH_COMMAND" not in environment
    assert environment["GIT_ALLOW_PROTOCOL"] == "https:ssh"
    assert environment["GIT_CONFIG_NOSYSTEM"] == "1"
    assert environment["GIT_CONFIG_GLOBAL"] == os.devnull
    assert environment["GIT_TERMINAL_PROMPT"] == "0"
    assert environment["HOME"] == str(tmp_path / "home")
    assert set(environment) <= {
        "PATH", "TMPDIR", "HOME", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
        "http_proxy", "https_proxy", "no_proxy", "GIT_ALLOW_PROTOCOL", "GIT_TERMINAL_PROMPT", "GIT_CONFIG_NOSYSTEM",
        "GIT_CONFIG_GLOBAL",
    }  # fmt: skip
