"""``gitopsguard demo``: a local control plane, a Git copy of repo-template/, and one real reconcile."""

from __future__ import annotations

import queue
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
from kubernetes import client

from gitopsguard.audit import AuditLog
from gitopsguard.cluster import connect, server_info
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.audittrail import AuditTrail
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.commands.demo_admission import DemoAdmissionParts, demo_kubectl, show_admission
from gitopsguard.commands.demo_grants import show_grant
from gitopsguard.commands.demo_review import (
    DemoPeople,
    demo_people,
    next_result,
    reviewed_change,
    show_review,
    signed_commit,
)
from gitopsguard.commands.reconcile_once import print_result
from gitopsguard.commands.scan import start_scanner
from gitopsguard.controller import Controller
from gitopsguard.devcluster import CacheLayout, DevCluster, StateLayout
from gitopsguard.devcluster.progress import StagedProgress
from gitopsguard.errors import DevClusterError, GitOpsGuardError
from gitopsguard.model import Action
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.scan.judged import Announcement
from gitopsguard.source import GitSource, SourceSpec
from gitopsguard.source.review import Reviewer

TEMPLATE = Path(__file__).resolve().parents[2] / "repo-template"
DEMO_GRACE = "2s"  # hand-made workloads: the template's hour is no demo, and the story waits it out


def run_demo() -> int:
    progress = StagedProgress()
    cluster = DevCluster(StateLayout.default(), CacheLayout.default(), progress)
    kubeconfig = cluster.up(audit_log=True).kubeconfig  # the drift repair then names the user
    api = connect(kubeconfig)
    info = server_info(api)
    click.echo(f"\nKubernetes {info.version} at {info.server}: {'ready' if info.ready else 'NOT ready'}")
    people = demo_people(cluster.state.root / "demo-keys")
    repo = demo_repository(cluster.state.root / "demo-repo", people)
    _short_grace(repo, people)
    trust_from = people.git(repo, "carol", "rev-parse", "HEAD").strip()
    progress.stage(f"running gitopsguard on clusters/dev of the demo repository {repo}")
    click.echo(f"Review mode signed-merge: applied are only merges carol signs (trust file {people.trust}), "
               f"trusted from the demo's start {trust_from[:12]} (--trust-from)")  # fmt: skip
    loop = start_loop(api, repo, cluster.state.root, people.reviewer(trust_from, cluster.state.root / "demo-review"),
                      AuditTrail(cluster.state.audit_log))  # fmt: skip
    heard: queue.Queue[Announcement] = queue.Queue()

    def hear(batch: list[Announcement]) -> None:
        for announcement in batch:
            heard.put(announcement)

    log = AuditLog(cluster.state.root / "audit.jsonl")
    start_scanner(api, lambda: loop.controller.policies, backup_dir=cluster.state.root / "backups",
                  namespaces=("shop", "payments"), log=log, stop=loop.stop, also=hear)  # fmt: skip
    first = loop.first()
    print_result(first)
    if first.error is None:
        show_drift_repair(api, loop.results)
        show_review(api, repo, people, loop.results)
        show_policy_gate(repo, people, loop.results)
        show_hand_made_removal(api, heard)
        show_grant(api, repo, people, kubeconfig)
        show_demo_admission(DemoAdmissionParts(api, loop.controller.unit, loop.source, kubeconfig, "", log))
    click.echo(HINTS.format(repo=repo, env=f"{cluster.env()} {on_path()}", gg=sys.argv[0], kubeconfig=kubeconfig,
                            trust=people.trust, carol=people.key("carol")))  # fmt: skip
    if sys.stdin.isatty() and first.error is None:
        click.echo("Watching. Edit anything above with kubectl, or commit to the demo repository; Ctrl-C stops.")
        follow(loop.results, loop.stop)
    loop.close()
    return 0 if first.error is None and info.ready else 1


def on_path() -> str:
    """``PATH=<bin>:$PATH`` for the hints: kubectl and gitopsguard are where `make demo` installed them, beside
    this Python (the venv's bin), and nowhere else on a fresh machine."""
    return f"PATH={Path(sys.executable).parent}:$PATH"


def show_demo_admission(parts: DemoAdmissionParts) -> None:
    """The admission step, with the kubectl `make demo` installs; a failure of it is reported, and the demo
    goes on (its webhook configurations are gone either way)."""
    kubectl = demo_kubectl()
    if kubectl is None:
        click.echo("\n(skipped the admission step: no kubectl; `make demo` installs it)")
        return
    try:
        show_admission(replace(parts, kubectl=kubectl))
    except GitOpsGuardError as error:
        click.echo(f"... the admission step failed: {error}")


@dataclass(frozen=True)
class DemoLoop:
    """The controller loop on the demo repository, on a thread of its own, and the results of its passes."""

    controller: Controller
    source: GitSource
    results: queue.Queue[ReconcileResult]
    stop: threading.Event
    thread: threading.Thread

    def first(self, timeout: float = 120.0) -> ReconcileResult:
        """The first pass on a fetched head (the passes before it hold the cluster as it is)."""
        found = next_result(self.results, lambda r: r.revision is not None or r.error is not None, timeout)
        return found or ReconcileResult("demo", None, (), error=f"no pass on the demo repository within {timeout} s")

    def close(self) -> None:
        self.stop.set()
        self.controller.wake()
        self.thread.join(10)


def start_loop(
    api: client.ApiClient, repo: Path, state: Path, reviewer: Reviewer, trail: AuditTrail | None = None,
    unit: str = "demo-dev",
) -> DemoLoop:  # fmt: skip
    """gitopsguard's loop on clusters/dev of ``repo`` with ``reviewer`` (signed-merge review), as `run` would."""
    results: queue.Queue[ReconcileResult] = queue.Queue()
    source = GitSource(SourceSpec(repo.as_uri()), state / "demo-source", reviewer=reviewer)
    controller = Controller(Unit(unit, "clusters/dev"), source, Applier(api), InventoryStore(api), RawApi(api),
                            interval=30, on_result=results.put, trail=trail)  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop, repo), daemon=True)
    thread.start()
    return DemoLoop(controller, source, results, stop, thread)


HINTS = """
The demo repository is a Git copy of repo-template/; gitopsguard applies its clusters/dev overlay, and only
changes that came through review: a merge signed by carol. Your commits there are alice's (signed with her key).
  Try:  {env}
        kubectl scale deployment shop -n shop --replicas=5      # reverted within a second
        cd {repo} && git checkout -b my-change && $EDITOR clusters/dev/kustomization.yaml && git commit -am 'my change'
        git checkout main && git -c user.signingkey={carol} merge --no-ff --no-edit -S my-change  # carol: applied
        (the same commit straight on main is refused; `git revert HEAD` takes it back)
  One pass by hand: {gg} reconcile --repo {repo} --path clusters/dev --unit demo-dev --kubeconfig {kubeconfig} \\
        --review-mode signed-merge --trust {trust}
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


def show_policy_gate(repo: Path, people: DemoPeople, results: queue.Queue[ReconcileResult]) -> None:
    """alice adds a privileged Pod and carol merges it: reviewed, yet the gate refuses the revision. carol
    reverts the merge, and the next one applies: the revert puts back what is applied, so nothing it brings needs
    review."""
    click.echo("\nalice adds a privileged debug Pod to clusters/dev and carol merges it (policies/pod-security.yaml "
               "forbids it) ...")  # fmt: skip
    overlay = repo / "clusters" / "dev" / "kustomization.yaml"

    def edit() -> None:
        (repo / "clusters" / "dev" / "debug-pod.yaml").write_text(DEBUG_POD)
        overlay.write_text(overlay.read_text().replace("resources:\n", "resources:\n  - debug-pod.yaml\n", 1))

    merged = reviewed_change(people, repo, f"alice-debug-{int(time.time())}", edit, "Add a privileged debug shell")
    blocked = next_result(results, lambda r: r.revision == merged and r.error is not None)
    if blocked is None or "blocked by policy" not in (blocked.error or ""):
        click.echo("... the gate did not report within 30 s; see the errors above.")
        return
    click.echo(f"... refused, nothing of it applied, the cluster keeps the last good revision:\n{blocked.error}")
    people.git(repo, "carol", "revert", "--no-edit", "-S", "-m", "1", "HEAD")
    click.echo("carol reverted the merge; gitopsguard is back on a good revision.")
    next_result(results, lambda r: r.error is None)


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


def demo_repository(path: Path, people: DemoPeople, *, local_images: bool = False) -> Path:
    """A Git repository holding repo-template/ as its first commit, signed by carol; kept (with your commits)
    across demos. Its own git configuration makes you alice, signing every commit with her key. ``local_images``:
    its workloads run the demo's web image, built here (a node can pull nothing)."""
    if (path / ".git").is_dir():
        return path
    if not TEMPLATE.is_dir():
        raise DevClusterError(f"{TEMPLATE}: not found; run the demo from a source checkout (`make demo`)")
    shutil.copytree(TEMPLATE, path)
    _set_short_grace(path)
    if local_images:
        _use_local_images(path)
    people.git(path, "carol", "init", "-q", "-b", "main")
    for key, value in (("user.name", "alice"), ("user.email", "alice@example.com"), ("gpg.format", "ssh"),
                       ("user.signingkey", str(people.key("alice"))), ("commit.gpgsign", "true")):  # fmt: skip
        people.git(path, "alice", "config", key, value)
    signed_commit(people, path, "carol", f"Start from repo-template (hand-made workloads removed after {DEMO_GRACE})")
    return path


def _set_short_grace(path: Path) -> None:
    """The demo waits seconds, not the template's hour, before hand-made workloads are removed."""
    policy = path / "policies" / "hand-made-workloads.yaml"
    # the template's hour, or an earlier demo's grace (10 s, then 5 s, before this one)
    policy.write_text(re.sub(r"gracePeriod: \S+", f"gracePeriod: {DEMO_GRACE}", policy.read_text(), count=1))


def grace_of(repo: Path) -> str:
    """The grace period of hand-made workloads in a demo repository (an earlier demo's may differ)."""
    try:
        found = re.search(r"gracePeriod: (\S+)", (repo / "policies" / "hand-made-workloads.yaml").read_text())
    except OSError:
        return "?"
    return found.group(1) if found else "?"


LOCAL_IMAGES = """images:  # the demo: its web image, built and imported into the node (repo-template/ keeps real ones)
  - {name: ghcr.io/example/shop-web, newName: gitopsguard-demo-web, newTag: dev}
  - {name: ghcr.io/example/payments-api, newName: gitopsguard-demo-web, newTag: dev}
"""


def _use_local_images(path: Path) -> None:
    """clusters/dev and the teams' folders of the Units layout (apps/*/dev) run the demo's local web image, and
    policies/images.yaml admits that one image besides the template's registry."""
    for overlay in (path / "clusters" / "dev", path / "apps" / "shop" / "dev", path / "apps" / "payments" / "dev"):
        (overlay / "kustomization.yaml").write_text((overlay / "kustomization.yaml").read_text() + LOCAL_IMAGES)
    policy = path / "policies" / "images.yaml"
    allowed = "c.image.startsWith('ghcr.io/example/')"
    policy.write_text(policy.read_text().replace(allowed, f"({allowed} || c.image == 'gitopsguard-demo-web:dev')"))


def _short_grace(path: Path, people: DemoPeople) -> None:
    """A demo repository from before policies/ and access/ existed, or the demo's grace: bring them in by review."""

    def edit() -> None:
        for folder in ("policies", "access"):
            if not (path / folder).is_dir():
                shutil.copytree(TEMPLATE / folder, path / folder)
        _set_short_grace(path)

    policy = path / "policies" / "hand-made-workloads.yaml"
    if policy.is_file() and f"gracePeriod: {DEMO_GRACE}" in policy.read_text():
        return
    reviewed_change(
        people, path, f"demo-grace-{int(time.time())}", edit, f"Demo: remove hand-made workloads after {DEMO_GRACE}"
    )
