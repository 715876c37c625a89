"""Fuzz: whatever a commit holds, render and the gate answer with RenderError, PolicyError or
PolicyBlockedError naming the file, never with another exception (issue 21.9: a huge integer, labels that
were a string and folders too deep each escaped as an "internal error")."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gitopsguard.errors import PolicyBlockedError, PolicyError, RenderError
from gitopsguard.gate import gate
from gitopsguard.policy import DenyLevel, parse_policies
from gitopsguard.render import render

REPO_POLICIES = Path(__file__).parents[2] / "repo-template" / "policies"
FIELDS = [
    "apiVersion", "kind", "metadata", "name", "namespace", "labels", "annotations", "spec", "template",
    "containers", "initContainers", "image", "securityContext", "privileged", "capabilities", "add", "hostPath",
    "volumes", "rules", "verbs", "resources", "apiGroups", "subjects", "roleRef", "items", "ports", "hostNetwork",
    "replicas", "selector", "matchLabels", "runAsNonRoot", "runAsUser", "type", "data", "jobTemplate", "team",
]  # fmt: skip
KINDS = ["Pod", "Deployment", "CronJob", "Role", "ClusterRoleBinding", "Namespace", "Service", "List", "ConfigMap"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.sampled_from(FIELDS),
    st.integers(min_value=10**30, max_value=10**40),
)  # fmt: skip
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)
objects = st.fixed_dictionaries(
    {"apiVersion": st.sampled_from(["v1", "apps/v1", "batch/v1", "rbac.authorization.k8s.io/v1"]) | trees,
     "kind": st.sampled_from(KINDS) | trees,
     "metadata": st.fixed_dictionaries({"name": st.sampled_from(["a", "b"]) | trees}, optional={
         "namespace": st.sampled_from(["shop", "payments"]) | trees, "labels": trees, "annotations": trees}) | trees},
    optional={"spec": trees, "items": trees, "rules": trees, "subjects": trees, "roleRef": trees, "data": trees},
)  # fmt: skip


def _policies() -> Any:
    texts = {f"policies/{p.name}": p.read_text() for p in sorted(REPO_POLICIES.rglob("*.yaml"))}
    texts["policies/packs.yaml"] = "---\n".join(
        f"apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nmetadata: {{name: pack-{name}}}\n"
        f"spec: {{enforcement: enforce, builtin: {{name: {name}, params: {params}}}}}\n"
        for name, params in [("pss-restricted", "{}"), ("rbac-guard", "{}"), ("magtape", "{}"),
                             ("required-labels", "{labels: [team]}")]
    )  # fmt: skip
    return parse_policies(texts)


POLICIES = _policies()


def render_and_gate(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "apps").mkdir()
        (root / "apps" / "x.yaml").write_text(text)
        try:
            manifests = render(root, "apps").manifests
            gate(manifests, POLICIES, deny_level=DenyLevel.LOW, now=datetime.now(UTC), commit="f" * 40,
                 namespaces={})  # fmt: skip
        except (RenderError, PolicyError, PolicyBlockedError) as error:
            assert str(error).startswith("apps/x.yaml") or str(error).startswith("revision "), str(error)


@settings(max_examples=150)
@given(documents=st.lists(objects, min_size=1, max_size=3))
@example(documents=[{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": "oops"}}])
@example(documents=[{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": "oops"}])
@example(documents=[{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": "x"}}])
@example(documents=[{"apiVersion": "v1", "kind": "List", "metadata": {"name": "a"}, "items": {"a": 1}}])
def test_generated_objects_give_only_typed_errors_from_render_and_gate(documents: list[dict[str, Any]]) -> None:
    render_and_gate(yaml.safe_dump_all(documents))


TOKENS = ["&a ", "*a", "[", "]", "{", "}", ": ", "- ", "\n", "  ", "---\n", "...\n", "!!binary ", "!!set ",
          "!!python/object:os.system ", "<<: ", "%YAML 1.1\n", "? ", "|\n", "'", '"', "9" * 5000, "1e999", ".inf",
          "apiVersion: v1\n", "kind: Pod\n", "metadata: {name: a}\n", "2026-01-01", "~", "\t", "#", "\x00"]  # fmt: skip


@given(pieces=st.lists(st.sampled_from(TOKENS), max_size=40))
@example(pieces=["apiVersion: v1\n", "kind: Pod\n", "metadata: {name: a}\n", "x: ", "9" * 5000])
@example(pieces=["a: &a [x,x]\n", "b: &b [*a,*a]\n", "c: [*b, *b]\n"])
def test_yaml_token_soup_gives_only_typed_errors_from_render_and_gate(pieces: list[str]) -> None:
    render_and_gate("".join(pieces))


NAME_CHARS = st.sampled_from(["a", "b", "*", "?", "[", "]", "é", "\u202e", " ", "-", ".", "{", "}", "~", "$"])
names = st.text(NAME_CHARS, min_size=1, max_size=6).filter(lambda n: n not in (".", ".."))
entries = st.lists(
    st.tuples(st.lists(names, min_size=1, max_size=3), st.sampled_from(["file", "dir", "link-in", "link-out"])),
    max_size=6,
)
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\n"


@given(tree=entries)
@example(tree=[(["[a]*"], "file"), (["?b"], "file")])
@example(tree=[(["x"], "link-out")])
def test_any_tree_of_files_folders_and_symlinks_renders_or_is_refused_naming_a_path(
    tree: list[tuple[list[str], str]],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory) / "checkout"
        (root / "apps").mkdir(parents=True)
        (Path(directory) / "outside.yaml").write_text(CONFIGMAP % "outside")
        made = 0
        for parts, kind in tree:
            path = root / "apps" / Path(*parts[:-1]) / (parts[-1] + (".yaml" if kind != "dir" else ""))
            if path.exists() or path.is_symlink() or not _parents_are_folders(root / "apps", path):
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            made += 1
            if kind == "file":
                path.write_text(CONFIGMAP % f"cm-{made}")
            elif kind == "dir":
                path.mkdir()
            else:
                path.symlink_to(Path(directory) / "outside.yaml" if kind == "link-out" else root / "apps")
        try:
            rendered = render(root, "apps")
        except RenderError as error:
            assert str(error).startswith("apps"), str(error)
            odd_names = any(not name.isprintable() for parts, _ in tree for name in parts)
            assert odd_names or any(kind.startswith("link") for _, kind in tree), str(error)
            return
        assert all(m.key.name.startswith("cm-") for m in rendered.manifests)


def _parents_are_folders(top: Path, path: Path) -> bool:
    """Whether every folder between ``top`` and ``path`` is a real folder or not made yet."""
    for parent in reversed(path.parents):
        if parent.is_relative_to(top) and parent != top and (parent.is_symlink() or parent.is_file()):
            return False
    return True
