"""Renders read only the commit: symlinks, kustomize remote bases (``file://`` too), absolute paths and ``..``
that leave the checkout are refused with the file (and line) that asked for them, before anything is read."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gitopsguard.errors import RenderError
from gitopsguard.render import render
from gitopsguard.render.settings import RenderSettings

SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: stolen, namespace: shop}\nstringData: {k: v}\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: shop}\n"


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout, with a file and a folder of objects beside it (outside) that are in no commit."""
    write(tmp_path, "outside/secret.yaml", SECRET)
    write(tmp_path, "outside/kustomization.yaml", "resources: [secret.yaml]\n")
    write(tmp_path, "outside/token.txt", "hunter2\n")
    root = tmp_path / "checkout"
    write(root, "apps/cm.yaml", CONFIGMAP % "mine")
    return root


def test_plain_yaml_file_symlink_out_of_the_checkout_is_refused(checkout: Path) -> None:
    (checkout / "apps" / "link.yaml").symlink_to(checkout.parent / "outside" / "secret.yaml")
    with pytest.raises(RenderError, match=r"^apps/link\.yaml: .*symlink"):
        render(checkout, "apps")


def test_plain_yaml_directory_symlink_out_of_the_checkout_is_refused(checkout: Path) -> None:
    (checkout / "apps" / "more").symlink_to(checkout.parent / "outside")
    with pytest.raises(RenderError, match=r"^apps/more: .*symlink"):
        render(checkout, "apps")


def test_plain_yaml_refuses_every_symlink_even_one_inside_the_checkout(checkout: Path) -> None:
    write(checkout, "other/cm.yaml", CONFIGMAP % "other")
    (checkout / "apps" / "other.yaml").symlink_to(checkout / "other" / "cm.yaml")
    with pytest.raises(RenderError, match=r"^apps/other\.yaml: .*symlink"):
        render(checkout, "apps")


def test_kustomize_file_url_base_is_refused_with_file_and_line(checkout: Path) -> None:
    outside = checkout.parent / "outside"
    for command in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=outside, check=True, capture_output=True)
    write(checkout, "apps/kustomization.yaml", f"resources:\n- cm.yaml\n- file://{outside}\n")
    with pytest.raises(RenderError, match=r"^apps/kustomization\.yaml:3: .*remote"):
        render(checkout, "apps")


def test_kustomize_base_outside_the_checkout_through_dotdot_is_refused(checkout: Path) -> None:
    write(checkout, "apps/kustomization.yaml", "resources:\n- cm.yaml\n- ../../outside\n")
    with pytest.raises(RenderError, match=r"^apps/kustomization\.yaml:3: .*leaves the checkout"):
        render(checkout, "apps")


def test_kustomize_directory_symlink_out_of_the_checkout_is_refused(checkout: Path) -> None:
    (checkout / "apps" / "base").symlink_to(checkout.parent / "outside")
    write(checkout, "apps/kustomization.yaml", "resources:\n- cm.yaml\n- base\n")
    with pytest.raises(RenderError, match=r"^apps/kustomization\.yaml:3: .*leaves the checkout"):
        render(checkout, "apps")


def test_kustomize_nested_base_that_escapes_is_named_by_its_own_kustomization(checkout: Path) -> None:
    write(checkout, "base/kustomization.yaml", "resources:\n  - /etc/passwd\n")
    write(checkout, "apps/kustomization.yaml", "resources: [cm.yaml, ../base]\n")
    with pytest.raises(RenderError, match=r"^base/kustomization\.yaml:2: .*absolute"):
        render(checkout, "apps")


ESCAPES = {
    "absolute": "/etc/hostname",
    "dotdot": "../../outside/token.txt",
    "file url": "file:///etc/hostname",
    "https url": "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1",
    "scp-like git": "git@github.com:org/repo.git",
    "host path": "github.com/org/repo//base?ref=main",
}

FIELDS = {
    "resources": "resources:\n- {}\n",
    "bases": "bases:\n- {}\n",
    "components": "components:\n- {}\n",
    "crds": "crds:\n- {}\n",
    "configurations": "configurations:\n- {}\n",
    "patches": "patches:\n- path: {}\n",
    "patchesStrategicMerge": "patchesStrategicMerge:\n- {}\n",
    "patchesJson6902": "patchesJson6902:\n- path: {}\n  target: {{kind: ConfigMap, name: mine}}\n",
    "replacements": "replacements:\n- path: {}\n",
    "transformers": "transformers:\n- {}\n",
    "generators": "generators:\n- {}\n",
    "validators": "validators:\n- {}\n",
    "transformers inline": "transformers:\n- apiVersion: builtin\n  kind: PatchTransformer\n  metadata: {{name: p}}\n"
    "  path: {}\n",
    "configMapGenerator files": "configMapGenerator:\n- name: c\n  files:\n  - key={}\n",
    "configMapGenerator envs": "configMapGenerator:\n- name: c\n  envs:\n  - {}\n",
    "secretGenerator files": "secretGenerator:\n- name: s\n  files:\n  - {}\n",
    "secretGenerator env": "secretGenerator:\n- name: s\n  env: {}\n",
    "helmCharts valuesFile": "helmCharts:\n- name: c\n  valuesFile: {}\n",
    "helmCharts repo": "helmCharts:\n- name: c\n  repo: {}\n",
    "openapi": "openapi:\n  path: {}\n",
}


@pytest.mark.parametrize("escape", ESCAPES.values(), ids=list(ESCAPES))
@pytest.mark.parametrize("field", FIELDS.values(), ids=list(FIELDS))
def test_any_kustomize_path_or_url_leaving_the_checkout_is_refused_with_file_and_line(
    checkout: Path, field: str, escape: str
) -> None:
    # a second `resources:` would be refused as a repeated key, before the escape is seen
    text = ("" if field.startswith("resources:") else "resources:\n- cm.yaml\n") + field.format(escape)
    write(checkout, "apps/kustomization.yaml", text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if escape in row)
    with pytest.raises(RenderError, match=rf"^apps/kustomization\.yaml:{line}: "):
        render(checkout, "apps")


def test_allowing_remote_bases_lets_a_url_through_to_kustomize_but_never_a_local_path(checkout: Path) -> None:
    allowed = RenderSettings(allow_remote_bases=True)
    write(checkout, "apps/kustomization.yaml", f"resources:\n- cm.yaml\n- {ESCAPES['https url']}\n")
    with pytest.raises(RenderError, match=r"^apps/kustomization\.yaml: kustomize build failed"):
        render(checkout, "apps", settings=allowed)  # no network here: kustomize itself fails to fetch it
    for local in ("file:///etc", "/etc/hostname", "../../outside"):
        write(checkout, "apps/kustomization.yaml", f"resources:\n- cm.yaml\n- {local}\n")
        with pytest.raises(RenderError, match=r"^apps/kustomization\.yaml:3: "):
            render(checkout, "apps", settings=allowed)


def test_kustomize_paths_inside_the_checkout_still_render(checkout: Path) -> None:
    write(checkout, "base/cm.yaml", CONFIGMAP % "base")
    write(checkout, "base/kustomization.yaml", "resources: [cm.yaml]\n")
    write(checkout, "apps/props.env", "a=b\n")
    (checkout / "apps" / "linked").symlink_to(checkout / "base")
    write(checkout, "apps/kustomization.yaml", "resources: [cm.yaml, linked]\nconfigMapGenerator:\n"
                                               "- name: gen\n  namespace: shop\n  envs: [props.env]\n")  # fmt: skip
    keys = sorted(str(m.key).split("-")[0] for m in render(checkout, "apps").manifests)
    assert keys == ["ConfigMap/shop/base", "ConfigMap/shop/gen", "ConfigMap/shop/mine"]


def test_a_policies_folder_symlinked_out_of_the_checkout_is_refused(checkout: Path) -> None:
    from gitopsguard.errors import PolicyError
    from gitopsguard.gate import policies_at

    outside = checkout.parent / "outside-policies"
    write(outside, "p.yaml", "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\nmetadata: {name: p}\n"
                             "spec: {mutate: {addLabels: {from: outside}}}\n")  # fmt: skip
    (checkout / "policies").symlink_to(outside)
    with pytest.raises(PolicyError, match=r"^policies: .*symlink"):
        policies_at(checkout, "policies")


def test_a_policy_file_symlinked_out_of_the_checkout_is_refused(checkout: Path) -> None:
    from gitopsguard.errors import PolicyError
    from gitopsguard.gate import policies_at

    (checkout / "policies").mkdir()
    (checkout / "policies" / "p.yaml").symlink_to(checkout.parent / "outside" / "secret.yaml")
    with pytest.raises(PolicyError, match=r"^policies/p\.yaml: .*symlink"):
        policies_at(checkout, "policies")


def test_check_of_a_kustomization_outside_the_working_directory_may_use_bases_in_its_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from click.testing import CliRunner

    from gitopsguard.cli import main

    repo = tmp_path / "repo"
    write(repo, "base/cm.yaml", CONFIGMAP % "base")
    write(repo, "base/kustomization.yaml", "resources: [cm.yaml]\n")
    write(repo, "clusters/dev/kustomization.yaml", "resources: [../../base]\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = CliRunner().invoke(main, ["check", str(repo / "clusters" / "dev")])
    assert result.exit_code == 0, result.output
    assert "1 objects" in result.output


def test_a_symlink_loop_named_by_a_kustomization_is_a_render_error_with_file_and_line(checkout: Path) -> None:
    (checkout / "apps" / "loop").symlink_to(checkout / "apps" / "loop")
    write(checkout, "apps/kustomization.yaml", "resources:\n- cm.yaml\n- loop\n")
    with pytest.raises(RenderError, match=r"^apps/kustomization\.yaml:3: "):
        render(checkout, "apps")


def test_a_rendered_path_that_is_a_symlink_loop_is_a_render_error(checkout: Path) -> None:
    (checkout / "loop").symlink_to(checkout / "loop")
    with pytest.raises(RenderError, match=r"^loop: "):
        render(checkout, "loop")
