"""Attack: wrap a Job in a CronJob, so that the Job is written by the control plane and never judged.

The webhook admits the control plane's own users unjudged for every kind but Pods (admission/review.py,
control_plane: system:kube-controller-manager, system:serviceaccount:kube-system:*). The threat model
closes the wrapping trick for Pods ("a policy matching only Pods cannot be dodged by wrapping the Pod in a
Deployment"), but it stays open one level up: the CronJob controller creates Jobs as the controller-manager
(or as system:serviceaccount:kube-system:cronjob-controller with --use-service-account-credentials), so a
policy that matches Jobs (a registry rule, the seed's add-ttl-jobs) never sees a Job made from a CronJob,
and the gate never sees it either (it is not in Git). Shown by sending the AdmissionReview the API server
sends for such a Job to the server's own entry point (this dev cluster's controller-manager runs as the
admin, so the real one would be judged here).

Attacker: a tenant with `edit` (who may create CronJobs) where a policy targets Jobs.
"""

from __future__ import annotations

import json
import ssl
import time
from typing import Any

import pytest

from gitopsguard.admission.review import Judgement
from gitopsguard.admission.server import AdmissionServer
from gitopsguard.policy import DenyLevel, parse_policies
from tests.admissionreview import review

REGISTRY = """apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: trusted-registry}
spec:
  code: GG3001
  severity: HIGH
  enforcement: enforce
  match: {kinds: [Job]}
  validations:
    - expression: object.spec.template.spec.containers.all(c, c.image.startsWith('ghcr.io/example/'))
      message: images must come from ghcr.io/example/
"""
JUDGEMENT = Judgement(parse_policies({"policies/registry.yaml": REGISTRY}), DenyLevel.LOW, "abc123")


def cron_job_child(namespace: str) -> dict[str, Any]:
    """A Job as the CronJob controller makes it: owned by the tenant's CronJob, with the tenant's image."""
    owner = {"apiVersion": "batch/v1beta1", "kind": "CronJob", "name": "nightly", "uid": "u-cron",
             "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    spec = {"restartPolicy": "Never", "containers": [{"name": "c", "image": "evil.example/miner:1"}]}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "nightly-27845", "namespace": namespace, "ownerReferences": [owner]},
            "spec": {"template": {"spec": spec}}}  # fmt: skip


@pytest.fixture
def server() -> Any:
    made = AdmissionServer(("127.0.0.1", 0), ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), lambda: JUDGEMENT)
    yield made
    made.server_close()
    made.pool.shutdown(wait=False)


def allowed(server: AdmissionServer, username: str) -> bool:
    data = json.dumps(review(cron_job_child("shop"), username=username)).encode()
    return bool(server.judge("validate", data, time.monotonic() + 4)["response"]["allowed"])


def test_the_tenants_own_job_with_an_untrusted_image_is_refused(server: AdmissionServer) -> None:
    assert not allowed(server, "alice")


@pytest.mark.parametrize("username", ["system:kube-controller-manager",
                                      "system:serviceaccount:kube-system:cronjob-controller"])  # fmt: skip
def test_the_same_job_made_by_the_cronjob_controller_is_refused(server: AdmissionServer, username: str) -> None:
    assert not allowed(server, username)
