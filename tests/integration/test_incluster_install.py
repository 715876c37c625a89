"""gitopsguard installed as users install it, ``kubectl apply -k`` over ``manifests/``, running as two Pods on the
dev cluster's node: one leads, the other waits live; a killed leader is replaced within the lease duration and
the new leader applies the next commit; the audit chain of both verifies against the anchor in the cluster;
the webhook, reached through its Service, denies the hack-a-node Pod; the Pod's account reads no Secrets
outside its namespace.

One install serves the file (module fixture; the image is built once and cached, then imported into the node).
Its repository is served by ``git daemon`` on the bridge (``gitopsguard/devcluster/install.py`` says why). The
overlay changes only the image, the repository, the trust file, the commit to trust from and the namespace's
toleration of the suite's node taint: everything else runs as shipped (PSS restricted, read-only root, non-root,
probes, RBAC).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.admission.certs import SECRET
from gitopsguard.admission.configurations import remove
from gitopsguard.cluster.rest import RawApi
from gitopsguard.devcluster import StateLayout
from gitopsguard.devcluster.base_image import ImageCache
from gitopsguard.devcluster.image import build, gitopsguard_image
from gitopsguard.devcluster.install import NAMESPACE, GitDaemon, InstallSettings, git_daemon, write_overlay
from gitopsguard.devcluster.node import import_image
from gitopsguard.devcluster.progress import StagedProgress
from tests.admissionreview import BASELINE, hack_a_node_pod
from tests.integration.conftest import NODE_OPT_IN_TAINT, LiveCluster
from tests.kube import as_model, close, meta, name_of
from tests.kubectl import kubectl
from tests.policies import team_label_policy
from tests.reviewrepo import ReviewRepo
from tests.unit.policy.workloads import as_pod, compliant_spec
from tests.waiting import eventually

pytestmark = [
    pytest.mark.integration,
    pytest.mark.incluster,  # cluster-wide changes: its own session and cluster (make test runs it second)
    pytest.mark.slow,
    pytest.mark.timeout(1800),  # a cold image build is minutes on a busy 2-core machine
    pytest.mark.skipif(os.geteuid() != 0, reason="buildah (the image) and the node need root (CI runs as root)"),
]
APPS = "gg-incluster-apps"  # the namespace the test repository manages
SELECTOR = "app.kubernetes.io/name=gitopsguard,app.kubernetes.io/component=controller"
LEASE = "gitopsguard-clusters-dev"


def manifest(value: str) -> str:
    return (f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {APPS}}}\n---\napiVersion: v1\nkind: ConfigMap\n"
            f"metadata: {{name: hello, namespace: {APPS}}}\ndata: {{value: \"{value}\"}}\n")  # fmt: skip


@dataclass
class Install:
    repo: ReviewRepo
    served: Path  # the bare repository git daemon serves
    backups: Path  # the backup repository (bare), also served
    overlay: Path
    kubeconfig: Path
    core: client.CoreV1Api
    coordination: client.CoordinationV1Api
    logs: dict[str, str]  # the stdout of Pods already gone, kept before they went (the log pipeline's job)

    def push(self, files: dict[str, str], branch: str, merger: str = "bob") -> str:
        """alice changes ``files`` on a branch; ``merger`` merges it with a signed merge (the trust file's rules:
        policies/ need carol, a security reviewer)."""
        self.repo.change("alice", branch, files)
        head = self.repo.merge(merger, branch)
        self.repo.git("push", "-q", str(self.served), "main")
        return head

    def pods(self) -> list[client.V1Pod]:
        found = self.core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR).items
        return [p for p in found if meta(p).deletion_timestamp is None]

    def holder(self) -> str:
        """The Pod that holds the unit's Lease (its identity is ``<pod name>_<n>``)."""
        spec = self.coordination.read_namespaced_lease(LEASE, NAMESPACE).spec
        return str(spec.holder_identity or "" if spec else "").rpartition("_")[0]

    def log_of(self, pod: str) -> str:
        return str(self.core.read_namespaced_pod_log(pod, NAMESPACE, container="gitopsguard"))


@pytest.fixture(scope="session")
def image_on_node(node: str, dev_cluster: LiveCluster) -> str:
    """gitopsguard's image, built with buildah (cached while the sources are unchanged), in the node's containerd."""
    built = build(gitopsguard_image(), ImageCache.default(), StagedProgress(sys.stderr), confirm=lambda _: False)
    import_image(built.archive, StateLayout(dev_cluster.kubeconfig.parent))
    return built.reference


@pytest.fixture(scope="module")
def installed(
    image_on_node: str, dev_cluster: LiveCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Install]:
    root = tmp_path_factory.mktemp("incluster")
    repo = ReviewRepo(root / "source")
    repo.write("clusters/dev/kustomization.yaml", "resources: [hello.yaml]\n")
    repo.write("clusters/dev/hello.yaml", manifest("one"))
    repo.write("policies/pss.yaml", BASELINE)
    first = repo.commit("carol", "The first revision, trusted from the install (--trust-from)")
    served = root / "served"
    served.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.work), str(served / "cluster.git")], check=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(served / "backups.git")], check=True)
    api = dev_cluster.api()
    with git_daemon(served) as daemon:
        overlay = write_overlay(root / "overlay", _settings(daemon, repo, first))
        install = Install(repo, served / "cluster.git", served / "backups.git", overlay, dev_cluster.kubeconfig,
                          client.CoreV1Api(api), client.CoordinationV1Api(api), {})  # fmt: skip
        try:
            _kubectl(install, "apply", "--server-side", "-k", str(overlay))
            yield install
        finally:
            _show_logs(install)
            _uninstall(install, RawApi(api))
            close(api)


def _settings(daemon: GitDaemon, repo: ReviewRepo, first: str) -> InstallSettings:
    # backups of deleted workloads as commits to a repository of their own, pushed over git daemon
    backups = (f"--backup-git-url={daemon.url('backups.git')}",)
    return InstallSettings(daemon.url("cluster.git"), "clusters/dev", repo.trust, first, NODE_OPT_IN_TAINT, backups)


def _show_logs(install: Install) -> None:
    """The Pods' output and the namespace's Events on stderr, which pytest shows for a failed test."""
    for event in install.core.list_namespaced_event(NAMESPACE).items:
        print(f"event {event.involved_object.name}: {event.reason}: {event.message}", file=sys.stderr)
    for pod in install.pods():
        name = name_of(pod)
        with contextlib.suppress(ApiException):
            print(f"==== {name}\n{install.log_of(name)[-20000:]}", file=sys.stderr)
        if restarts(pod):
            with contextlib.suppress(ApiException):
                before = install.core.read_namespaced_pod_log(name, NAMESPACE, container="gitopsguard", previous=True)
                print(f"==== {name} before its restart\n{before}", file=sys.stderr)


def _kubectl(install: Install, *args: str) -> str:
    done = subprocess.run([kubectl(), "--kubeconfig", str(install.kubeconfig), *args], capture_output=True, text=True)
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def _uninstall(install: Install, raw: RawApi) -> None:
    """The Pods first (they keep the webhook configurations), then the configurations: a webhook left behind
    with failurePolicy Fail and no Pod would deny every write in the cluster."""
    subprocess.run([kubectl(), "--kubeconfig", str(install.kubeconfig), "-n", NAMESPACE, "delete", "deployment",
                    "gitopsguard", "--wait=true", "--timeout=60s"], capture_output=True)  # fmt: skip
    remove(raw, "gitopsguard")
    raw.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/secrets/{SECRET}")
    subprocess.run([kubectl(), "--kubeconfig", str(install.kubeconfig), "delete", "-k", str(install.overlay),
                    "--wait=false"], capture_output=True)  # fmt: skip
    raw.request("DELETE", f"/api/v1/namespaces/{APPS}")


def configmap_value(core: client.CoreV1Api) -> str | None:
    try:
        return str((core.read_namespaced_config_map("hello", APPS).data or {}).get("value"))
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def running(install: Install) -> bool:
    pods = install.pods()
    return len(pods) == 2 and all(p.status is not None and p.status.phase == "Running" for p in pods)


def probe(install: Install, pod: str, path: str) -> tuple[int, str]:
    """GET the Pod's health endpoint through the API server's Pod proxy (the port the kubelet's probes use)."""
    try:
        body = install.core.connect_get_namespaced_pod_proxy_with_path(f"{pod}:9402", NAMESPACE, path.lstrip("/"))
        return 200, str(body)
    except ApiException as error:
        return int(error.status), str(error.body)


def restarts(pod: client.V1Pod) -> int:
    statuses = (pod.status.container_statuses if pod.status else None) or []
    return sum(int(s.restart_count) for s in statuses)


def test_two_controller_pods_run_one_leads_and_the_standby_is_live_and_never_restarted(installed: Install) -> None:
    eventually(lambda: running(installed), timeout=180, every=1)
    eventually(lambda: configmap_value(installed.core) == "one", timeout=120, every=1)  # the leader applied it
    leader = installed.holder()
    names = {name_of(p) for p in installed.pods()}
    assert leader in names, (leader, names)
    (standby,) = names - {leader}
    # a liveness period and more (3 failures x 10 s): a standby blocked before its health server would restart
    time.sleep(35)
    pods = {name_of(p): p for p in installed.pods()}
    assert set(pods) == names and [restarts(p) for p in pods.values()] == [0, 0], [
        (n, restarts(p)) for n, p in pods.items()
    ]
    assert probe(installed, standby, "/healthz")[0] == 200
    status, why = probe(installed, standby, "/readyz")
    # every replica serves admission (manifests/controller.yaml), so a standby is ready for the webhook's
    # Service and says it stands by; the leader says it leads
    assert (status, "standby for unit clusters-dev") == (200, why[: len("standby for unit clusters-dev")]), why
    assert "leading unit clusters-dev" in probe(installed, leader, "/readyz")[1]
    assert installed.holder() == leader


def test_a_killed_leader_is_replaced_within_the_lease_duration_and_the_new_leader_applies_the_next_commit(
    installed: Install,
) -> None:
    eventually(lambda: running(installed) and configmap_value(installed.core) == "one", timeout=180, every=1)
    leader = installed.holder()
    spec = installed.coordination.read_namespaced_lease(LEASE, NAMESPACE).spec
    assert spec is not None and spec.lease_duration_seconds is not None
    duration = int(spec.lease_duration_seconds)
    installed.logs[leader] = installed.log_of(leader)  # its stdout goes with the Pod: keep the audit records
    killed = time.monotonic()
    # a crash, not a polite exit: no grace period, so the Lease is not released and must expire
    installed.core.delete_namespaced_pod(leader, NAMESPACE, grace_period_seconds=0)
    eventually(lambda: installed.holder() not in {"", leader}, timeout=duration + 10, every=0.5)
    took = time.monotonic() - killed
    assert took <= duration + 3, f"handed over after {took:.1f} s"  # + one retry period
    installed.push({"clusters/dev/hello.yaml": manifest("two")}, "after-handover")
    eventually(lambda: configmap_value(installed.core) == "two", timeout=120, every=1)


def test_the_audit_chain_of_every_pod_verifies_against_the_anchor_and_a_cut_copy_does_not(
    installed: Install, tmp_path: Path
) -> None:
    eventually(lambda: configmap_value(installed.core) is not None, timeout=180, every=1)
    copies = _verified_copies(installed, tmp_path)
    records = [line for copy in copies for line in copy.read_text().splitlines() if line.startswith('{"seq"')]
    assert records, "no audit records on the Pods' standard output"
    whole = tmp_path / "whole.log"
    whole.write_text("".join(copy.read_text() for copy in copies))
    last = max(records, key=lambda line: int(json.loads(line)["seq"]))
    cut = tmp_path / "cut.log"
    cut.write_text("".join(line + "\n" for line in whole.read_text().splitlines() if line != last))
    assert _verify(installed, [cut]).returncode != 0  # its last record removed: short of the anchored head
    edited = tmp_path / "edited.log"
    edited.write_text(whole.read_text().replace('"event": "', '"event": "x', 1))
    assert _verify(installed, [edited]).returncode != 0


def _verified_copies(install: Install, tmp_path: Path) -> list[Path]:
    """Copies that verify against the anchor. Every replica keeps appending (admission records), so a record
    may reach the anchor between reading the logs and reading the anchor: read both again, a few times."""
    for _ in range(5):
        copies = _copies(install, tmp_path)
        checked = _verify(install, copies)
        if checked.returncode == 0:
            return copies
        time.sleep(2)
    raise AssertionError(f"the Pods' audit records do not verify against the anchor: {checked.stdout}{checked.stderr}")


def _copies(install: Install, tmp_path: Path) -> list[Path]:
    """Every Pod's standard output, those gone too: the copy a log pipeline keeps."""
    logs = dict(install.logs) | {name_of(p): install.log_of(name_of(p)) for p in install.pods()}
    paths = []
    for name, text in logs.items():
        path = tmp_path / f"{name}.log"
        path.write_text(text)
        paths.append(path)
    return paths


def _verify(install: Install, copies: list[Path]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "gitopsguard", "audit", "verify", *map(str, copies), "--anchor", "cluster",
            "--kubeconfig", str(install.kubeconfig)]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True)


def test_the_webhook_reached_through_its_service_denies_the_hack_a_node_pod(installed: Install) -> None:
    eventually(lambda: configmap_value(installed.core) is not None, timeout=180, every=1)
    raw = RawApi(client.ApiClient(installed.core.api_client.configuration))
    status, answer = raw.request("POST", f"/api/v1/namespaces/{APPS}/pods", body=hack_a_node_pod(APPS),
                                 query={"dryRun": "All"})  # fmt: skip
    assert status == 403 and "Host Namespaces" in json.dumps(answer), answer


def test_writes_the_webhook_covers_are_not_refused_while_a_replica_starts(installed: Install) -> None:
    # The webhook fails closed (failurePolicy Fail): a Service that sent requests to a starting Pod before its
    # admission server listened (publishNotReadyAddresses) refused them. A third replica starts while compliant
    # Pods are dry-run created, several at a time: the API server keeps its connections to a webhook alive, so
    # only concurrent requests make it dial again and pick an endpoint. Every answer must be the webhook's.
    eventually(lambda: running(installed) and configmap_value(installed.core) is not None, timeout=180, every=1)
    apps = client.AppsV1Api(installed.core.api_client)
    pod = as_pod(compliant_spec())  # owned, as a Deployment's Pods are
    pod["metadata"] = {"name": "fine", "namespace": APPS, "ownerReferences": pod["metadata"]["ownerReferences"]}
    assert _dry_run_create(installed, pod)[0] == 201
    apps.patch_namespaced_deployment_scale("gitopsguard", NAMESPACE, {"spec": {"replicas": 3}})
    answers: list[tuple[int, str]] = []
    try:
        deadline, ready_since = time.monotonic() + 120, None
        with ThreadPoolExecutor(WRITERS) as writers:
            while time.monotonic() < deadline and (ready_since is None or time.monotonic() < ready_since + 5):
                answers += writers.map(lambda _: _dry_run_create(installed, pod), range(WRITERS))
                if ready_since is None and _ready_replicas(apps) == 3:
                    ready_since = time.monotonic()
        assert ready_since is not None, "the third replica was not ready within 120 s"
    finally:
        installed.logs.update({name_of(p): installed.log_of(name_of(p)) for p in installed.pods()})
        apps.patch_namespaced_deployment_scale("gitopsguard", NAMESPACE, {"spec": {"replicas": 2}})
        eventually(lambda: len(installed.pods()) == 2, timeout=60, every=1)
    refused = [a for a in answers if a[0] != 201]
    assert not refused and len(answers) > 100, (len(answers), len(refused), refused[:3])


WRITERS = 12


def _dry_run_create(install: Install, pod: dict[str, object]) -> tuple[int, str]:
    api = client.ApiClient(install.core.api_client.configuration)
    try:
        status, answer = RawApi(api).request("POST", f"/api/v1/namespaces/{APPS}/pods", body=pod,
                                             query={"dryRun": "All"})  # fmt: skip
    finally:
        close(api)
    return status, json.dumps(answer)[:300]


def _ready_replicas(apps: client.AppsV1Api) -> int:
    status = apps.read_namespaced_deployment("gitopsguard", NAMESPACE).status
    return int((status.ready_replicas if status else 0) or 0)


def test_the_controller_pods_account_cannot_read_secrets_outside_its_namespace(installed: Install) -> None:
    eventually(lambda: running(installed), timeout=180, every=1)
    pod = name_of(installed.pods()[0])
    denied = _exec(installed, pod, "get", "secrets", "-n", "default")
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied
    own = _exec(installed, pod, "get", "secret", SECRET, "-n", NAMESPACE, "-o", "name")  # the one it keeps
    assert own.returncode == 0, own.stderr


def _exec(install: Install, pod: str, *kubectl_args: str) -> subprocess.CompletedProcess[str]:
    """kubectl inside the controller's container (the image has it): as the Pod's own service account."""
    argv = [kubectl(), "--kubeconfig", str(install.kubeconfig), "-n", NAMESPACE, "exec", pod, "-c", "gitopsguard",
            "--", "kubectl", *kubectl_args]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def stray() -> dict[str, object]:
    """A hand-made Deployment (no Pods: 0 replicas) without the ``team`` label the team-label policy asks for."""
    pod = {"metadata": {"labels": {"app": "stray"}}, "spec": {"containers": [{"name": "c", "image": "example/x:1"}]}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "stray", "namespace": APPS},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "stray"}}, "template": pod}}  # fmt: skip


def test_a_hand_made_non_compliant_deployment_is_deleted_after_its_grace_with_a_backup_commit_that_restores_it(
    installed: Install, tmp_path: Path
) -> None:
    # last in the file: the policy it adds judges every later Deployment and Pod
    eventually(lambda: configmap_value(installed.core) is not None, timeout=180, every=1)
    apps = client.AppsV1Api(installed.core.api_client)
    apps.create_namespaced_deployment(
        APPS, as_model(client.V1Deployment, stray())
    )  # compliant when made: no policy asks for a team yet
    installed.push({"policies/team.yaml": team_label_policy("2s")}, "team-label", merger="carol")
    eventually(lambda: not _deployment_exists(apps), timeout=180, every=1)
    clone = tmp_path / "backups"
    subprocess.run(["git", "clone", "-q", "-b", "gitopsguard-backups", str(installed.backups), str(clone)], check=True)
    (saved,) = clone.glob(f"live-scan/{APPS}/Deployment-stray-*.yaml")
    message = subprocess.run(["git", "-C", str(clone), "log", "-1", "--format=%B"], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
    assert f"Deployment/{APPS}/stray" in message and "GG3001" in message, message
    # restore as the notice says, after fixing what the finding names (else it is deleted again)
    restored = yaml.safe_load(saved.read_text())
    restored["metadata"].setdefault("labels", {})["team"] = "shop"
    fixed = tmp_path / "restored.yaml"
    fixed.write_text(yaml.safe_dump(restored))
    _kubectl(installed, "apply", "-f", str(fixed))
    assert _deployment_exists(apps)


def _deployment_exists(apps: client.AppsV1Api) -> bool:
    try:
        apps.read_namespaced_deployment("stray", APPS)
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise
