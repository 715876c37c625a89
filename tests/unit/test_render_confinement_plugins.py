"""Plugin configurations are checked wherever they are (red-team round 2, k1-k3): a configuration written
inline as a string under transformers/generators/validators, and every resource file of a kustomization reached
through one of those fields, had its `path:` fetched over http (loopback is never proxied, so the offline wall
missed it; with remote bases on it reached any address). URLs are allowed only as remote bases, never in a
plugin configuration."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from gitopsguard.errors import RenderError
from gitopsguard.render import render
from gitopsguard.render.settings import RenderSettings

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine, namespace: shop}\n"
FETCHED = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine, namespace: shop}\ndata: {fetched: LOOPBACK}\n"
PATCH = "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\npath: %s\n"


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(FETCHED)))
        self.end_headers()
        self.wfile.write(FETCHED)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    """A loopback HTTP server serving a patch; fails the test if anything fetched it."""
    _Handler.hits = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/p.yaml"
    server.shutdown()
    assert _Handler.hits == [], "kustomize fetched the URL"


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def refused(root: Path, pattern: str, remote: bool) -> None:
    with pytest.raises(RenderError, match=pattern) as raised:
        render(root, "apps", settings=RenderSettings(allow_remote_bases=remote))
    assert "LOOPBACK" not in str(raised.value)


def _inline(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


@pytest.mark.parametrize("remote", [False, True])
@pytest.mark.parametrize("field", ["transformers", "generators", "validators"])
def test_an_inline_plugin_configuration_fetching_a_url_is_refused(
    tmp_path: Path, url: str, field: str, remote: bool
) -> None:
    write(tmp_path, "apps/cm.yaml", CONFIGMAP)
    write(tmp_path, "apps/kustomization.yaml", f"resources: [cm.yaml]\n{field}:\n- |\n{_inline(PATCH % url)}")
    refused(tmp_path, rf"^apps/kustomization\.yaml:\d+: .*{url}", remote)


@pytest.mark.parametrize("remote", [False, True])
def test_an_inline_plugin_configuration_on_one_line_fetching_a_url_is_refused(
    tmp_path: Path, url: str, remote: bool
) -> None:
    write(tmp_path, "apps/cm.yaml", CONFIGMAP)
    entry = f"{{apiVersion: builtin, kind: PatchTransformer, metadata: {{name: p}}, path: '{url}'}}"
    write(tmp_path, "apps/kustomization.yaml", f'resources: [cm.yaml]\ntransformers:\n- "{entry}"\n')
    refused(tmp_path, rf"^apps/kustomization\.yaml:3: .*{url}", remote)


def test_an_inline_plugin_entry_that_cannot_be_read_strictly_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "apps/cm.yaml", CONFIGMAP)
    write(tmp_path, "apps/kustomization.yaml", "resources: [cm.yaml]\ntransformers:\n- |\n  a: &x 1\n  b: *x\n")
    refused(tmp_path, r"^apps/kustomization\.yaml:3 inline:1: an anchor", False)


@pytest.mark.parametrize("remote", [False, True])
@pytest.mark.parametrize("depth", [0, 1, 2])
def test_a_plugin_folder_whose_resources_fetch_a_url_is_refused(
    tmp_path: Path, url: str, depth: int, remote: bool
) -> None:
    write(tmp_path, "apps/cm.yaml", CONFIGMAP)
    write(tmp_path, "apps/kustomization.yaml", "resources: [cm.yaml]\ntransformers: [plug]\n")
    folder = "apps/plug"
    for _ in range(depth):  # the configuration further down, through folders named under resources
        write(tmp_path, f"{folder}/kustomization.yaml", "resources: [deeper]\n")
        folder += "/deeper"
    write(tmp_path, f"{folder}/kustomization.yaml", "resources: [patch.yaml]\n")
    write(tmp_path, f"{folder}/patch.yaml", PATCH % url)
    refused(tmp_path, rf"^{folder}/patch\.yaml:\d+: .*{url}", remote)


def test_a_plugin_folder_naming_a_url_as_a_resource_is_refused_with_remote_bases_on(tmp_path: Path) -> None:
    write(tmp_path, "apps/cm.yaml", CONFIGMAP)
    write(tmp_path, "apps/kustomization.yaml", "resources: [cm.yaml]\ntransformers: [plug]\n")
    write(tmp_path, "apps/plug/kustomization.yaml", "resources: ['https://192.0.2.2/p.yaml']\n")
    refused(tmp_path, r"^apps/plug/kustomization\.yaml:1: .*192\.0\.2\.2", True)


def test_a_legitimate_inline_and_folder_plugin_configuration_still_renders(tmp_path: Path) -> None:
    write(tmp_path, "apps/cm.yaml", CONFIGMAP)
    label = "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: l}\nlabels: {team: a}\nfieldSpecs:\n"
    label += "- {path: metadata/labels, create: true}\n"
    write(tmp_path, "apps/plug/kustomization.yaml", "resources: [label.yaml]\n")
    write(tmp_path, "apps/plug/label.yaml", label.replace("team: a", "tier: b").replace("name: l", "name: m"))
    write(tmp_path, "apps/kustomization.yaml", f"resources: [cm.yaml]\ntransformers:\n- plug\n- |\n{_inline(label)}")
    (manifest,) = render(tmp_path, "apps").manifests
    assert manifest.body["metadata"]["labels"] == {"team": "a", "tier": "b"}


def test_a_deeply_nested_inline_plugin_entry_is_refused_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, "apps/cm.yaml", CONFIGMAP)
    nested = "[" * 50_000 + "]" * 50_000
    write(tmp_path, "apps/kustomization.yaml", f"resources: [cm.yaml]\ntransformers:\n- '{nested}'\n")
    refused(tmp_path, r"^apps/kustomization\.yaml:3 inline:1: ", False)


def test_a_plugin_entry_naming_nothing_in_the_checkout_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "apps/cm.yaml", CONFIGMAP)
    write(tmp_path, "apps/kustomization.yaml", "resources: [cm.yaml]\ntransformers: [missing.yaml]\n")
    refused(tmp_path, r"^apps/kustomization\.yaml:2: 'missing\.yaml' names no file or folder in the repository", False)


@pytest.mark.parametrize("remote", [False, True])
@pytest.mark.parametrize("field", ["openapi", "transformers", "crds"])
def test_a_url_inside_multi_line_text_outside_remote_bases_is_refused(tmp_path: Path, field: str, remote: bool) -> None:
    write(tmp_path, "apps/cm.yaml", CONFIGMAP)
    text = '"notes\\n  https://192.0.2.2/latest/meta-data"'
    value = f"{{path: {text}}}" if field == "openapi" else f"[{text}]"
    write(tmp_path, "apps/kustomization.yaml", f"resources: [cm.yaml]\n{field}: {value}\n")
    refused(tmp_path, r"^apps/kustomization\.yaml:2: .*holds a URL", remote)
