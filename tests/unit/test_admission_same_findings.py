"""One corpus through all four paths: ``gitopsguard check`` (its JSON), the gate (``evaluate``), the live scan
(``judge_object``, as the scanner calls it on a live object) and admission (the mutating webhook's patch, then
the validating webhook) give the same findings and the same verdicts, for the same policies and time."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from gitopsguard.admission import Judgement, mutate_request, validate
from gitopsguard.cli import main
from gitopsguard.model import KubeObject, Manifest, ObjectKey
from gitopsguard.policy import DenyLevel, evaluate, judge_object, parse_policies
from gitopsguard.policy.model import Context
from tests.admissionreview import BASELINE, MAGTAPE, TEAM_LABEL, TTL, hack_a_node_pod, request_of
from tests.unit.policy.workloads import as_cronjob, as_deployment, as_pod, compliant_spec

TEXTS = {
    "pss.yaml": BASELINE.replace("Job]", "Job, CronJob]"),
    "magtape.yaml": MAGTAPE,
    "ttl.yaml": TTL,
    "team.yaml": TEAM_LABEL,
}


def _corpus() -> list[KubeObject]:
    privileged, no_probes = compliant_spec(), compliant_spec()
    privileged["containers"][0]["securityContext"]["privileged"] = True
    del no_probes["containers"][0]["livenessProbe"]
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "team"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", **privileged}}}}  # fmt: skip
    bodies = [hack_a_node_pod("team"), as_deployment(privileged), as_deployment(no_probes), as_pod(compliant_spec()),
              as_cronjob(no_probes), job]  # fmt: skip
    for index, body in enumerate(bodies):
        body["metadata"]["name"] = f"{body['metadata']['name']}-{index}"
    return bodies


def _key(finding: dict[str, Any] | Any) -> tuple[str, str, str, str]:
    if isinstance(finding, dict):
        return finding["policy"], finding["code"], finding["path"], finding["message"]
    return finding.policy, finding.code, finding.path, finding.message


@pytest.mark.parametrize("deny_level", ["LOW", "MED", "HIGH"])
def test_check_gate_live_scan_and_admission_agree_on_one_corpus(tmp_path: Path, deny_level: str) -> None:
    corpus = _corpus()
    (tmp_path / "policies").mkdir()
    for file, text in TEXTS.items():
        (tmp_path / "policies" / file).write_text(text)
    (tmp_path / "objects.yaml").write_text(yaml.safe_dump_all(copy.deepcopy(corpus)))
    arguments = ["check", str(tmp_path / "objects.yaml"), "--policies", str(tmp_path / "policies"),
                 "--deny-level", deny_level, "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(main, arguments)
    checked = {(o["kind"], o["name"]): o for o in json.loads(result.output)["objects"]}
    policies = parse_policies({f"policies/{n}": t for n, t in TEXTS.items()})
    now, level = datetime.now(UTC), DenyLevel(deny_level)
    gate = evaluate([Manifest(ObjectKey.of(b), b, "objects.yaml") for b in corpus], policies, now=now,
                    deny_level=level)  # fmt: skip
    judgement = Judgement(policies, level)
    for body, mutated, verdict in zip(corpus, gate.manifests, gate.results, strict=True):
        name = (body["kind"], body["metadata"]["name"])
        patched = _apply(body, mutate_request(request_of(body), judgement).patch)
        assert patched == mutated.body, name  # the mutating webhook makes what the gate applies
        admitted = validate(request_of(patched), judgement, now=now, namespace=None)
        scanned, _ = judge_object(mutated.body, policies, Context(), now)  # the live object, once applied
        expected = sorted(_key(f) for f in verdict.findings)
        assert sorted(_key(f) for f in checked[name]["findings"]) == expected, name
        assert sorted(_key(f) for f in scanned) == expected, name
        assert sorted(_key(f) for f in (*admitted.denying, *admitted.warning)) == expected, name
        assert sorted(_key(f) for f in admitted.denying) == sorted(_key(f) for f in gate.blocking(verdict)), name
        assert (checked[name]["verdict"] == "denied") is verdict.denied is (not admitted.allowed), name


def _apply(body: KubeObject, operations: tuple[dict[str, Any], ...]) -> KubeObject:
    result = copy.deepcopy(body)
    for operation in operations:
        steps = [s.replace("~1", "/").replace("~0", "~") for s in operation["path"].split("/")[1:]]
        node = result
        for step in steps[:-1]:
            node = node[step]
        node[steps[-1]] = copy.deepcopy(operation["value"])
    return result
