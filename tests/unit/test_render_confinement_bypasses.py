"""A kustomization is read exactly as kustomize reads it, or refused: the red-team's four ways past the
confinement check (a YAML merge key, a file PyYAML could not parse, a path that looked like inline YAML, a
field name in another case) each rendered a Secret from outside the checkout. Every string in a
kustomization, under any key, is now checked as a path or URL; text that could be read two ways is refused
with the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gitopsguard.errors import RenderError
from gitopsguard.render import confine, render

SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: stolen, namespace: shop}\nstringData: {k: v}\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: shop}\n"
KUSTOMIZATION = "apps/kustomization.yaml"


def write(root: Path, relative: str, data: str | bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout with one ConfigMap, and beside it (outside) a kustomization of a Secret in no commit."""
    write(tmp_path, "outside/secret.yaml", SECRET)
    write(tmp_path, "outside/kustomization.yaml", "resources: [secret.yaml]\n")
    root = tmp_path / "checkout"
    write(root, "apps/cm.yaml", CONFIGMAP % "mine")
    return root


def refused(checkout: Path, pattern: str) -> None:
    with pytest.raises(RenderError, match=pattern) as raised:
        render(checkout, "apps")
    assert "stolen" not in str(raised.value)


def test_a_base_outside_the_checkout_through_a_merge_key_is_refused(checkout: Path) -> None:
    write(checkout, KUSTOMIZATION, "resources:\n- cm.yaml\n<<: {resources: [cm.yaml, ../../outside]}\n")
    refused(checkout, r"^apps/kustomization\.yaml:3: .*merge key")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_a_kustomization_saved_as_utf16_or_utf32_with_a_bom_is_refused(checkout: Path, encoding: str) -> None:
    write(checkout, KUSTOMIZATION, "\ufeffresources:\n- cm.yaml\n- ../../outside\n".encode(encoding))
    refused(checkout, r"^apps/kustomization\.yaml:1: .*UTF-8")


def test_a_resource_that_looks_like_inline_yaml_naming_a_symlink_out_is_refused(checkout: Path) -> None:
    (checkout / "apps" / "x: y").symlink_to(checkout.parent / "outside")
    write(checkout, KUSTOMIZATION, 'resources:\n- cm.yaml\n- "x: y"\n')
    refused(checkout, r"^apps/kustomization\.yaml:3: 'x: y' leaves the checkout")


@pytest.mark.parametrize("text", ["Resources:\n- cm.yaml\n- ../../outside\n",
                                  "resources: [cm.yaml]\nBases: [../../outside]\n",
                                  "resources: [cm.yaml]\nCOMPONENTS:\n- ../../outside\n"])  # fmt: skip
def test_a_field_name_in_another_case_naming_a_base_outside_is_refused(checkout: Path, text: str) -> None:
    write(checkout, KUSTOMIZATION, text)
    refused(checkout, r"^apps/kustomization\.yaml:\d: '\.\./\.\./outside' leaves the checkout")


# The general rules behind the four: (1) every string, under any key at any depth, is checked as a path or
# URL unless its key holds data; (2) a file that two YAML readers could read differently is refused.

NESTINGS = {
    "unknown top-level key": "sneaky:\n- {}\n",
    "nested unknown keys": "resources: [cm.yaml]\nsneaky:\n  deeper: {{list: [x, {}]}}\n",
    "generators folder": "resources: [cm.yaml]\ngenerators:\n- {}\n",
    "inline transformer, unknown key": "resources: [cm.yaml]\ntransformers:\n- apiVersion: builtin\n"
    "  kind: PatchTransformer\n  metadata: {{name: p}}\n  otherPath: {}\n",
    "lower-case field in upper case": "RESOURCES:\n- cm.yaml\n- {}\n",
    "key=path": "resources: [cm.yaml]\nconfigMapGenerator:\n- name: c\n  files: [k={}]\n",
    "patch path in mixed case": "resources: [cm.yaml]\npatches:\n- PATH: {}\n",
}


@pytest.mark.parametrize("text", NESTINGS.values(), ids=list(NESTINGS))
@pytest.mark.parametrize("escape", ["../../outside", "../../outside/secret.yaml", "/etc/hostname", "file:///etc"])
def test_a_path_out_of_the_checkout_under_any_key_at_any_depth_is_refused(
    checkout: Path, text: str, escape: str
) -> None:
    write(checkout, KUSTOMIZATION, text.format(escape))
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "{}" in row)
    refused(checkout, rf"^apps/kustomization\.yaml:{line}: ")


def test_a_symlink_out_of_the_checkout_named_by_any_string_is_refused(checkout: Path) -> None:
    for name in ("x: y", "a\nb", "k=v", "- z", "{w}"):
        (checkout / "apps" / name).symlink_to(checkout.parent / "outside")
        write(checkout, KUSTOMIZATION, f"resources:\n- cm.yaml\n- {name!r}\n".replace("'", '"'))
        refused(checkout, r"^apps/kustomization\.yaml:3: .*leaves the checkout")


AMBIGUOUS = {
    "utf-8 bom": ("\ufeffresources: [cm.yaml]\n", 1, "byte-order mark"),
    "latin-1 byte": (b"resources: [cm.yaml]\n# \xff\n", 2, "not UTF-8"),
    "NEL": ("resources: [cm.yaml]\n# \x85- ../../outside\n", 2, "character"),
    "line separator": ("resources: [cm.yaml]\n# \u2028- ../../outside\n", 2, "character"),
    "anchor and alias": ("a: &x [cm.yaml]\nresources: *x\n", 1, "anchor"),
    "alias of a scalar": ("resources: [cm.yaml]\nnamePrefix: &p x-\nnameSuffix: *p\n", 2, "anchor"),
    "explicit tag": ("resources: !!seq [cm.yaml]\n", 1, "tag"),
    "non-specific tag": ("resources: [! cm.yaml]\n", 1, "tag"),
    "directive": ("%YAML 1.1\n---\nresources: [cm.yaml]\n", 1, "directive"),
    "second document": ("resources: [cm.yaml]\n---\nresources: [../../outside]\n", 2, "second YAML document"),
    "repeated key": ("resources: [cm.yaml]\nresources: [cm.yaml]\n", 2, "repeats"),
    "keys differing in case": ("resources: [cm.yaml]\nResources: [cm.yaml]\n", 2, "repeats"),
    "nested keys differing in case": ("patches:\n- {path: p.yaml, Path: q.yaml}\n", 2, "repeats"),
    "long s folded by Go": ("re\u017fources: [cm.yaml]\n", 1, "not plain ASCII"),
    "kelvin sign": ("\u212aind: Kustomization\n", 1, "not plain ASCII"),
    "quoted merge key": ('resources: [cm.yaml]\n"<<": {a: b}\n', 2, "merge key"),
    "list at top": ("- cm.yaml\n", 1, "must be a mapping"),
    "not YAML": ("resources: [cm.yaml\n", 2, "not valid YAML"),
}


@pytest.mark.parametrize(("text", "line", "reason"), AMBIGUOUS.values(), ids=list(AMBIGUOUS))
def test_a_kustomization_two_yaml_readers_could_read_differently_is_refused_with_file_and_line(
    checkout: Path, text: str | bytes, line: int, reason: str
) -> None:
    write(checkout, KUSTOMIZATION, text)
    refused(checkout, rf"^apps/kustomization\.yaml:{line}: .*{reason}")


def test_a_nested_kustomization_read_differently_is_refused_naming_its_own_file(checkout: Path) -> None:
    write(checkout, "base/kustomization.yaml", "resources: [cm.yaml]\n<<: {resources: [../../outside]}\n")
    write(checkout, "base/cm.yaml", CONFIGMAP % "base")
    write(checkout, KUSTOMIZATION, "resources: [cm.yaml, ../base]\n")
    refused(checkout, r"^base/kustomization\.yaml:2: .*merge key")


def test_a_kustomization_using_the_data_fields_with_urls_and_slashes_still_renders(checkout: Path) -> None:
    write(checkout, "apps/props.env", "a=b\n")
    write(checkout, "apps/patch.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine, namespace: shop}\n"
                                       "data: {patched: 'yes'}\n")  # fmt: skip
    write(
        checkout,
        KUSTOMIZATION,
        """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [cm.yaml]
namePrefix: p-
commonLabels: {app.kubernetes.io/name: shop}
commonAnnotations: {docs: "https://example.com/../../etc", path: /etc/hostname}
images: [{name: nginx, newName: registry.example.com/nginx, newTag: "1.2"}]
configMapGenerator:
- name: gen
  namespace: shop
  envs: [props.env]
  literals: [url=https://example.com/x, file=/etc/passwd]
  options: {labels: {a.b/c: d}, disableNameSuffixHash: true}
patches:
- path: patch.yaml
- target: {kind: ConfigMap, labelSelector: app.kubernetes.io/name=shop}
  patch: |-
    - op: add
      path: /metadata/annotations/inline
      value: https://example.com
""",
    )
    names = sorted(m.key.name for m in render(checkout, "apps").manifests)
    assert names == ["p-gen", "p-mine"]


@pytest.mark.parametrize("name", ["github.com/org/repo", "GitHub.com/org/repo", "git@example.com:org/repo"])
def test_a_committed_folder_named_like_a_remote_base_is_refused_as_remote(checkout: Path, name: str) -> None:
    """kustomize clones these from the network even when the checkout holds a folder of that name."""
    write(checkout, f"apps/{name}/kustomization.yaml", "resources: [cm.yaml]\n")
    write(checkout, f"apps/{name}/cm.yaml", CONFIGMAP % "local")
    write(checkout, KUSTOMIZATION, f"resources:\n- cm.yaml\n- {name}\n")
    refused(checkout, r"^apps/kustomization\.yaml:3: .*remote")


@pytest.mark.parametrize("url", ["https:/example.com/x.yaml", "http:example.com", "HTTPS:/x"])
def test_a_url_with_a_scheme_but_no_double_slash_is_refused_as_remote(checkout: Path, url: str) -> None:
    """kustomize's loader fetches any http(s) URL Go can parse, `//` or not."""
    write(checkout, KUSTOMIZATION, f"resources:\n- cm.yaml\npatches:\n- path: {url}\n")
    refused(checkout, r"^apps/kustomization\.yaml:4: .*remote")


def test_a_kustomization_with_more_strings_than_a_render_may_check_is_refused_quickly(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each string costs a path resolution (200,000 of them took 17 s): a render checks at most 10,000. Counted,
    not timed, so a loaded machine cannot fail it."""
    resolved = 0
    real = confine._resolved_both_ways

    def counted(*args: Any) -> Path:
        nonlocal resolved
        resolved += 1
        return real(*args)

    monkeypatch.setattr(confine, "_resolved_both_ways", counted)
    entries = ", ".join(f"a/b/c{i}.yaml" for i in range(190_000))
    write(checkout, KUSTOMIZATION, f"namePrefix: x-\nresources: [{entries}]\n")
    refused(checkout, r"^apps/kustomization\.yaml:2: more than 10000 strings")
    assert 0 < resolved <= confine.MAX_STRINGS


PLUGIN_CONFIGS = {
    "patch from a URL": "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\npath: https://example.invalid/p\n",
    "patch from file://": "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\npath: file:///etc/hostname\n",
    "generator reading /etc": "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: g}\n"
    "files: [/etc/hostname]\n",
    "second document": "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: l}\nlabels: {a: b}\n"
    "fieldSpecs: [{path: metadata/labels, create: true}]\n---\napiVersion: builtin\nkind: PatchTransformer\n"
    "metadata: {name: p}\npath: https://example.invalid/p\n",
}


@pytest.mark.parametrize("config", PLUGIN_CONFIGS.values(), ids=list(PLUGIN_CONFIGS))
@pytest.mark.parametrize("field", ["transformers", "generators", "Validators"])
def test_a_plugin_configuration_file_naming_a_url_or_a_path_outside_is_refused_naming_that_file(
    checkout: Path, config: str, field: str
) -> None:
    """kustomize loads these files as plugin configurations, and a configuration's `path:` may be an https URL
    that it fetches (its load restrictor covers only local files)."""
    write(checkout, "apps/plugins/config.yaml", config)
    write(checkout, KUSTOMIZATION, f"resources: [cm.yaml]\n{field}:\n- plugins/config.yaml\n")
    line = next(n for n, row in enumerate(config.splitlines(), 1) if "example" in row or "/etc" in row)
    refused(checkout, rf"^apps/plugins/config\.yaml:{line}: ")


def test_a_plugin_configuration_file_naming_files_of_the_checkout_still_renders(checkout: Path) -> None:
    write(checkout, "apps/patch.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine, namespace: shop}\n"
                                       "data: {patched: 'yes'}\n")  # fmt: skip
    write(checkout, "apps/plugins/config.yaml", "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\n"
                                                "path: patch.yaml\n")  # fmt: skip
    write(checkout, KUSTOMIZATION, "resources: [cm.yaml]\ntransformers: [plugins/config.yaml]\n")
    assert [m.body["data"] for m in render(checkout, "apps").manifests] == [{"patched": "yes"}]


def test_allowing_remote_bases_never_lets_a_url_in_a_plugin_configuration_through(checkout: Path) -> None:
    from gitopsguard.render.settings import RenderSettings

    url = "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1"
    write(checkout, "apps/config.yaml", f"apiVersion: builtin\nkind: PatchTransformer\nmetadata: {{name: p}}\n"
                                        f"resources: [{url}]\n")  # fmt: skip
    write(checkout, KUSTOMIZATION, "resources: [cm.yaml]\ntransformers: [config.yaml]\n")
    with pytest.raises(RenderError, match=r"^apps/config\.yaml:4: .*remote"):
        render(checkout, "apps", settings=RenderSettings(allow_remote_bases=True))


def test_dotdot_after_a_symlink_is_checked_as_kustomize_reads_it_lexically(checkout: Path) -> None:
    """Python follows `deep` before applying `..`; Go's filepath.Join removes `deep/..` first. Here the first
    reading stays inside the checkout and the second, kustomize's, reaches the folder beside it."""
    (checkout / "a" / "b" / "c" / "d").mkdir(parents=True)
    (checkout / "apps" / "deep").symlink_to(checkout / "a" / "b" / "c" / "d")
    write(checkout, KUSTOMIZATION, "resources:\n- cm.yaml\n- deep/../../../outside\n")
    refused(checkout, r"^apps/kustomization\.yaml:3: 'deep/\.\./\.\./\.\./outside' leaves the checkout")
