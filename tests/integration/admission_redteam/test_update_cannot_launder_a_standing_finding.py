"""Attack: turn an old privileged Deployment into one's own root shell on the node, by UPDATE.

An UPDATE is denied only for the findings it brings; findings the old object had are warned about
(admission/review.py, _standing_before). A finding is the same when (policy, code, path, message) are; the
messages leave out what matters: "container 'agent' is privileged" whatever its image, "volume 'logs'
mounts a host path" whatever the path. So a Deployment that predates admission (or whose exception has
expired: the issue's legacy-agent) can have its privileged container's image replaced by any image, and
its hostPath moved from /var/log to /, and both are admitted as if nothing changed.

Attacker: a tenant with `edit` in a namespace holding one such workload.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.admission.review import Judgement
from gitopsguard.cluster.rest import RawApi
from gitopsguard.policy import DenyLevel, parse_policies
from tests.admissionreview import BASELINE
from tests.integration.conftest import bind_user
from tests.waiting import eventually

from .conftest import Starter

pytestmark = pytest.mark.integration
DEPLOYMENTS = "/apis/apps/v1/namespaces/{}/deployments"


def legacy_agent(namespace: str, image: str = "registry.example/log-agent:1", host: str = "/var/log") -> dict[str, Any]:
    container = {"name": "agent", "image": image, "securityContext": {"privileged": True},
                 "volumeMounts": [{"name": "logs", "mountPath": "/host"}]}  # fmt: skip
    spec = {"containers": [container], "volumes": [{"name": "logs", "hostPath": {"path": host}}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "legacy-agent", "namespace": namespace},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}}, "spec": spec}}}  # fmt: skip


def test_swapping_the_image_of_a_standing_privileged_container_and_mounting_the_root_is_refused(
    start_hook: Starter, admin_api: client.ApiClient, namespace: str
) -> None:  # fmt: skip
    deployments = DEPLOYMENTS.format(namespace)
    status, answer = RawApi(admin_api).request("POST", deployments, body=legacy_agent(namespace))  # before admission
    assert status == 201, answer
    hook = start_hook(Judgement(parse_policies({"policies/pss.yaml": BASELINE}), DenyLevel.LOW, "abc123"))
    bind_user(hook.cluster.api(), namespace, "alice-edit", "ClusterRole", "edit")
    alice = RawApi(hook.cluster.api("dev-alice"))
    fresh = {**legacy_agent(namespace), "metadata": {"name": "fresh", "namespace": namespace}}
    eventually(lambda: alice.request("POST", deployments, body=fresh, query={"dryRun": "All"})[0] == 403, timeout=20)
    current = alice.request("GET", f"{deployments}/legacy-agent")[1]
    worse = copy.deepcopy(current)
    template = worse["spec"]["template"]["spec"]
    template["containers"][0]["image"] = "evil.example/node-shell:1"
    template["volumes"][0]["hostPath"]["path"] = "/"
    status, answer = alice.request("PUT", f"{deployments}/legacy-agent", body=worse)
    got = (answer.get("spec") or {}).get("template", {}).get("spec", {}) if status == 200 else {}
    assert status == 403, f"admitted: image {got['containers'][0]['image']}, hostPath {got['volumes'][0]['hostPath']}"
