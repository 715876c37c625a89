"""Kubernetes' own Pod Security fixtures (tests/data/pss, from kubernetes/pod-security-admission) at every
level and version: each Pod upstream says passes has no finding of that level and version, each one it says
fails has at least one. Every Pod is also tried as a Deployment's template and as a PodTemplate, where PSA
checks the same spec."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitopsguard.policy.packs import pss

DATA = Path(__file__).parent.parent / "data" / "pss"


def _rows() -> list[tuple[str, str, str, str, str]]:
    lines = (DATA / "index.tsv").read_text().splitlines()
    rows = []
    for line in lines:
        if line and not line.startswith("#"):
            level, version, verdict, fixture, file = line.split("\t")
            rows.append((level, version, verdict, fixture, file))
    return rows


ROWS = _rows()


@cache
def _pod(file: str) -> dict[str, Any]:
    body = yaml.safe_load((DATA / "pods" / file).read_text())
    assert isinstance(body, dict)
    return body


def _templates(pod: dict[str, Any]) -> list[dict[str, Any]]:
    template = {"metadata": pod.get("metadata") or {}, "spec": pod["spec"]}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": template}},
        {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template},
    ]


def test_the_fixtures_cover_every_version_from_1_0_to_the_newest_known() -> None:
    versions = {(level, version) for level, version, *_ in ROWS}
    assert versions == {(level, f"v1.{m}") for level in pss.LEVELS for m in range(pss.LATEST + 1)}


@pytest.mark.parametrize(("level", "version", "verdict", "name", "file"), ROWS, ids=["/".join(r[:4]) for r in ROWS])
def test_each_upstream_fixture_gets_the_upstream_verdict(level: str, version: str, verdict: str, name: str,
                                                         file: str) -> None:  # fmt: skip
    pod = _pod(file)
    minor = pss.parse_version(version)
    for body in (pod, *_templates(pod)):
        hits = pss.evaluate_pod(body, level, minor)
        if verdict == "pass":
            assert hits == [], f"{level}/{version}/{name} passes upstream"
        else:
            assert hits, f"{level}/{version}/{name} fails upstream"


def test_latest_is_the_newest_version_and_a_newer_one_is_evaluated_as_the_newest() -> None:
    assert pss.parse_version("latest") == pss.LATEST == pss.parse_version("v1.999")
