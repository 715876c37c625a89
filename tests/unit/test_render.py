"""render: plain YAML and kustomize into objects; every bad input is named by file (and line)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from gitopsguard.errors import RenderError
from gitopsguard.model import ObjectKey
from gitopsguard.render import render

TEMPLATE = Path(__file__).parents[2] / "repo-template"


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: shop
"""


def test_plain_directory_is_read_recursively_with_file_and_line_origins(tmp_path: Path) -> None:
    write(tmp_path, "apps/a.yaml", CONFIGMAP.format(name="one") + "---\n" + CONFIGMAP.format(name="two"))
    write(tmp_path, "apps/sub/b.yml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n")
    rendered = render(tmp_path, "apps")
    assert [str(m.key) for m in rendered.manifests] == [
        "ConfigMap/shop/one",
        "ConfigMap/shop/two",
        "Deployment/shop/web",
    ]
    assert [m.origin for m in rendered.manifests] == ["apps/a.yaml:1", "apps/a.yaml:7", "apps/sub/b.yml:1"]
    assert rendered.manifests[2].key == ObjectKey("apps", "Deployment", "shop", "web")


def test_hidden_folders_other_files_and_empty_documents_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "apps/.git/x.yaml", "not: [valid")
    write(tmp_path, "apps/notes.txt", "not yaml at all: [")
    write(tmp_path, "apps/a.yaml", "---\n# only a comment\n---\n" + CONFIGMAP.format(name="one"))
    assert [str(m.key) for m in render(tmp_path, "apps").manifests] == ["ConfigMap/shop/one"]


def test_kind_list_is_expanded_into_its_items(tmp_path: Path) -> None:
    write(
        tmp_path,
        "apps/list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n",
    )
    assert [str(m.key) for m in render(tmp_path, "apps").manifests] == ["ConfigMap/a"]


def test_broken_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "apps/ok.yaml", CONFIGMAP.format(name="fine"))
    write(tmp_path, "apps/shop/deploy.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n")
    with pytest.raises(RenderError, match=r"^apps/shop/deploy\.yaml:\d+: not valid YAML"):
        render(tmp_path, "apps")


def test_object_without_a_name_names_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "apps/a.yaml", CONFIGMAP.format(name="one") + "---\napiVersion: v1\nkind: Secret\nmetadata: {}\n")
    with pytest.raises(RenderError, match=r"^apps/a\.yaml:7: Secret has no `metadata.name`"):
        render(tmp_path, "apps")


def test_document_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "apps/a.yaml", "- just\n- a list\n")
    with pytest.raises(RenderError, match=r"^apps/a\.yaml:1: a Kubernetes object must be a mapping"):
        render(tmp_path, "apps")


def test_two_files_defining_the_same_object_are_both_named(tmp_path: Path) -> None:
    write(tmp_path, "apps/a.yaml", CONFIGMAP.format(name="same"))
    write(tmp_path, "apps/b.yaml", CONFIGMAP.format(name="same"))
    with pytest.raises(RenderError, match=r"^apps/b\.yaml:1: ConfigMap/shop/same is already defined at apps/a\.yaml:1"):
        render(tmp_path, "apps")


def test_kustomization_is_built_with_the_real_kustomize() -> None:
    rendered = render(TEMPLATE, "clusters/dev")
    keys = {str(m.key) for m in rendered.manifests}
    assert {"Namespace/shop", "Deployment/shop/shop", "Service/payments/payments"} <= keys
    assert all(m.origin.startswith("clusters/dev/kustomization.yaml") for m in rendered.manifests)


def test_kustomization_with_a_missing_resource_names_the_kustomization_and_the_resource(tmp_path: Path) -> None:
    write(tmp_path, "clusters/dev/kustomization.yaml", "resources:\n  - present.yaml\n  - missing.yaml\n")
    write(tmp_path, "clusters/dev/present.yaml", CONFIGMAP.format(name="one"))
    with pytest.raises(RenderError) as error:
        render(tmp_path, "clusters/dev")
    message = str(error.value)
    assert message.startswith("clusters/dev/kustomization.yaml: kustomize build failed:")
    assert "missing.yaml" in message
    assert str(tmp_path) not in message, "paths inside the repository are shown relative to it"


def test_missing_path_and_a_path_leaving_the_repository_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"^clusters/nope: no such directory"):
        render(tmp_path, "clusters/nope")
    with pytest.raises(RenderError, match=r"^\.\./\.\.: the path leaves the repository"):
        render(tmp_path, "../..")


def test_plain_yaml_values_match_the_safe_loader_including_anchors_merges_and_tags_except_timestamps() -> None:
    import yaml

    from gitopsguard.render.plain import read_text

    text = (
        "apiVersion: v1\nkind: X\nmetadata: {name: n}\n"
        "a: &x {k: 1, on: yes, t: 2026-01-01, f: 1.5, n: ~, o: 0o17, s: !!str 5}\n"
        "b: *x\nc:\n  <<: *x\n  k: 2\nd: [1, '2', true, null, 012, 2026-01-01 10:00:00]\n"
    )
    expected = yaml.safe_load(text)
    expected["a"]["t"] = expected["c"]["t"] = "2026-01-01"  # b is a itself
    expected["d"][-1] = "2026-01-01 10:00:00"
    assert read_text(text, "f.yaml")[0].body == expected


def test_a_date_is_kept_as_written_as_kubectl_sends_it_on_the_fast_path_and_the_tagged_path() -> None:
    from gitopsguard.render.plain import read_text

    fast = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations: {released: 2026-01-01}\n"
    tagged = fast + "data: {n: !!str 1}\n"  # an explicit tag: the document takes the safe loader's path
    for text in (fast, tagged):
        body = read_text(text, "f.yaml")[0].body
        assert body["metadata"]["annotations"] == {"released": "2026-01-01"}
        assert json.loads(json.dumps(body)) == body


def test_binary_and_set_values_are_refused_with_file_and_line() -> None:
    from gitopsguard.render.plain import read_text

    for tag in ("!!binary aGk=", "!!set {a}"):
        text = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: {tag}\n"
        with pytest.raises(RenderError, match=r"^f\.yaml:6: not valid YAML: .*has no JSON form"):
            read_text(text, "f.yaml")
