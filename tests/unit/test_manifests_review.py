"""manifests/ runs the controller in signed-merge review (issue 20): the mode is fixed in the Deployment's
arguments (not in the ConfigMap its own account could rewrite), the trust file comes from a generated Secret
(which that account cannot write), and the placeholder shipped in it fails closed: the controller, started
with the Deployment's own arguments, refuses to start and says what to fill in."""

from __future__ import annotations

import base64
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from gitopsguard import lifeline
from gitopsguard.cli import main
from tests.kubectl import kubectl

MANIFESTS = Path(__file__).parents[2] / "manifests"
TRUST = "/etc/gitopsguard/trust/trust.yaml"


def rendered() -> list[dict[str, Any]]:
    out = subprocess.run([kubectl(), "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith(name)]
    return found


def controller(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec = one(objects, "Deployment", "gitopsguard")["spec"]["template"]["spec"]
    return {"container": spec["containers"][0], "volumes": {v["name"]: v for v in spec["volumes"]}}


def test_the_controller_runs_signed_merge_review_with_the_trust_file_from_a_secret_it_cannot_write() -> None:
    objects = rendered()
    parts = controller(objects)
    args = parts["container"]["args"]
    assert "--review-mode=signed-merge" in args and f"--trust={TRUST}" in args
    assert "GITOPSGUARD_REVIEW_MODE" not in str(one(objects, "ConfigMap", "gitopsguard-config")["data"])
    mount = next(m for m in parts["container"]["volumeMounts"] if m["mountPath"] == str(Path(TRUST).parent))
    volume = parts["volumes"][mount["name"]]
    secret = one(objects, "Secret", volume["secret"]["secretName"])
    assert secret["metadata"]["name"] == volume["secret"]["secretName"] != "gitopsguard-trust"  # hashed: rolls Pods
    assert volume["secret"].get("optional") is not True  # no trust file, no start
    rules = [r for r in one(objects, "ClusterRole", "gitopsguard-controller")["rules"] if "secrets" in r["resources"]]
    assert all(r.get("resourceNames") == ["gitopsguard-slack"] and r["verbs"] == ["get"] for r in rules)


def test_the_shipped_placeholder_trust_file_makes_the_controller_refuse_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = rendered()
    parts = controller(objects)
    secret = one(objects, "Secret", "gitopsguard-trust")
    trust = tmp_path / "trust.yaml"
    trust.write_bytes(base64.b64decode(secret["data"]["trust.yaml"]))
    config = one(objects, "ConfigMap", "gitopsguard-config")["data"]
    args = [re.sub(r"\$\((\w+)\)", lambda m: str(config[m.group(1)]), a) for a in parts["container"]["args"]]
    places = {"--trust": trust, "--workdir": tmp_path / "work", "--audit-log": tmp_path / "audit.jsonl",
              "--backup-dir": tmp_path / "backups", "--metrics-address": "127.0.0.1:0",
              "--admission-address": "127.0.0.1:0"}  # a port another process holds must not decide  # fmt: skip
    args = [f"{a.split('=')[0]}={places[a.split('=')[0]]}" if a.split("=")[0] in places else a for a in args]
    monkeypatch.setattr(lifeline, "install", lambda *_: None)  # the test process is not the controller's
    monkeypatch.setattr(signal, "signal", lambda *_: None)
    result = CliRunner().invoke(main, [*args, "--kubeconfig", str(tmp_path / "none")])
    assert result.exit_code == 2, result.output
    assert "has no `reviews` rules, so no change could ever be applied" in result.output
    assert "docs/reviewed-revisions.md" in result.output
