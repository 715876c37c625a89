"""The in-cluster demo's repository (`make demo`): its workloads run the demo's local web image (a node here
pulls nothing), its policies admit that one image and still refuse any other registry, and repo-template/
itself keeps its realistic images. Real git, ssh-keygen and kustomize; no cluster."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from gitopsguard.commands.demo import TEMPLATE, demo_repository
from gitopsguard.commands.demo_review import demo_people
from gitopsguard.policy import DenyLevel, evaluate, load_policies
from gitopsguard.render.plain import read_text
from tests.kubectl import kubectl

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def render(root: Path, folder: str = "clusters/dev") -> list[dict[str, Any]]:
    out = subprocess.run([kubectl(), "kustomize", str(root / folder)], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out) if doc]


def images(objects: list[dict[str, Any]]) -> set[str]:
    return {
        c["image"] for o in objects if o["kind"] == "Deployment" for c in o["spec"]["template"]["spec"]["containers"]
    }


def test_the_demo_repository_runs_the_local_web_image_and_its_policies_pass_it(tmp_path: Path) -> None:
    repo = demo_repository(tmp_path / "demo-repo", demo_people(tmp_path / "keys"), local_images=True)
    objects = render(repo)
    assert images(objects) == {"gitopsguard-demo-web:dev"}
    policies = load_policies(repo / "policies", root=repo)
    result = evaluate(read_text(yaml.safe_dump_all(objects), "dev"), policies, now=NOW, deny_level=DenyLevel.MED)
    assert not result.blocked, [(r.key, r.findings) for r in result.blocked]
    assert not subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True, check=True
    ).stdout  # fmt: skip  (committed, signed by carol as the first commit)


def test_the_demo_policy_still_refuses_an_image_from_another_registry_or_a_lookalike_tag(tmp_path: Path) -> None:
    repo = demo_repository(tmp_path / "demo-repo", demo_people(tmp_path / "keys"), local_images=True)
    policies = load_policies(repo / "policies", root=repo)
    for image in ("docker.io/evil/miner:1", "gitopsguard-demo-web:dev2", "evil.example/gitopsguard-demo-web:dev"):
        objects = render(repo)
        for o in objects:
            if o["kind"] == "Deployment":
                o["spec"]["template"]["spec"]["containers"][0]["image"] = image
        result = evaluate(read_text(yaml.safe_dump_all(objects), "dev"), policies, now=NOW, deny_level=DenyLevel.MED)
        assert any("GG3001" in str(r.findings) for r in result.blocked), image


def test_repo_template_keeps_its_realistic_images() -> None:
    assert images(render(TEMPLATE)) == {"ghcr.io/example/shop-web:1.4.2", "ghcr.io/example/payments-api:2.0.1"}


def test_the_team_folders_of_the_units_layout_run_the_local_web_image_too(tmp_path: Path) -> None:
    """The in-cluster demo serves clusters/dev-units, whose teams' Units apply apps/*/dev."""
    repo = demo_repository(tmp_path / "demo-repo", demo_people(tmp_path / "keys"), local_images=True)
    for folder in ("apps/shop/dev", "apps/payments/dev"):
        assert images(render(repo, folder)) == {"gitopsguard-demo-web:dev"}, folder
        assert images(render(TEMPLATE, folder)) != {"gitopsguard-demo-web:dev"}, folder
