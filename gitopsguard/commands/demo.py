"""``gitopsguard demo``: a local control plane, a Git copy of repo-template/, and one real reconcile."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click
import git

from gitopsguard.cluster import connect, server_info
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.commands.reconcile_once import print_result
from gitopsguard.devcluster import CacheLayout, DevCluster, StateLayout
from gitopsguard.devcluster.progress import StagedProgress
from gitopsguard.errors import DevClusterError
from gitopsguard.reconcile import Unit, reconcile
from gitopsguard.source import GitSource, SourceSpec

TEMPLATE = Path(__file__).resolve().parents[2] / "repo-template"


def run_demo() -> int:
    progress = StagedProgress()
    cluster = DevCluster(StateLayout.default(), CacheLayout.default(), progress)
    result = cluster.up()
    info = server_info(connect(result.kubeconfig))
    click.echo(f"\nKubernetes {info.version} at {info.server}: {'ready' if info.ready else 'NOT ready'}")
    repo = demo_repository(cluster.state.root / "demo-repo")
    progress.stage(f"reconciling clusters/dev of the demo repository {repo}")
    api = connect(result.kubeconfig)
    source = GitSource(SourceSpec(repo.as_uri()), cluster.state.root / "demo-source")
    outcome = reconcile(Unit("demo-dev", "clusters/dev"), source, Applier(api), InventoryStore(api))
    print_result(outcome)
    click.echo(
        "\nThe demo repository is a Git copy of repo-template/. Change it and apply again:\n"
        f"  cd {repo} && $EDITOR clusters/dev/kustomization.yaml && git commit -am 'my change'\n"
        f"  {sys.argv[0]} reconcile --repo {repo} --path clusters/dev --unit demo-dev \\\n"
        f"      --kubeconfig {result.kubeconfig}\n"
        f"Look around with: {cluster.env()}; kubectl get deploy,svc,cm -A -l gitopsguard.io/unit=demo-dev\n"
        "Not in the demo yet: the continuous loop that repairs drift within seconds.\n"
        "Stop it all with: make demo-down"
    )
    return 0 if outcome.error is None and info.ready else 1


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
