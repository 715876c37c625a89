"""``gitopsguard demo``: a local control plane, a Git copy of repo-template/, and one real reconcile."""

from __future__ import annotations

import queue
import shutil
import sys
import threading
import time
from pathlib import Path

import click
import git
from kubernetes import client

from gitopsguard.cluster import connect, server_info
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.commands.reconcile_once import print_result
from gitopsguard.controller import Controller
from gitopsguard.devcluster import CacheLayout, DevCluster, StateLayout
from gitopsguard.devcluster.progress import StagedProgress
from gitopsguard.errors import DevClusterError
from gitopsguard.model import Action
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.source import GitSource, SourceSpec

TEMPLATE = Path(__file__).resolve().parents[2] / "repo-template"


def run_demo() -> int:
    progress = StagedProgress()
    cluster = DevCluster(StateLayout.default(), CacheLayout.default(), progress)
    kubeconfig = cluster.up().kubeconfig
    api = connect(kubeconfig)
    info = server_info(api)
    click.echo(f"\nKubernetes {info.version} at {info.server}: {'ready' if info.ready else 'NOT ready'}")
    repo = demo_repository(cluster.state.root / "demo-repo")
    progress.stage(f"running gitopsguard on clusters/dev of the demo repository {repo}")
    results: queue.Queue[ReconcileResult] = queue.Queue()
    controller = Controller(
        Unit("demo-dev", "clusters/dev"), GitSource(SourceSpec(repo.as_uri()), cluster.state.root / "demo-source"),
        Applier(api), InventoryStore(api), RawApi(api), interval=30, on_result=results.put,
    )  # fmt: skip
    stop = threading.Event()
    loop = threading.Thread(target=controller.run, args=(stop, repo), daemon=True)
    loop.start()
    first = results.get(timeout=120)
    print_result(first)
    if first.error is None:
        show_drift_repair(api, results)
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
    actor = git.Actor("gitopsguard demo", "demo@gitopsguard.invalid")
    repo.index.commit("Start from repo-template", author=actor, committer=actor)
    return path
