"""``gitopsguard dev-cluster``, ``cluster-info`` and ``demo``: the local cluster and what runs on it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gitopsguard.commands.cli_shared import reports_errors

if TYPE_CHECKING:  # only for types: each command imports what it needs when it runs
    from gitopsguard.devcluster import ClusterStatus, DevCluster


@click.group("dev-cluster")
@click.option("--state-dir", type=click.Path(path_type=Path), help="Where this cluster keeps its state.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Where built Kubernetes binaries are cached.")
@click.pass_context
def dev_cluster(ctx: click.Context, state_dir: Path | None, cache_dir: Path | None) -> None:
    """A real local cluster: etcd, kube-apiserver, kube-controller-manager 1.20.2 and a node (as root)."""
    from gitopsguard.devcluster import CacheLayout, DevCluster, StateLayout
    from gitopsguard.devcluster.progress import StagedProgress

    state = StateLayout(state_dir) if state_dir else StateLayout.default()
    cache = CacheLayout(cache_dir) if cache_dir else CacheLayout.default()
    ctx.obj = DevCluster(state, cache, StagedProgress())


@dev_cluster.command("up")
@click.option("--port", type=int, default=None, help="kube-apiserver port (default: a free one).")
@click.option("--audit-log", is_flag=True, help="A new cluster's API server keeps an audit log of writes "
              "(logs/audit.log in its state dir); `run --apiserver-audit-log` reads it to name users.")  # fmt: skip
@click.option("--node/--no-node", default=True, show_default=True, help="A new cluster also runs a node "
              "(containerd, kubelet, kube-proxy, kube-scheduler) so Pods run; root only, one a machine.")  # fmt: skip
@click.pass_obj
@reports_errors
def dev_cluster_up(cluster: DevCluster, port: int | None, audit_log: bool, node: bool) -> None:
    """Start the cluster (building the binaries once), or restart whatever part of it has stopped."""
    result = cluster.up(apiserver_port=port, audit_log=audit_log, node=node)
    if result.already_up:
        click.echo(f"The dev cluster is already up at {result.server}; nothing was started.", err=True)
    elif result.recovered:
        click.echo(f"Recovered the dev cluster at {result.server}: restarted {', '.join(result.started)}.", err=True)
    else:
        click.echo(f"The dev cluster is up at {result.server}.", err=True)
    click.echo(cluster.env())


@dev_cluster.command("down")
@click.pass_obj
@reports_errors
def dev_cluster_down(cluster: DevCluster) -> None:
    """Stop every process the cluster started and remove its state."""
    stopped = cluster.down()
    click.echo(
        f"Stopped {', '.join(stopped)}; removed {cluster.state.root}." if stopped else "No dev cluster was running."
    )


@dev_cluster.command("status")
@click.pass_obj
@reports_errors
def dev_cluster_status(cluster: DevCluster) -> None:
    """Show each component and whether the API server is ready. Exits 1 unless all is up."""
    status = cluster.status()
    click.echo(_format_status(status, cluster.server_version() if status.ready else None))
    sys.exit(0 if status.all_running and status.ready and (status.node is None or status.node_ready) else 1)


@dev_cluster.command("env")
@click.pass_obj
@reports_errors
def dev_cluster_env(cluster: DevCluster) -> None:
    """Print the export line for the cluster's kubeconfig: eval $(gitopsguard dev-cluster env)."""
    click.echo(cluster.env())


@dev_cluster.command("image")
@click.argument("which", type=click.Choice(["gitopsguard", "demo-web"]), default="gitopsguard")
@click.option("--image-cache", type=click.Path(path_type=Path), default=None,
              help="Where the base, the archives and buildah's storage go (~/.cache/gitopsguard/images).")  # fmt: skip
@reports_errors
def dev_cluster_image(which: str, image_cache: Path | None) -> None:
    """Build gitopsguard's image (or the demo's web image) with buildah and print its OCI archive's path."""
    from gitopsguard.devcluster.base_image import ImageCache
    from gitopsguard.devcluster.image import build_image, demo_web_image, gitopsguard_image
    from gitopsguard.devcluster.progress import StagedProgress

    spec = gitopsguard_image() if which == "gitopsguard" else demo_web_image()
    cache = ImageCache(image_cache) if image_cache else ImageCache.default()
    click.echo(build_image(spec, cache, StagedProgress()))


def _format_status(status: ClusterStatus, version: str | None) -> str:
    if not status.exists:
        return "No dev cluster. Start one with: gitopsguard dev-cluster up"
    lines = [f"{c.name:<24} {c.state.value:<16} pid {c.pid if c.pid else '-'}" for c in status.components]
    server = status.ports.server_url() if status.ports else "?"
    lines.append(
        f"API server {server}: {'ready' if status.ready else 'NOT ready'}" + (f", {version}" if version else "")
    )
    if status.node is not None:
        lines.append(f"node {status.node}: {'Ready' if status.node_ready else 'NOT ready'}")
    if not (status.all_running and status.ready and (status.node is None or status.node_ready)):
        lines.append("Repair it with: gitopsguard dev-cluster up")
    lines.append(f"kubeconfig: {status.kubeconfig}")
    return "\n".join(lines)


@click.command("cluster-info")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, help="Default: $KUBECONFIG.")
@click.option("--context", default=None, help="kubeconfig context to use.")
@reports_errors
def cluster_info(kubeconfig: Path | None, context: str | None) -> None:
    """Print the API server's version and readiness (exit 1 when it is not ready)."""
    from gitopsguard.cluster import connect, server_info

    info = server_info(connect(kubeconfig, context))
    click.echo(f"server:  {info.server}\nversion: {info.version}\nready:   {'yes' if info.ready else 'no'}")
    if info.failing_checks:
        click.echo(f"failing readiness checks: {', '.join(info.failing_checks)}")
    sys.exit(0 if info.ready else 1)


@click.command("demo")
@click.option("--local", is_flag=True, help="The controller as a local process on a cluster without a node, "
              "instead of installed as Pods on the node (needs root).")  # fmt: skip
@click.option("--down", is_flag=True, help="Stop the demo (its git daemon) and take its cluster down.")
@reports_errors
def demo(local: bool, down: bool) -> None:
    """Install gitopsguard as Pods on the local dev cluster's node (kubectl apply -k manifests/), applying
    repo-template/'s dev overlay from a Git copy, and show what it does."""
    if down:
        from gitopsguard.commands.demo_incluster import stop_demo

        stopped = stop_demo()
        click.echo(f"Stopped {', '.join(stopped)}." if stopped else "No demo cluster was running.", err=True)
        return
    if local:
        from gitopsguard.commands.demo import run_demo

        sys.exit(run_demo())
    from gitopsguard.commands.demo_incluster_story import run_incluster_demo

    sys.exit(run_incluster_demo())
