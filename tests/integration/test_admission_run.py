"""`gitopsguard run --admission-address` as a real process: until it has applied a revision it denies what its
webhooks cover (fail closed); then it judges by that revision's policies, so the hack-a-node Pod is refused
and a compliant one admitted; its metrics count both. Its configurations are limited to this test's
namespace (``--admission-namespace-label``) and deleted in teardown: the dev cluster is shared."""

from __future__ import annotations

import http.client
import json
import signal
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.admission.certs import SECRET
from gitopsguard.admission.configurations import remove
from gitopsguard.cluster.configmaps import ensure_namespace
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from gitopsguard.cluster.rest import RawApi
from gitopsguard.devcluster import StateLayout
from gitopsguard.devcluster.pki import WEBHOOK_CLIENT_CA, WEBHOOK_CLIENT_NAME
from tests.admissionreview import BASELINE, hack_a_node_pod
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster, bind_user
from tests.integration.test_run_command import free_port, get
from tests.unit.policy.workloads import as_pod, compliant_spec

pytestmark = pytest.mark.integration
LABEL = "gitopsguard.io/admission-test"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n"


def _stranger_is_answered(port: int) -> bool:
    """Whether a client without a certificate gets an HTTP answer from the webhook."""
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=10)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status > 0
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def test_run_serves_admission_by_the_applied_revision(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    raw = RawApi(admin_api)
    # the webhooks' certificate is a Secret there (as `kubectl apply -k manifests/` makes it); a fresh cluster,
    # or one whose in-cluster test deleted it, has none. Left in place afterwards: the cluster is shared, and
    # another test may be using it by then
    ensure_namespace(raw, CONTROLLER_NAMESPACE)
    bind_user(admin_api, namespace, "alice-edit", "ClusterRole", "edit")
    alice = RawApi(dev_cluster.api("dev-alice"))  # the controller writes as the admin: its own writes pass
    scope = uuid.uuid4().hex[:12]
    raw.request("PATCH", f"/api/v1/namespaces/{namespace}", body={"metadata": {"labels": {LABEL: scope}}},
                content_type="application/merge-patch+json")  # fmt: skip
    upstream = Upstream(tmp_path / "git")
    upstream.write("policies/pss.yaml", BASELINE)
    upstream.write("apps/settings.yaml", CONFIGMAP)
    upstream.commit()
    port, metrics_port = free_port(), free_port()
    client_ca = StateLayout(dev_cluster.kubeconfig.parent).pki_dir / WEBHOOK_CLIENT_CA
    authenticated = ["--admission-client-ca", str(client_ca), "--admission-client-name", WEBHOOK_CLIENT_NAME]
    process = subprocess.Popen([
        sys.executable, "-m", "gitopsguard", "run", "--repo", str(upstream.bare), "--path", "apps",
        "--unit", namespace, "--namespace", namespace, "--kubeconfig", str(dev_cluster.kubeconfig),
        "--workdir", str(tmp_path / "gg"), "--audit-log", str(tmp_path / "audit.jsonl"), "--interval", "2",
        "--no-live-scan", "--metrics-address", f"127.0.0.1:{metrics_port}",
        "--admission-address", f"127.0.0.1:{port}", "--admission-url", f"https://127.0.0.1:{port}",
        "--admission-namespace-label", f"{LABEL}={scope}", *(authenticated if client_ca.exists() else []),
    ], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    pods = f"/api/v1/namespaces/{namespace}/pods"
    compliant = as_pod(compliant_spec())
    compliant["metadata"] = {"name": "fine", "namespace": namespace, "ownerReferences": compliant["metadata"][
        "ownerReferences"]}  # fmt: skip
    try:
        deadline, answers = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            status, answer = alice.request("POST", pods, body=hack_a_node_pod(namespace), query={"dryRun": "All"})
            answers.append(json.dumps(answer))
            if status == 403 and "Host Namespaces" in answers[-1]:
                break
            time.sleep(0.3)
        assert "Host Namespaces" in answers[-1], answers[-3:]
        assert alice.request("POST", pods, body=compliant, query={"dryRun": "All"})[0] == 201
        # the admin is who the controller runs as here, a superuser the controller-manager shares: its Pods are
        # judged like anyone's (else a Deployment's Pod would pass as ours); its other writes are not judged again
        assert raw.request("POST", pods, body=hack_a_node_pod(namespace), query={"dryRun": "All"})[0] == 403
        template = {"metadata": {"labels": {"app": "own"}}, "spec": hack_a_node_pod(namespace)["spec"]}
        workload = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "own", "namespace": namespace},
                    "spec": {"selector": {"matchLabels": {"app": "own"}}, "template": template}}  # fmt: skip
        assert raw.request("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body=workload,
                           query={"dryRun": "All"})[0] == 201  # fmt: skip
        metrics = get(f"http://127.0.0.1:{metrics_port}/metrics")[1]
        stranger = _stranger_is_answered(port)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        remove(raw, "gitopsguard")
        raw.request("DELETE", f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/secrets/{SECRET}")
    refused_first = [a for a in answers if "has not applied a revision yet" in a]
    assert refused_first or len(answers) == 1, answers[:3]  # fail closed until the first revision, if seen
    assert f'gitopsguard_admission_denied_total{{namespace="{namespace}",policy="pod-security"}}' in metrics, output
    assert "admission webhooks on https://127.0.0.1:" in output
    if client_ca.exists():  # the API server's client certificate alone is served (and the start line says so)
        assert "only clients with a certificate from the --admission-client-ca" in output, output
        assert not stranger
    assert process.returncode == 0, output
