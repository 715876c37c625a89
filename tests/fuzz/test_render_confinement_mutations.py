"""Fuzz: however a kustomization that reaches outside the checkout is spelled (field names in any case, merge
keys, anchors, nesting, JSON, quoting, encodings, names that look like inline YAML), no render ever holds the
object from outside: render refuses it naming the kustomization, or renders only the checkout's objects.
The red-team's four bypasses (r1-r4) are pinned as examples."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.errors import RenderError
from gitopsguard.render import render

SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: stolen, namespace: shop}\nstringData: {k: hunter2}\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine, namespace: shop}\n"
# committed symlinks named like inline YAML, a flow mapping or `key=value`, each pointing outside
LINKS = {"x: y": "outside", "f: y.yaml": "outside/secret.yaml", "a\nb": "outside", "k=v": "outside", "{w}": "outside"}
TARGETS = ["../../outside", "../../outside/secret.yaml", "./../../outside", "../apps/../../outside", *LINKS]
# relative paths through `deep`, a symlink to checkout/a/b/c/d: `..` after it differs read lexically (kustomize)
# or with the symlink followed first
PATHS = st.lists(st.sampled_from(["..", ".", "deep", "a", "b", "outside", "apps"]), min_size=1, max_size=8)
PATHS_JOINED = PATHS.map("/".join)
FIELDS = ["resources", "bases", "components"]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"]


def _cased(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(name, upper, strict=True))
    )


def _quoted(draw: st.DrawFn, text: str) -> str:
    styles = [json.dumps(text), "'" + text.replace("'", "''") + "'"]
    if text.replace("/", "").replace(".", "").isalnum() or text.startswith(("../", "./")):
        styles.append(text)
    return draw(st.sampled_from(styles))


@st.composite
def generator_files(draw: st.DrawFn) -> str:
    """A plugin configuration file (named by `generators: [gen.yaml]`) that reads a file."""
    files = draw(_cased("files"))
    return (f"apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {{name: g, namespace: shop}}\n"
            f"{files}: [k={draw(st.sampled_from(TARGETS))}]\n")  # fmt: skip


@st.composite
def kustomizations(draw: st.DrawFn) -> str:
    field = draw(_cased(draw(st.sampled_from(FIELDS))))
    target = _quoted(draw, draw(st.sampled_from(TARGETS) | PATHS_JOINED))
    shapes = {
        "block": f"resources: [cm.yaml]\n{field}:\n- {target}\n",
        "merge key": f"resources: [cm.yaml]\n<<: {{{field}: [cm.yaml, {target}]}}\n",
        "merge of an anchor": f"x: &a {{{field}: [{target}]}}\n<<: *a\n",
        "alias": f"x: &a [cm.yaml, {target}]\n{field}: *a\n",
        "nested": f"resources: [cm.yaml]\ntransformers:\n- apiVersion: builtin\n  kind: PatchTransformer\n"
        f"  metadata: {{name: p}}\n  {field}: [{target}]\n",
        "two documents": f"resources: [cm.yaml]\n---\n{field}: [{target}]\n",
        "tagged": f"resources: [cm.yaml]\n{field}: !!seq [{target}]\n",
        "only field": f"{field}:\n- cm.yaml\n- {target}\n",
        "generator file": f"resources: [cm.yaml]\n{draw(_cased('generators'))}: [gen.yaml]\n",
        "inline generator": f"resources: [cm.yaml]\ngenerators:\n- apiVersion: builtin\n  kind: ConfigMapGenerator\n"
        f"  metadata: {{name: g, namespace: shop}}\n  {draw(_cased('files'))}: [k={draw(st.sampled_from(TARGETS))}]\n",
    }
    return draw(st.sampled_from(list(shapes.values())))


def _checkout(directory: Path, kustomization: bytes, generator: str) -> Path:
    (directory / "outside").mkdir()
    (directory / "outside" / "secret.yaml").write_text(SECRET)
    (directory / "outside" / "kustomization.yaml").write_text("resources: [secret.yaml]\n")
    apps = directory / "checkout" / "apps"
    apps.mkdir(parents=True)
    (apps / "cm.yaml").write_text(CONFIGMAP)
    (directory / "checkout" / "a" / "b" / "c" / "d").mkdir(parents=True)
    (apps / "deep").symlink_to(directory / "checkout" / "a" / "b" / "c" / "d")
    for name, target in LINKS.items():
        (apps / name).symlink_to(directory / target)
    (apps / "kustomization.yaml").write_bytes(kustomization)
    (apps / "gen.yaml").write_text(generator)
    return directory / "checkout"


@given(text=kustomizations(), encoding=st.sampled_from(ENCODINGS), generator=generator_files())
@example(
    text="resources:\n- cm.yaml\n<<: {resources: [cm.yaml, ../../outside]}\n", encoding="utf-8", generator=""
)  # r1
@example(text="\ufeffresources:\n- cm.yaml\n- ../../outside\n", encoding="utf-16-le", generator="")  # r2
@example(text='resources:\n- cm.yaml\n- "x: y"\n', encoding="utf-8", generator="")  # r3
@example(text="Resources:\n- cm.yaml\n- ../../outside\n", encoding="utf-8", generator="")  # r4
@example(text="resources: [cm.yaml]\nBases: [../../outside]\n", encoding="utf-8", generator="")  # r4
@example(text="resources: [cm.yaml, deep/../../../outside]\n", encoding="utf-8", generator="")  # lexical `..`
def test_no_spelling_of_a_kustomization_renders_an_object_from_outside_the_checkout(
    text: str, encoding: str, generator: str
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = _checkout(Path(directory), text.encode(encoding), generator)
        try:
            rendered = render(root, "apps")
        except RenderError as error:
            assert str(error).startswith(("apps/kustomization.yaml:", "apps/gen.yaml:")), str(error)
            return
        assert "hunter2" not in json.dumps([m.body for m in rendered.manifests]), (text, encoding, generator)
