"""The Units steps of the in-cluster demo's story (``demo_incluster_story.py`` tells them in order): the three
Units of ``clusters/dev-units`` Ready in ``kubectl get units``, a team's reviewed commit applied by its Unit and
``gitopsguard reconcile unit`` answered by the running controller, a team's file outside its namespace refused
by the API server (its Unit says so), and ``suspend unit`` / ``resume unit``. Every step shows the real output
of kubectl or gitopsguard's CLI, as a user would type them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from kubernetes import client

from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.units import UnitStore
from gitopsguard.commands.demo_incluster import PROGRESS_EVERY, DemoInstall, echo_step
from gitopsguard.commands.demo_review import reviewed_change
from gitopsguard.devcluster.install import NAMESPACE
from gitopsguard.errors import GitOpsGuardError

ROOT = "clusters/dev-units"  # the root path the demo's controller serves (`run --root`)
UNITS = (("platform", "platform"), ("shop", "shop"), ("payments", "payments"))  # (namespace, name)
TEAM_FOLDER = "apps/shop/dev"  # Unit shop/shop's path, applied as ServiceAccount shop/shop-deployer
STOLEN = """\
# shop's folder writing into namespace payments: shop's account may not, so the API server refuses it
apiVersion: v1
kind: ConfigMap
metadata:
  name: written-by-shop
  namespace: payments
data:
  owner: shop
"""


def until(
    condition: Callable[[], bool], timeout: float = 60.0, every: float = 0.2, *,
    progress: Callable[[float], None] | None = None, progress_every: float = PROGRESS_EVERY,
) -> float | None:  # fmt: skip
    """Seconds until ``condition`` held, or None if it did not within ``timeout``. Every 0.2 s by default:
    each look is one small read, and the story waits on a dozen of them (0.5 s added about 3 s in all).
    ``progress`` is called with the seconds waited so far every ``progress_every`` seconds of a long wait, so
    that a wait of minutes on a slow machine says what it waits for."""
    started = time.monotonic()
    reported = started
    while (now := time.monotonic()) < started + timeout:
        if condition():
            return time.monotonic() - started
        if progress is not None and now - reported >= progress_every:
            reported = now
            progress(now - started)
        time.sleep(every)
    return None


def ready_of(demo: DemoInstall, namespace: str, name: str) -> Mapping[str, Any]:
    """The Unit's Ready condition as the controller wrote it; {} when it has none (or no Unit yet)."""
    try:
        conditions = UnitStore(RawApi(demo.api)).get(namespace, name).status.get("conditions") or []
    except GitOpsGuardError:
        return {}
    return next((c for c in conditions if isinstance(c, Mapping) and c.get("type") == "Ready"), {})


def all_ready(demo: DemoInstall) -> bool:
    return all(ready_of(demo, namespace, name).get("status") == "True" for namespace, name in UNITS)


def shell(demo: DemoInstall, argv: list[str], shown: str) -> int:
    """Run ``argv`` (kubectl or gitopsguard, with the demo's kubeconfig in the environment), print ``$ shown``
    and its output indented, as a terminal would; its exit code."""
    # the caller's environment, HOME above all: without it kubectl keeps its discovery cache in ./.kube, which
    # is the source checkout `make demo` runs from
    env = {**os.environ, "KUBECONFIG": str(demo.kubeconfig)}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env)
    click.echo(f"  $ {shown}")
    for line in (done.stdout + done.stderr).rstrip().splitlines():
        click.echo(f"    {line}".rstrip())  # kubectl pads a column to its widest cell, a long message's too
    return done.returncode


def kubectl(demo: DemoInstall, *args: str) -> int:
    return shell(demo, [demo.kubectl, *args], "kubectl " + " ".join(args))


# kubectl pads a column to the whole length of its widest cell, a multi-line one too, of which it shows only the
# first line and "...": with a failing Unit's Ready message (a line per refused object) in the STATUS column,
# `kubectl get units` ran 400 to 1,500 characters wide. Where a Unit fails, the story shows the condition's
# reason in its place, and the message whole below it.
ONE_LINE_COLUMNS = (
    "custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,"
    "READY:.status.conditions[?(@.type=='Ready')].status,"
    "REASON:.status.conditions[?(@.type=='Ready')].reason,REVISION:.status.lastAppliedRevision"
)


def units_table(demo: DemoInstall, *scope: str) -> int:
    """``kubectl get units`` one line a Unit whatever its Ready message: ``-o`` custom columns with the reason."""
    return kubectl(demo, "get", "units", *scope, "-o", ONE_LINE_COLUMNS)


def gitopsguard(demo: DemoInstall, *args: str) -> int:
    """gitopsguard's own CLI, as installed beside the demo (the same Python)."""
    return shell(demo, [sys.executable, "-m", "gitopsguard", *args], "gitopsguard " + " ".join(args))


def show_units_ready(demo: DemoInstall) -> bool:
    """The root path applied the Namespaces and the three Units, the platform Unit the teams' accounts, and each
    team's Unit its folder as that account."""
    echo_step(f"The leader applies {ROOT}: the Namespaces and Units platform, shop and payments; each Unit then "
              "applies its folder (shop and payments as their own ServiceAccounts, after platform) ...")  # fmt: skip
    took = until(lambda: all_ready(demo), 180, progress=lambda waited: _not_ready_yet(demo, waited))
    if took is None:
        click.echo("... the three Units were not all Ready within 180 s; what each says, and the controller's log "
                   f"(kubectl logs -n {NAMESPACE} -l app.kubernetes.io/name=gitopsguard) says more:")  # fmt: skip
        units_table(demo, "-A")
        kubectl(demo, "get", "units", "-A", "-o", READY_MESSAGES)
        return False
    click.echo(f"... all three Ready {took:.1f} s after the install:")
    kubectl(demo, "get", "units", "-A")
    show_pods_on_the_node(demo)
    return True


READY_MESSAGES = (
    "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}: "
    "{.status.conditions[?(@.type=='Ready')].message}{'\\n'}{.status.lastError}{'\\n'}{end}"
)


def _not_ready_yet(demo: DemoInstall, waited: float) -> None:
    """One line on a long wait for the Units: which are not Ready yet, with their reason."""
    waiting = [f"{namespace}/{name} ({ready_of(demo, namespace, name).get('reason') or 'no status yet'})"
               for namespace, name in UNITS if ready_of(demo, namespace, name).get("status") != "True"]  # fmt: skip
    click.echo(f"  ... {waited:.0f} s: not Ready yet: {', '.join(waiting) or '-'}")


NODE_NAMESPACES = ("gitopsguard-system", "shop", "payments")


def show_pods_on_the_node(demo: DemoInstall) -> None:
    """The controller's Pods and the teams', once they run: the teams' are created by the Units' first applies,
    which the install no longer waits for, so they may still be starting (bounded: their phase is shown)."""
    until(lambda: all(_phase(pod) == "Running" for _, pod in _pods_on_the_node(demo)), 30)
    click.echo("  On the node:")
    for namespace, pod in _pods_on_the_node(demo):
        image = pod.spec.containers[0].image if pod.spec else "?"
        click.echo(f"    {namespace}/{pod.metadata.name if pod.metadata else '?'}: {_phase(pod)} ({image})")


def _pods_on_the_node(demo: DemoInstall) -> list[tuple[str, client.V1Pod]]:
    """The Pods that stay: an earlier demo's controller Pods on their way out (a restart) are left out."""
    return [(namespace, pod) for namespace in NODE_NAMESPACES for pod in demo.core.list_namespaced_pod(namespace).items
            if pod.metadata is None or pod.metadata.deletion_timestamp is None]  # fmt: skip


def _phase(pod: client.V1Pod) -> str:
    return str(pod.status.phase if pod.status else "?")


def revision_of(demo: DemoInstall, namespace: str, name: str) -> str:
    try:
        return str(UnitStore(RawApi(demo.api)).get(namespace, name).status.get("lastAppliedRevision") or "")
    except GitOpsGuardError:
        return ""


def show_reconcile_request(demo: DemoInstall, merged: str) -> None:
    """After a merge: ``reconcile unit`` asks the running controller (an annotation) and waits for its answer.
    Every Unit's revision moves to the new commit (each is reconciled on it); only shop's objects changed,
    which the Units' Events say."""
    click.echo("  No waiting for the next fetch: ask the running controller to reconcile Unit shop now.")
    gitopsguard(demo, "reconcile", "unit", "shop", "-n", "shop", "--timeout", "60s")
    until(lambda: all(merged in revision_of(demo, namespace, name) for namespace, name in UNITS), 10)
    kubectl(demo, "get", "units", "-A")
    click.echo(f"  Every Unit is on the merge now; what each did with it, from the Units' Events ({merged[:12]}):")
    events = [demo.kubectl, "get", "events", "-A", "--field-selector", "involvedObject.kind=Unit", "-o",
              "custom-columns=NAMESPACE:.metadata.namespace,UNIT:.involvedObject.name,MESSAGE:.message"]  # fmt: skip
    done = subprocess.run([*events, "--kubeconfig", str(demo.kubeconfig)], capture_output=True, text=True, timeout=60)
    click.echo(f"  $ kubectl {' '.join(events[1:-1])} '{events[-1]}' | grep -e MESSAGE -e {merged}")
    for line in done.stdout.splitlines():
        if "MESSAGE" in line or merged in line:
            click.echo(f"    {line}".rstrip())


def show_confinement(demo: DemoInstall) -> None:
    """A reviewed commit in shop's folder that writes into namespace payments: the API server refuses it to
    shop's account, nothing of that revision is applied, and Unit shop says why."""
    echo_step(f"alice adds to {TEAM_FOLDER} (team shop's folder) a ConfigMap in namespace payments; carol merges "
              "it ...")  # fmt: skip
    folder = demo.repo / TEAM_FOLDER
    kustomization = folder / "kustomization.yaml"
    undo = reviewed_undo(demo, folder / "written-by-shop.yaml", kustomization)

    def edit() -> None:
        (folder / "written-by-shop.yaml").write_text(STOLEN)
        kustomization.write_text(kustomization.read_text().replace("  - ../base\n", "  - ../base\n  - "
                                                                   "written-by-shop.yaml\n", 1))  # fmt: skip

    reviewed_change(demo.people, demo.repo, f"alice-payments-{int(time.time())}", edit, "Write into payments")
    refused = until(lambda: ready_of(demo, "shop", "shop").get("status") == "False", 60)
    click.echo("... refused by the API server: shop's account may write in namespace shop only (nothing of the "
               "revision applied):" if refused is not None else "... Unit shop did not fail within 60 s:")  # fmt: skip
    units_table(demo, "-A")
    kubectl(demo, "get", "unit", "shop", "-n", "shop", "-o", LAST_ERROR)
    exists = _configmap_exists(demo, "payments", "written-by-shop")
    click.echo(f"\n  ConfigMap payments/written-by-shop exists: {exists}.")
    undo()


LAST_ERROR = "jsonpath={.status.lastError}"  # the whole error: the conditions hold its first line


def reviewed_undo(demo: DemoInstall, added: Path, edited: Path) -> Callable[[], None]:
    """Undoes a change that added the file ``added`` and edited ``edited``, by review like any change: the
    root unit applied the merge (its own folder did not change), so a revert pushed straight would be an
    unreviewed commit on top of an applied one, and refused for every Unit."""
    original = edited.read_text()

    def edit() -> None:
        added.unlink(missing_ok=True)
        edited.write_text(original)

    def undo() -> None:
        reviewed_change(demo.people, demo.repo, f"undo-{added.stem}-{int(time.time())}", edit, f"Undo {added.name}")
        back = until(lambda: ready_of(demo, "shop", "shop").get("status") == "True", 60)
        click.echo(f"alice undoes it, carol merges; Unit shop Ready again {back:.1f} s later." if back is not None
                   else "alice undoes it, carol merges; Unit shop NOT Ready again within 60 s.")  # fmt: skip

    return undo


def _configmap_exists(demo: DemoInstall, namespace: str, name: str) -> bool:
    try:
        demo.core.read_namespaced_config_map(name, namespace)
    except client.ApiException:
        return False
    return True


def show_suspend(demo: DemoInstall) -> None:
    """A suspended Unit changes nothing (its drift stays) until resumed; then it is repaired at once."""
    apps = client.AppsV1Api(demo.api)
    echo_step("An incident in shop: suspend its Unit, then scale Deployment/shop/shop by hand to 3 ...")
    gitopsguard(demo, "suspend", "unit", "shop", "-n", "shop")
    apps.patch_namespaced_deployment("shop", "shop", {"spec": {"replicas": 3}}, field_manager="demo-edit")
    time.sleep(2)  # unsuspended, drift is put back within about a second (the drift step shows it)
    replicas = apps.read_namespaced_deployment("shop", "shop").spec.replicas
    click.echo(f"  2 s later: Deployment/shop/shop has {replicas} replicas (suspended: left alone).")
    kubectl(demo, "get", "units", "-n", "shop")
    resumed = time.monotonic()  # `resume unit` returns once the controller has served it: often repaired by then
    gitopsguard(demo, "resume", "unit", "shop", "-n", "shop")
    back = until(lambda: apps.read_namespaced_deployment("shop", "shop").spec.replicas == 1, 60, 0.1)
    click.echo(f"... resumed: back to 1 replica {time.monotonic() - resumed:.1f} s after `resume unit` began."
               if back is not None else "... resumed, but NOT back to 1 replica within 60 s.")  # fmt: skip
