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

SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: stolen, namespace: shop}\nstringData: {k: v}\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine, namespace: shop}\n"
# committed symlinks named like inline YAML, a flow mapping or `key=value`, each pointing outside
LINKS = {"x: y": "outside", "f: y.yaml": "outside/secret.yaml", "a\nb": "outside", "k=v": "outside", "{w}": "outside"}
TARGETS = ["../../outside", "../../outside/secret.yaml", "./../../outside", "../apps/../../outside", *LINKS]
FIELDS = ["resources", "bases", "components"]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"]


def _quoted(draw: st.DrawFn, text: str) -> str:
    styles = [json.dumps(text), "'" + text.replace("'", "''") + "'"]
    if text.replace("/", "").replace(".", "").isalnum() or text.startswith(("../", "./")):
        styles.append(text)
    return draw(st.sampled_from(styles))


@st.composite
def kustomizations(draw: st.DrawFn) -> str:
    field = "".join(c.upper() if draw(st.booleans()) else c for c in draw(st.sampled_from(FIELDS)))
    target = _quoted(draw, draw(st.sampled_from(TARGETS)))
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
    }
    return draw(st.sampled_from(list(shapes.values())))


def _checkout(directory: Path, kustomization: bytes) -> Path:
    (directory / "outside").mkdir()
    (directory / "outside" / "secret.yaml").write_text(SECRET)
    (directory / "outside" / "kustomization.yaml").write_text("resources: [secret.yaml]\n")
    apps = directory / "checkout" / "apps"
    apps.mkdir(parents=True)
    (apps / "cm.yaml").write_text(CONFIGMAP)
    for name, target in LINKS.items():
        (apps / name).symlink_to(directory / target)
    (apps / "kustomization.yaml").write_bytes(kustomization)
    return directory / "checkout"


@given(text=kustomizations(), encoding=st.sampled_from(ENCODINGS))
@example(text="resources:\n- cm.yaml\n<<: {resources: [cm.yaml, ../../outside]}\n", encoding="utf-8")  # r1
@example(text="\ufeffresources:\n- cm.yaml\n- ../../outside\n", encoding="utf-16-le")  # r2
@example(text='resources:\n- cm.yaml\n- "x: y"\n', encoding="utf-8")  # r3
@example(text="Resources:\n- cm.yaml\n- ../../outside\n", encoding="utf-8")  # r4
@example(text="resources: [cm.yaml]\nBases: [../../outside]\n", encoding="utf-8")  # r4
def test_no_spelling_of_a_kustomization_renders_an_object_from_outside_the_checkout(text: str, encoding: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = _checkout(Path(directory), text.encode(encoding))
        try:
            rendered = render(root, "apps")
        except RenderError as error:
            assert str(error).startswith("apps/kustomization.yaml"), str(error)
            return
        assert "stolen" not in [m.key.name for m in rendered.manifests], (text, encoding)
