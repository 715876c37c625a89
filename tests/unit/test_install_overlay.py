"""The overlay `make demo` and the in-cluster test install with (``devcluster/install.py``): it changes only
the image, the repository, the trust file, the commit to trust from, the arguments and configuration it is
given and (when asked) the namespace's toleration; every other field of the shipped manifests, the security
context above all, renders as shipped. Real kustomize (kubectl kustomize); no cluster."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitopsguard.devcluster.install import DEFAULT_TOLERATIONS, IMAGE, MANIFESTS, InstallSettings, write_overlay
from gitopsguard.errors import DevClusterError
from tests.kubectl import kubectl

COMMIT = "a" * 40


def render(directory: Path) -> dict[tuple[str, str], dict[str, Any]]:
    out = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=True).stdout
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}


def settings(tmp_path: Path, **more: Any) -> InstallSettings:
    trust = tmp_path / "trust.yaml"
    trust.write_text("signers: []\n")
    return InstallSettings("git://10.244.0.1:9418/demo-repo", "clusters/dev", trust, COMMIT, **more)


def test_the_overlay_changes_the_image_repository_and_arguments_and_nothing_else_of_the_deployment(
    tmp_path: Path,
) -> None:
    ours = render(write_overlay(tmp_path / "o", settings(tmp_path, extra_args=("--interval=5",))))
    shipped = render(MANIFESTS)
    deployment, original = ours[("Deployment", "gitopsguard")], shipped[("Deployment", "gitopsguard")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["imagePullPolicy"]) == (IMAGE, "Never")
    assert container["args"] == original["spec"]["template"]["spec"]["containers"][0]["args"] + [
        f"--trust-from={COMMIT}", "--interval=5"]  # fmt: skip
    expected = copy.deepcopy(original)
    expected_container = expected["spec"]["template"]["spec"]["containers"][0]
    expected_container.update(image=IMAGE, imagePullPolicy="Never", args=container["args"])
    # the trust Secret's name carries the hash of its content: the only other difference
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    for volume in expected["spec"]["template"]["spec"]["volumes"]:
        if volume["name"] == "trust":
            volume["secret"]["secretName"] = volumes["trust"]["secret"]["secretName"]
    assert deployment == expected


def test_the_overlay_sets_the_repository_and_given_configuration_and_adds_no_toleration_unasked(
    tmp_path: Path,
) -> None:
    config = (("GITOPSGUARD_APPROVAL_MODE", "signed-merge"),)
    ours = render(write_overlay(tmp_path / "o", settings(tmp_path, config=config)))
    data = ours[("ConfigMap", "gitopsguard-config")]["data"]
    assert data["GITOPSGUARD_REPO"] == "git://10.244.0.1:9418/demo-repo"
    assert (data["GITOPSGUARD_PATH"], data["GITOPSGUARD_APPROVAL_MODE"]) == ("clusters/dev", "signed-merge")
    assert DEFAULT_TOLERATIONS not in (ours[("Namespace", "gitopsguard-system")]["metadata"].get("annotations") or {})
    tolerated = render(write_overlay(tmp_path / "t", settings(tmp_path, toleration_key="example.com/taint")))
    annotations = tolerated[("Namespace", "gitopsguard-system")]["metadata"]["annotations"]
    assert "example.com/taint" in annotations[DEFAULT_TOLERATIONS]


def test_the_overlay_keeps_every_other_shipped_object_as_it_is(tmp_path: Path) -> None:
    ours = render(write_overlay(tmp_path / "o", settings(tmp_path)))
    shipped = render(MANIFESTS)
    changed = {("Deployment", "gitopsguard"), ("ConfigMap", "gitopsguard-config")}
    secrets = {key for key in ours if key[0] == "Secret"} | {key for key in shipped if key[0] == "Secret"}
    assert {k: v for k, v in ours.items() if k not in changed | secrets} == {
        k: v for k, v in shipped.items() if k not in changed | secrets
    }


def test_the_overlay_changes_the_readiness_period_when_asked_and_nothing_else_of_the_probes(tmp_path: Path) -> None:
    ours = render(write_overlay(tmp_path / "o", settings(tmp_path, readiness_period=1)))
    shipped = render(MANIFESTS)
    container = ours[("Deployment", "gitopsguard")]["spec"]["template"]["spec"]["containers"][0]
    original = shipped[("Deployment", "gitopsguard")]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"] == {**original["readinessProbe"], "periodSeconds": 1}
    assert container["livenessProbe"] == original["livenessProbe"]


UNITS_RBAC = Path(__file__).parents[2] / "repo-template" / "operator" / "units-rbac.yaml"


def test_the_overlay_serves_a_root_of_units_with_root_in_place_of_path_and_no_other_argument_changed(
    tmp_path: Path,
) -> None:
    ours = render(write_overlay(tmp_path / "o", settings(tmp_path, root=True)))
    shipped = render(MANIFESTS)
    args = ours[("Deployment", "gitopsguard")]["spec"]["template"]["spec"]["containers"][0]["args"]
    original = shipped[("Deployment", "gitopsguard")]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--path=$(GITOPSGUARD_PATH)" not in args
    assert args[:-1] == [a.replace("--path=", "--root=") for a in original]  # the last: --trust-from
    assert ours[("ConfigMap", "gitopsguard-config")]["data"]["GITOPSGUARD_PATH"] == "clusters/dev"


def test_the_overlay_installs_the_given_resources_beside_the_shipped_manifests(tmp_path: Path) -> None:
    ours = render(write_overlay(tmp_path / "o", settings(tmp_path, resources=(UNITS_RBAC,))))
    shipped = render(MANIFESTS)
    added = {key for key in ours if key not in shipped and key[0] != "Secret"}
    assert added == {("ClusterRole", "gitopsguard-tenant"), ("ClusterRole", "gitopsguard-units-rbac"),
                     ("ClusterRoleBinding", "gitopsguard-units-rbac")}  # fmt: skip


def test_a_resource_named_like_the_overlays_own_files_is_refused(tmp_path: Path) -> None:
    hostile = tmp_path / "elsewhere" / "kustomization.yaml"
    hostile.parent.mkdir()
    hostile.write_text("resources: [/etc]\n")
    with pytest.raises(DevClusterError, match="clash by file name"):
        write_overlay(tmp_path / "o", settings(tmp_path, resources=(hostile,)))
