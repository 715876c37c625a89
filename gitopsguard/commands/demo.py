"""``gitopsguard demo``: a local control plane, a Git copy of repo-template/, and one real reconcile."""

from __future__ import annotations

import queue
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import git
from kubernetes import client

from gitopsguard.audit import AuditLog
from gitopsguard.cluster import connect, server_info
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.audittrail import AuditTrail
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.commands.demo_grants import show_grant
from gitopsguard.commands.reconcile_once import print_result
from gitopsguard.commands.scan import start_scanner
from gitopsguard.controller import Controller
from gitopsguard.devcluster import CacheLayout, DevCluster, StateLayout
from gitopsguard.devcluster.progress import StagedProgress
from gitopsguard.errors import DevClusterError
from gitopsguard.model import Action
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.scan.scanner import Announcement
from gitopsguard.source import GitSource, SourceSpec

TEMPLATE = Path(__file__).resolve().parents[2] / "repo-template"


def run_demo() -> int:
    progress = StagedProgress()
    cluster = DevCluster(StateLayout.default(), CacheLayout.default(), progress)
    kubeconfig = cluster.up(audit_log=True).kubeconfig  # the drift repair then names the user
    api = connect(kubeconfig)
    info = server_info(api)
    click.echo(f"\nKubernetes {info.version} at {info.server}: {'ready' if info.ready else 'NOT ready'}")
    repo = demo_repository(cluster.state.root / "demo-repo")
    _short_grace(repo)
    progress.stage(f"running gitopsguard on clusters/dev of the demo repository {repo}")
    results: queue.Queue[ReconcileResult] = queue.Queue()
    controller = Controller(
        Unit("demo-dev", "clusters/dev"), GitSource(SourceSpec(repo.as_uri()), cluster.state.root / "demo-source"),
        Applier(api), InventoryStore(api), RawApi(api), interval=30, on_result=results.put,
        trail=AuditTrail(cluster.state.audit_log),
    )  # fmt: skip
    stop = threading.Event()
    loop = threading.Thread(target=controller.run, args=(stop, repo), daemon=True)
    loop.start()
    heard: queue.Queue[Announcement] = queue.Queue()

    def hear(batch: list[Announcement]) -> None:
        for announcement in batch:
            heard.put(announcement)

    start_scanner(api, lambda: controller.policies, backup_dir=cluster.state.root / "backups",
                  namespaces=("shop", "payments"), log=AuditLog(cluster.state.root / "audit.jsonl"), stop=stop,
                  also=hear)  # fmt: skip
    first = results.get(timeout=120)
    print_result(first)
    if first.error is None:
        show_drift_repair(api, results)
        show_policy_gate(repo, results)
        show_hand_made_removal(api, heard)
        show_grant(api, repo, cluster.state.root, kubeconfig)
    click.echo(HINTS.format(repo=repo, env=cluster.env(), gg=sys.argv[0], kubeconfig=kubeconfig))
    if sys.stdin.isatty() and first.error is None:
        click.echo("Watching. Edit anything above with kubectl, or commit to the demo repository; Ctrl-C stops.")
        follow(results, stop)
    stop.set()
    controller.wake()
    loop.join(10)
    return 0 if first.error is None and info.ready else 1


HINTS = """
The demo repository is a Git copy of repo-template/; gitopsguard applies its clusters/dev overlay.
  Try:  {env}
        kubectl scale deployment shop -n shop --replicas=5      # reverted within a second
        cd {repo} && $EDITOR clusters/dev/kustomization.yaml && git commit -am 'my change'
  One pass by hand: {gg} reconcile --repo {repo} --path clusters/dev --unit demo-dev --kubeconfig {kubeconfig}
  Stop the cluster: make demo-down
"""


def show_drift_repair(api: client.ApiClient, results: queue.Queue[ReconcileResult]) -> None:
    """Scale the demo Deployment behind gitopsguard's back and show the loop putting it back."""
    apps = client.AppsV1Api(api)
    click.echo("\nEditing Deployment/shop/shop outside Git: replicas 1 -> 5 ...")
    started = time.monotonic()
    apps.patch_namespaced_deployment("shop", "shop", {"spec": {"replicas": 5}}, field_manager="demo-edit")
    deadline = started + 30
    while apps.read_namespaced_deployment("shop", "shop").spec.replicas != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    replicas = apps.read_namespaced_deployment("shop", "shop").spec.replicas
    if replicas == 1:
        click.echo(f"... gitopsguard reverted it to 1 replica in {time.monotonic() - started:.2f} s:")
    else:
        click.echo(f"... NOT reverted within 30 s (replicas: {replicas}); see the errors above.")
    follow(results, until=time.monotonic() + 2)


DEBUG_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: debug-shell
  namespace: shop
spec:
  containers:
    - name: shell
      image: ghcr.io/example/debug:1.0
      securityContext:
        privileged: true
"""


def show_policy_gate(repo: Path, results: queue.Queue[ReconcileResult]) -> None:
    """Commit a privileged Pod: the gate refuses the revision; revert it, and the next one applies."""
    click.echo("\nCommitting a privileged debug Pod to clusters/dev (policies/pod-security.yaml forbids it) ...")
    git_repo = git.Repo(repo)
    (repo / "clusters" / "dev" / "debug-pod.yaml").write_text(DEBUG_POD)
    kustomization = repo / "clusters" / "dev" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("resources:\n", "resources:\n  - debug-pod.yaml\n", 1))
    git_repo.git.add(A=True)
    git_repo.index.commit("Add a privileged debug shell", author=_ACTOR, committer=_ACTOR)
    blocked = _next_result(results, lambda r: r.error is not None and "blocked by policy" in r.error)
    if blocked is None:
        click.echo("... the gate did not report within 30 s; see the errors above.")
        return
    click.echo(f"... refused, nothing of it applied, the cluster keeps the last good revision:\n{blocked.error}")
    git_repo.git.revert("--no-edit", "HEAD")
    click.echo("Reverted the commit; gitopsguard is back on a good revision.")
    _next_result(results, lambda r: r.error is None)


def show_hand_made_removal(api: client.ApiClient, heard: queue.Queue[Announcement]) -> None:
    """Create a Deployment by hand: the live scan announces it, then backs it up and deletes it."""
    click.echo("\nCreating Deployment/shop/hand-made by hand, outside Git and without a team label ...")
    labels = {"app": "hand-made"}
    pod = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "ghcr.io/example/w:1"}]}}
    body: Any = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hand-made", "labels": labels},
                 "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": pod}}  # fmt: skip
    client.AppsV1Api(api).create_namespaced_deployment("shop", body)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            announcement = heard.get(timeout=0.5)
        except queue.Empty:
            continue
        if announcement.key.name == "hand-made" and announcement.event == "deleted":
            click.echo("... the live scan backed it up and removed it after its grace period.")
            return
    click.echo("... not removed within 60 s; see the messages above.")


def _next_result(
    results: queue.Queue[ReconcileResult], wanted: Callable[[ReconcileResult], bool], timeout: float = 30.0
) -> ReconcileResult | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = results.get(timeout=0.2)
        except queue.Empty:
            continue
        if wanted(result):
            return result
    return None


def follow(results: queue.Queue[ReconcileResult], stop: threading.Event | None = None, until: float = 0.0) -> None:
    """Print passes that did something, until ``stop`` is set (or the ``until`` time passes)."""
    while (stop is not None and not stop.is_set()) or time.monotonic() < until:
        try:
            result = results.get(timeout=0.2)
        except queue.Empty:
            continue
        except KeyboardInterrupt:
            return
        if result.error or any(change.action is not Action.UNCHANGED for change in result.changes):
            print_result(result)


def demo_repository(path: Path) -> Path:
    """A Git repository holding repo-template/ as its first commit; kept (with your commits) across demos."""
    if (path / ".git").is_dir():
        return path
    if not TEMPLATE.is_dir():
        raise DevClusterError(f"{TEMPLATE}: not found; run the demo from a source checkout (`make demo`)")
    shutil.copytree(TEMPLATE, path)
    repo = git.Repo.init(path, initial_branch="main")
    repo.git.add(A=True)
    repo.index.commit("Start from repo-template", author=_ACTOR, committer=_ACTOR)
    return path


def _short_grace(path: Path) -> None:
    """The demo waits seconds, not the template's hour, before hand-made workloads are removed."""
    policy = path / "policies" / "hand-made-workloads.yaml"
    for folder in ("policies", "access"):  # a demo repository from before these existed: bring them in
        if not (path / folder).is_dir():
            shutil.copytree(TEMPLATE / folder, path / folder)
    text = policy.read_text()
    if "gracePeriod: 10s" in text:
        return
    policy.write_text(text.replace("gracePeriod: 1h", "gracePeriod: 10s"))
    repo = git.Repo(path)
    repo.git.add(A=True)
    repo.index.commit("Demo: remove hand-made workloads after 10 s instead of 1 h", author=_ACTOR, committer=_ACTOR)


_ACTOR = git.Actor("gitopsguard demo", "demo@gitopsguard.invalid")
