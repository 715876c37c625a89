"""Fuzz: a URL reaches kustomize only as a remote base the operator allowed (red-team round 2, k1-k3), and
`//` or `?ref=` never makes a local path remote (k6). However a plugin configuration that fetches a URL is
placed (inline as a block, flow or JSON string, in a file, in a folder reached through a plugin field at any
depth) and spelled, render refuses it before kustomize runs, remote bases on or off; however a path outside is
spelled with `//` and `?ref=`, no render holds the object from outside."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.errors import RenderError
from gitopsguard.render import render
from gitopsguard.render.settings import RenderSettings

SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: stolen, namespace: shop}\nstringData: {k: hunter2}\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine, namespace: shop}\n"
HOSTS = ["127.0.0.1:9", "localhost:9", "[::1]:9", "192.0.2.2", "example.com", "0x7f.1:9"]
PLUGINS = ["transformers", "generators", "validators"]


def _cased(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(name, upper, strict=True))
    )


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(_cased(draw(st.sampled_from(["http", "https"]))))
    return f"{scheme}://{draw(st.sampled_from(HOSTS))}/{draw(st.sampled_from(['p.yaml', 'a?ref=x', 'x//y']))}"


@st.composite
def plugin_configurations(draw: st.DrawFn) -> dict[str, object]:
    kind = draw(st.sampled_from(["PatchTransformer", "PatchStrategicMergeTransformer", "ConfigMapGenerator"]))
    key = draw(st.sampled_from(["path", "paths", "files", "envs", "env"]))
    url = draw(urls())
    value: object = [url] if key in ("paths", "files", "envs") else url
    return {"apiVersion": "builtin", "kind": kind, "metadata": {"name": "p", "namespace": "shop"}, key: value}


def _block(configuration: dict[str, object]) -> str:
    lines = json.dumps(configuration, indent=1).splitlines()
    return "- |\n" + "".join(f"  {line}\n" for line in lines)


def _placed(shape: str, field: str, configuration: dict[str, object], files: dict[str, str]) -> str:
    """The kustomization placing the configuration as ``shape``; files it needs are added to ``files``."""
    one_line = json.dumps(configuration)
    if shape == "block":
        return f"resources: [cm.yaml]\n{field}:\n{_block(configuration)}"
    if shape in ("flow", "json"):
        entry = json.dumps(one_line) if shape == "json" else "'" + one_line.replace("'", "''") + "'"
        return f"resources: [cm.yaml]\n{field}:\n- {entry}\n"
    if shape == "file":
        files["apps/plugin.yaml"] = one_line + "\n"
        return f"resources: [cm.yaml]\n{field}: [plugin.yaml]\n"
    depth = int(shape.removeprefix("folder"))  # folder0, folder1, ...: the configuration that far down
    folder = "apps/plug"
    for _ in range(depth):
        files[f"{folder}/kustomization.yaml"] = "resources: [deeper]\n"
        folder += "/deeper"
    files[f"{folder}/kustomization.yaml"] = "resources: [plugin.yaml]\n"
    files[f"{folder}/plugin.yaml"] = one_line + "\n"
    return f"resources: [cm.yaml]\n{field}: [plug]\n"


def _checkout(directory: Path, files: dict[str, str]) -> Path:
    for relative, text in {"outside/secret.yaml": SECRET, "outside/kustomization.yaml": "resources: [secret.yaml]\n",
                           "checkout/apps/cm.yaml": CONFIGMAP, **files}.items():  # fmt: skip
        path = directory / ("checkout/" + relative if relative.startswith("apps/") else relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory / "checkout"


@given(
    field=st.sampled_from(PLUGINS).flatmap(_cased),
    configuration=plugin_configurations(),
    shape=st.sampled_from(["block", "flow", "json", "file", "folder0", "folder1", "folder2"]),
    remote=st.booleans(),
)
@example(
    field="transformers",
    configuration={"apiVersion": "builtin", "kind": "PatchTransformer", "metadata": {"name": "p"},
                   "path": "http://127.0.0.1:9/p.yaml"},
    shape="block", remote=False,
)  # k1  # fmt: skip
@example(
    field="transformers",
    configuration={"apiVersion": "builtin", "kind": "PatchTransformer", "metadata": {"name": "p"},
                   "path": "http://127.0.0.1:9/p.yaml"},
    shape="folder0", remote=False,
)  # k2  # fmt: skip
@example(
    field="transformers",
    configuration={"apiVersion": "builtin", "kind": "PatchTransformer", "metadata": {"name": "p"},
                   "path": "http://192.0.2.2/latest/meta-data"},
    shape="block", remote=True,
)  # k3  # fmt: skip
def test_no_placement_of_a_url_in_a_plugin_configuration_reaches_kustomize(
    field: str, configuration: dict[str, object], shape: str, remote: bool
) -> None:
    files: dict[str, str] = {}
    files["apps/kustomization.yaml"] = _placed(shape, field, configuration, files)
    with tempfile.TemporaryDirectory() as directory:
        root = _checkout(Path(directory), files)
        try:
            render(root, "apps", settings=RenderSettings(allow_remote_bases=remote))
        except RenderError as error:  # refused by the check, naming the file, before kustomize ran
            assert str(error).startswith("apps/") and "kustomize build failed" not in str(error), str(error)
            return
        raise AssertionError(f"rendered: {files}")


SEGMENTS = st.lists(st.sampled_from(["..", ".", "outside", "apps", "checkout"]), min_size=1, max_size=6)


@st.composite
def slashed_paths(draw: st.DrawFn) -> str:
    segments = draw(SEGMENTS)
    path = "".join(s + draw(st.sampled_from(["/", "//"])) for s in segments[:-1]) + segments[-1]
    return path + draw(st.sampled_from(["", "/", "//", "?ref=x", "//?ref=main", "?ref=x//y"]))


@given(path=slashed_paths(), field=st.sampled_from(["resources", "bases", "components"]), remote=st.booleans())
@example(path="../..//outside", field="resources", remote=True)  # k6
@example(path="../../outside//", field="resources", remote=True)  # k6
@example(path=".//../../outside", field="resources", remote=True)  # k6
@example(path="..//..//outside", field="resources", remote=True)  # k6
def test_no_double_slash_or_ref_spelling_renders_an_object_from_outside_the_checkout(
    path: str, field: str, remote: bool
) -> None:
    files = {"apps/kustomization.yaml": f"{field}: [cm.yaml, {json.dumps(path)}]\n"}
    with tempfile.TemporaryDirectory() as directory:
        root = _checkout(Path(directory), files)
        try:
            rendered = render(root, "apps", settings=RenderSettings(allow_remote_bases=remote))
        except RenderError as error:
            assert "hunter2" not in str(error)
            return
        assert "hunter2" not in json.dumps([m.body for m in rendered.manifests]), (path, field, remote)
