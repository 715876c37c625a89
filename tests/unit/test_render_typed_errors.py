"""Render and the gate raise only RenderError, PolicyError or PolicyBlockedError naming the file and line,
whatever a commit holds: huge numbers, metadata of the wrong shape, folders nested too deep."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gitopsguard.errors import PolicyBlockedError, PolicyError, RenderError
from gitopsguard.gate import gate, policies_at
from gitopsguard.policy import DenyLevel, load_policies
from gitopsguard.render import render

REQUIRED_LABELS = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: labels}
spec:
  enforcement: enforce
  builtin: {name: required-labels, params: {labels: [team]}}
"""


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def render_and_gate(root: Path) -> None:
    manifests = render(root, "apps").manifests
    gate(manifests, policies_at(root, "policies"), deny_level=DenyLevel.LOW, now=datetime.now(UTC), commit="c" * 40,
         namespaces={})  # fmt: skip


def test_a_5000_digit_integer_is_refused_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "apps/big.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  n: " + "7" * 5000)
    with pytest.raises(RenderError, match=r"^apps/big\.yaml:5: .*digits"):
        render(tmp_path, "apps")


def test_a_5000_digit_integer_in_a_policy_is_refused_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "policies/p.yaml", REQUIRED_LABELS + "  live: {gracePeriod: " + "7" * 5000 + "}\n")
    with pytest.raises(PolicyError, match=r"^policies/p\.yaml:7: .*digits"):
        load_policies(tmp_path / "policies", root=tmp_path)


def test_labels_that_are_a_string_are_refused_at_render_before_the_gate_sees_them(tmp_path: Path) -> None:
    write(tmp_path, "apps/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: oops\n")
    write(tmp_path, "policies/labels.yaml", REQUIRED_LABELS)
    with pytest.raises(RenderError, match=r"^apps/cm\.yaml:1: ConfigMap/a: metadata\.labels must be a map"):
        render_and_gate(tmp_path)


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ("{name: a, labels: [x]}", r"metadata\.labels must be a map"),
        ("{name: a, annotations: oops}", r"metadata\.annotations must be a map"),
        ("{name: a, labels: {team: 5}}", r"metadata\.labels\.team must be a string"),
        ("{name: a, annotations: {a: {b: c}}}", r"metadata\.annotations\.a must be a string"),
        ("{name: a, labels: {5: x}}", r"metadata\.labels keys must be strings"),
        ("{name: a, namespace: [x]}", r"metadata\.namespace must be a string"),
        ("{name: a, namespace: 5}", r"metadata\.namespace must be a string"),
        ("{name: 12}", r"has no `metadata\.name`"),
        ('{name: "a\\nb"}', r"name 'a\\nb' holds control characters"),
        ('{name: a, namespace: "x\\u202ey"}', r"namespace 'x\\u202ey' holds control characters"),
    ],
)
def test_metadata_of_the_wrong_shape_is_refused_at_render_with_file_and_line(
    tmp_path: Path, metadata: str, problem: str
) -> None:
    write(tmp_path, "apps/cm.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {metadata}\n")
    with pytest.raises(RenderError, match=rf"^apps/cm\.yaml:1: .*{problem}"):
        render(tmp_path, "apps")


@pytest.fixture
def deep_tree(tmp_path: Path) -> Iterator[Path]:
    """``apps/d/d/...`` 1,500 folders deep with a manifest at the bottom; removed bottom-up afterwards, since
    pytest's own clean-up (shutil.rmtree) recurses once per folder and cannot remove it."""
    folders = [tmp_path / "apps"]
    for _ in range(1500):  # one step at a time: pathlib's mkdir(parents=True) recurses once per folder too
        folders.append(folders[-1] / "d")
    for folder in folders:
        folder.mkdir()
    (folders[-1] / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    yield tmp_path
    (folders[-1] / "cm.yaml").unlink()
    for folder in reversed(folders):
        folder.rmdir()


def test_a_file_1500_directories_deep_is_a_render_error_naming_the_folder(deep_tree: Path) -> None:
    with pytest.raises(RenderError, match=r"^apps(/d){65}: folders nested deeper than 64"):
        render(deep_tree, "apps")


def test_folders_nested_deeper_than_the_cap_are_refused_naming_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "apps" / "/".join(["d"] * 70)
    path.mkdir(parents=True)
    (path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    with pytest.raises(RenderError, match=r"^apps(/d){65}: folders nested deeper than 64"):
        render(tmp_path, "apps")


def test_policy_folders_nested_deeper_than_the_cap_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "policies" / "/".join(["d"] * 70)
    path.mkdir(parents=True)
    (path / "p.yaml").write_text(REQUIRED_LABELS)
    with pytest.raises(PolicyError, match=r"^policies(/d){65}: folders nested deeper than 64"):
        load_policies(tmp_path / "policies", root=tmp_path)


def test_the_gate_refuses_an_object_its_policies_cannot_judge_naming_the_object(tmp_path: Path) -> None:
    from gitopsguard.model import Manifest, ObjectKey

    write(tmp_path, "policies/labels.yaml", REQUIRED_LABELS)
    fine = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok", "labels": {"team": "a"}}}
    odd = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "odd", "labels": "oops"}}
    manifests = [Manifest(ObjectKey.of(b), b, f"apps/cm.yaml:{n}") for n, b in ((1, fine), (5, odd))]
    # fail closed: an enforced policy that cannot judge an object denies it, whatever the deny level
    with pytest.raises(PolicyBlockedError, match=r"ConfigMap/odd: policy labels cannot be evaluated on it"):
        gate(manifests, policies_at(tmp_path, "policies"), deny_level=DenyLevel.LOW, now=datetime.now(UTC),
             commit="c" * 40, namespaces={})  # fmt: skip


@pytest.mark.parametrize(
    "name", [b"bad\xff.yaml", b"two\nlines.yaml", b"bell\x07.yaml"], ids=["not-utf8", "newline", "control"]
)
def test_a_file_name_that_is_not_utf8_or_holds_control_characters_is_refused(tmp_path: Path, name: bytes) -> None:
    import os

    (tmp_path / "apps").mkdir()
    # a bytes path: the name cannot be a str here (it is not UTF-8); pathlib has no bytes paths
    descriptor = os.open(os.fsencode(tmp_path / "apps") + b"/" + name, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(descriptor, b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    os.close(descriptor)
    with pytest.raises(RenderError, match=r"^apps/.*: the name is not UTF-8 text or holds control characters") as error:
        render(tmp_path, "apps")
    assert "\n" not in str(error.value)
    str(error.value).encode("utf-8")  # printable, loggable
