"""The demo's story, told by the in-cluster controller (``demo_incluster.py`` installs it) serving the Units
layout (``run --root clusters/dev-units``): the three Units Ready in ``kubectl get units``, drift repair, review
(a straight push refused, a team's reviewed commit applied by its Unit and ``reconcile unit`` answered by the
controller), a team's file outside its namespace refused (``demo_incluster_units.py``), the policy gate on a
team's Unit, ``suspend unit`` / ``resume unit``, the hack-a-node Pod refused at ``kubectl run``, a hand-made
workload refused, a temporary grant, and a leader handover. Every step watches the cluster and the controller
Pods' output, as a user would; none waits longer than a minute or two, and a step that does not happen says so
and the story goes on."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import click
from kubernetes import client

from gitopsguard.admission.serve import NAMESPACE_TTL
from gitopsguard.cluster.rest import RawApi
from gitopsguard.commands.demo import DEBUG_POD, grace_of, on_path
from gitopsguard.commands.demo_admission import HACK_A_NODE, SANDBOX, TWICE, TWICE_SEEN, prepare_sandbox
from gitopsguard.commands.demo_grants import GRANT_SECONDS, _alice_can_list, request_grant
from gitopsguard.commands.demo_incluster import DemoInstall, echo_step, holder
from gitopsguard.commands.demo_incluster_units import (
    LAST_ERROR,
    TEAM_FOLDER,
    kubectl,
    ready_of,
    reviewed_undo,
    show_confinement,
    show_reconcile_request,
    show_suspend,
    show_units_ready,
    units_table,
    until,
)
from gitopsguard.commands.demo_review import _LOG_LEVEL, reviewed_change, signed_commit
from gitopsguard.devcluster.install import NAMESPACE
from gitopsguard.errors import ClusterError, ForbiddenError, GitOpsGuardError


def log_level(demo: DemoInstall) -> str:
    try:
        configmap = demo.core.read_namespaced_config_map("shop-settings", "shop")
    except client.ApiException:
        return "?"
    return str((configmap.data or {}).get("LOG_LEVEL", "?"))


def logs_say(demo: DemoInstall, *texts: str) -> str:
    """The last line of the controller Pods' output that contains every one of ``texts`` (a Pod's own order), or
    "". The audit records on the same output (JSON lines) say it too, for machines: the text a person reads is
    shown."""
    found = ""
    for pod in demo.pods():
        for line in demo.log_of(_name(pod)).splitlines():
            if all(text in line for text in texts) and not line.startswith('{"seq"'):
                found = line
    return found


def _name(pod: client.V1Pod) -> str:
    return str(pod.metadata.name if pod.metadata else "")


def show_drift_repair(demo: DemoInstall) -> None:
    apps = client.AppsV1Api(demo.api)
    echo_step("Editing Deployment/shop/shop outside Git: replicas 1 -> 5 ...")
    apps.patch_namespaced_deployment("shop", "shop", {"spec": {"replicas": 5}}, field_manager="demo-edit")
    took = until(lambda: apps.read_namespaced_deployment("shop", "shop").spec.replicas == 1, 30, 0.05)
    click.echo(f"... the leader reverted it to 1 replica in {took:.2f} s." if took is not None else
               "... NOT reverted within 30 s; see the controller's output (kubectl logs).")  # fmt: skip


def show_review(demo: DemoInstall) -> None:
    overlay = demo.repo / TEAM_FOLDER / "kustomization.yaml"
    old = log_level(demo)
    new = "trace" if old != "trace" else "debug"

    def edit() -> None:
        overlay.write_text(_LOG_LEVEL.sub(lambda m: m.group(1) + new, overlay.read_text(), count=1))

    echo_step(f"alice pushes a change straight to main, unreviewed: LOG_LEVEL {old} -> {new} in {TEAM_FOLDER} "
              "(team shop's folder) ...")  # fmt: skip
    edit()
    pushed = signed_commit(demo.people, demo.repo, "alice", f"Log at {new} level in dev")
    refusal = f"revision {pushed[:12]} is refused"
    until(lambda: bool(logs_say(demo, refusal)), 30, 0.5)  # every Pod's whole output
    said = logs_say(demo, refusal)
    click.echo(f"... refused; the cluster keeps LOG_LEVEL={log_level(demo)}. The leader said:\n    {said or '-'}")
    demo.people.git(demo.repo, "alice", "revert", "--no-edit", "-S", "HEAD")
    click.echo("alice reverts it and makes the same change on a branch; carol merges it (signed) ...")
    merged = reviewed_change(demo.people, demo.repo, f"alice-log-{new}-{int(time.time())}", edit,
                             f"Log at {new} level in dev")  # fmt: skip
    show_reconcile_request(demo, merged)
    click.echo(f"  ConfigMap shop/shop-settings: LOG_LEVEL={log_level(demo)}.")


def show_policy_gate(demo: DemoInstall) -> None:
    echo_step(f"alice adds a privileged debug Pod to {TEAM_FOLDER} and carol merges it (the platform's "
              "policies/pod-security.yaml forbids it) ...")  # fmt: skip
    folder = demo.repo / TEAM_FOLDER
    overlay = folder / "kustomization.yaml"
    undo = reviewed_undo(demo, folder / "debug-pod.yaml", overlay)

    def edit() -> None:
        (folder / "debug-pod.yaml").write_text(DEBUG_POD)
        overlay.write_text(overlay.read_text().replace("  - ../base\n", "  - ../base\n  - debug-pod.yaml\n", 1))

    reviewed_change(demo.people, demo.repo, f"alice-debug-{int(time.time())}", edit, "Add a privileged debug shell")
    refused = until(lambda: ready_of(demo, "shop", "shop").get("reason") == "PolicyDenied", 60)
    exists = any(_name(p) == "debug-shell" for p in demo.core.list_namespaced_pod("shop").items)
    click.echo(f"... refused, nothing of it applied (Pod debug-shell exists: {exists}); Unit shop says why:"
               if refused is not None else "... Unit shop did not report it within 60 s:")  # fmt: skip
    units_table(demo, "-n", "shop")
    kubectl(demo, "get", "unit", "shop", "-n", "shop", "-o", LAST_ERROR)
    click.echo("")
    undo()


def label_sandbox(demo: DemoInstall, *, say_why: bool = True) -> float | None:
    """Namespace sandbox made, labelled enforce baseline, and alice's to edit, early in the story: the webhooks
    read a namespace's labels at most every NAMESPACE_TTL seconds, and one that read it before the label judged
    the hack-a-node Pod by the fail-closed default (restricted), not by the baseline the story tells of. When it
    was labelled (time.monotonic()), or None when it could not be."""
    try:
        prepare_sandbox(RawApi(demo.api), SANDBOX)
    except GitOpsGuardError as error:
        if say_why:
            click.echo(f"... namespace {SANDBOX} could not be made ready for the admission step: {error}")
        return None
    return time.monotonic()


def show_hack_a_node(demo: DemoInstall, *, labelled: float | None) -> None:
    """alice, who may edit namespace sandbox, runs the hack-a-node Pod; the webhook, reached through its
    Service, refuses it."""
    if labelled is None:  # early, an earlier demo's replica on its way out refused the label's webhook call
        labelled = label_sandbox(demo)
    if labelled is None:
        click.echo(f"\n(skipped the admission step: namespace {SANDBOX} is not ready; see above)")
        return
    time.sleep(max(0.0, labelled + NAMESPACE_TTL - time.monotonic()))  # the story's steps took longer till now
    echo_step(f"alice may edit namespace {SANDBOX}; the webhooks of both gitopsguard Pods (Service "
              f"{NAMESPACE}/gitopsguard-webhook) judge every namespace's Pods ...")  # fmt: skip
    until(lambda: _alice_refused(demo), 60, 1)
    overrides = json.dumps(HACK_A_NODE, separators=(",", ":"))
    args = ["-n", SANDBOX, "run", "my-pod", "--image", "alpine", "--restart=Never", f"--overrides={overrides}"]
    click.echo(f"alice: kubectl {' '.join(args[:-1])} --overrides='{overrides}'")
    done = subprocess.run([demo.kubectl, "--kubeconfig", str(demo.kubeconfig), "--context", "dev-alice", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    verdict = "refused; nothing was created" if done.returncode else "ADMITTED (it should not have been)"
    click.echo(f"... {verdict}. kubectl printed:\n    " + (done.stderr or done.stdout).strip().replace("\n", "\n    "))
    if (done.stderr or "").count(TWICE_SEEN) > 1:
        click.echo(TWICE)


def _alice_refused(demo: DemoInstall) -> bool:
    from gitopsguard.cluster import connect

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "my-pod", "namespace": SANDBOX}, **HACK_A_NODE}
    api = connect(demo.kubeconfig, "dev-alice")
    try:
        RawApi(api).call("POST", f"/api/v1/namespaces/{SANDBOX}/pods", "Pod/my-pod", body=pod,
                         query={"dryRun": "All"})  # fmt: skip
    except ForbiddenError as refused:
        return "denied by gitopsguard policy" in str(refused)
    except ClusterError:
        return False
    finally:
        api.close()  # type: ignore[no-untyped-call]  # the client's own method, unannotated
    return False


HAND_MADE = "Deployment/shop/hand-made"


def hand_made(*, read_only_root: bool) -> dict[str, Any]:
    """Deployment/shop/hand-made as someone writes it with kubectl: without the team label every Deployment from
    Git carries (policies/hand-made-workloads.yaml, which the live scan enforces, after a grace), and with or
    without the read-only root file system Unit shop's own policy requires (apps/shop/policies/, which
    admission enforces in namespace shop)."""
    labels = {"app": "hand-made"}
    container: dict[str, Any] = {"name": "web", "image": "ghcr.io/example/w:1"}
    if read_only_root:
        container["securityContext"] = {"readOnlyRootFilesystem": True}
    pod = {"metadata": {"labels": labels}, "spec": {"containers": [container]}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hand-made", "labels": labels},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": pod}}  # fmt: skip


def _create_hand_made(demo: DemoInstall, *, read_only_root: bool) -> str | None:
    """Creates it; None when created, else the API server's refusal (the webhook's message, indented)."""
    body: Any = hand_made(read_only_root=read_only_root)  # the client takes a plain body too
    try:
        client.AppsV1Api(demo.api).create_namespaced_deployment("shop", body)
    except client.ApiException as refused:
        message = str(json.loads(refused.body or "{}").get("message") or refused)
        return "    " + message[:1200].replace("\n", "\n    ")
    return None


def show_hand_made(demo: DemoInstall) -> None:
    """Two things judge a hand-made workload: admission, at once, by the policies of the namespace's Unit; the
    live scan, after a grace and a backup, by what only a workload already in the cluster can show (here: no
    team label, which Git's workloads all carry)."""
    echo_step(f"Creating {HAND_MADE} by hand, outside Git and without a team label ...")
    refusal = _create_hand_made(demo, read_only_root=False)
    if refusal is None:
        click.echo("... ADMITTED, though it writes to its root file system, which Unit shop's own policy forbids.")
    else:
        click.echo(f"... refused at admission by Unit shop's own policy, before it existed:\n{refusal}")
        click.echo("The same Deployment with a read-only root file system, as shop's policy asks ...")
        refusal = _create_hand_made(demo, read_only_root=True)
        if refusal is not None:
            click.echo(f"... refused again, so the live scan has nothing to remove:\n{refusal}")
            return
    click.echo(f"... admitted; the live scan backs it up and deletes it after its grace ({grace_of(demo.repo)}), "
               "as policies/hand-made-workloads.yaml says for workloads without a team label.")  # fmt: skip
    gone = until(lambda: not _exists(demo, "hand-made"), 60)
    said = logs_say(demo, HAND_MADE, "deleted after its grace period")
    click.echo(f"... removed {gone:.0f} s later. The leader said:\n    {said or '-'}" if gone is not None else
               "... not removed within 60 s; see the controller's output (kubectl logs).")  # fmt: skip


def _exists(demo: DemoInstall, name: str) -> bool:
    try:
        client.AppsV1Api(demo.api).read_namespaced_deployment(name, "shop")
    except client.ApiException:
        return False
    return True


def show_grant(demo: DemoInstall) -> None:
    echo_step(f"alice asks for `view` on namespace shop for {GRANT_SECONDS} s (a commit signed with her key) ...")
    click.echo(f"    before: alice can list pods in shop? {_alice_can_list(demo.kubeconfig)}")
    request_grant(demo.repo, demo.people)
    click.echo("carol, a security reviewer, merged it; the leader's grant keeper binds it ...")
    took = until(lambda: _alice_can_list(demo.kubeconfig) == "yes", 60, 0.25)
    click.echo(f"    now ({took:.1f} s later): alice can list pods in shop? yes" if took is not None else
               f"    not granted within 60 s: {_alice_can_list(demo.kubeconfig)}")  # fmt: skip
    if took is not None:
        gone = until(lambda: _alice_can_list(demo.kubeconfig) != "yes", 60, 0.25)
        click.echo(f"    after expiry: alice can list pods in shop? {_alice_can_list(demo.kubeconfig)}"
                   + ("" if gone is not None else " (still, 60 s later)"))  # fmt: skip


def show_handover(demo: DemoInstall) -> None:
    leader = holder(demo)
    # grace period 0 deletes the Pod at once, yet its process is still sent SIGTERM, and lets go of the Lease as it
    # stops; a real crash costs the Lease's duration (15 s, measured in tests/integration/test_leader_election.py)
    echo_step(f"Deleting the leader Pod {leader} at once (grace period 0; it lets go of its Lease as it stops) ...")
    killed = time.monotonic()
    demo.core.delete_namespaced_pod(leader, NAMESPACE, grace_period_seconds=0)
    if until(lambda: holder(demo) not in {"", leader}, 60) is None:
        click.echo("... no other Pod took the Lease within 60 s; see kubectl get lease -n gitopsguard-system.")
        return
    click.echo(f"... {holder(demo)} took the Lease over {time.monotonic() - killed:.1f} s later (after a crash, "
               "which lets go of nothing: the Lease's duration, 15 s, after the last renewal).")  # fmt: skip
    overlay = demo.repo / TEAM_FOLDER / "kustomization.yaml"
    new = "info" if log_level(demo) != "info" else "debug"

    def edit() -> None:
        overlay.write_text(_LOG_LEVEL.sub(lambda m: m.group(1) + new, overlay.read_text(), count=1))

    reviewed_change(demo.people, demo.repo, f"after-handover-{int(time.time())}", edit, f"Log at {new} level")
    took = until(lambda: log_level(demo) == new, 60)
    click.echo(f"carol merged LOG_LEVEL -> {new}; the new leader applied it in {took:.1f} s." if took is not None
               else f"carol merged LOG_LEVEL -> {new}; NOT applied within 60 s.")  # fmt: skip


def show_rollout(demo: DemoInstall) -> bool:
    """Both replicas Ready (``demo_incluster_rollout.py``), before the steps that need both: False when the
    rollout failed (what went wrong is shown; the story stops)."""
    try:
        done_at = demo.rollout.wait()
    except GitOpsGuardError as error:
        click.echo(f"\nThe rollout did not complete, so the story stops here: {error}")
        return False
    click.echo(f"\nBoth gitopsguard Pods are Ready: the rollout completed {done_at - demo.started:.0f} s after the "
               "start (the standby serves admission once it judges by the leader's applied revision).")  # fmt: skip
    return True


def tell(demo: DemoInstall) -> bool:
    """The whole story; False when the first apply did not happen or the rollout failed (nothing after it can
    be shown)."""
    if not show_units_ready(demo):
        return False
    labelled = label_sandbox(demo, say_why=False)  # else again at its step, once both replicas are Ready
    # on the leader alone, while the standby becomes Ready (demo_incluster_rollout.py)
    _steps(demo, show_drift_repair, show_review, show_confinement, show_policy_gate, show_suspend)
    if not show_rollout(demo):
        return False
    hack_a_node = partial(show_hack_a_node, labelled=labelled)
    _steps(demo, hack_a_node, show_hand_made, show_grant, show_handover)  # every replica's webhook, a handover
    return True


def _steps(demo: DemoInstall, *steps: Callable[[DemoInstall], None]) -> None:
    for step in steps:
        try:
            step(demo)
        except (GitOpsGuardError, client.ApiException, subprocess.SubprocessError) as error:
            click.echo(f"... this step failed: {error}; the demo goes on.")


HINTS = """
gitopsguard runs as two Pods in {namespace}; the demo repository {repo} is served to them by git daemon.
  Try:  export KUBECONFIG={kubeconfig} {path}
        kubectl get pods -A -o wide; kubectl logs -n {namespace} -l app.kubernetes.io/name=gitopsguard -f
        kubectl get units -A; gitopsguard reconcile unit shop -n shop; gitopsguard suspend unit shop -n shop
        kubectl scale deployment shop -n shop --replicas=5      # reverted within a second (unless suspended)
        cd {repo} && git checkout -b my-change && $EDITOR apps/shop/dev/kustomization.yaml && git commit -am 'mine'
        git checkout main && git -c user.signingkey={carol} merge --no-ff --no-edit -S my-change  # carol: applied
  Stop it all: make demo-down
"""


def hints(demo: DemoInstall) -> str:
    """What to try next; the first line puts the venv's kubectl and gitopsguard on PATH (``demo.on_path``)."""
    return HINTS.format(namespace=NAMESPACE, repo=demo.repo, kubeconfig=demo.kubeconfig, path=on_path(),
                        carol=demo.people.key("carol"))  # fmt: skip


def run_incluster_demo() -> int:
    """`make demo`: install gitopsguard as Pods on the dev cluster's node and tell the story."""
    from gitopsguard.commands.demo_incluster import install_demo
    from gitopsguard.devcluster.progress import StagedProgress

    demo = install_demo(StagedProgress())
    started = demo.started
    click.echo(f"\ngitopsguard is installed: two Pods running, one leading and Ready, {time.monotonic() - started:.0f} "
               "s after the start.")  # fmt: skip
    told = tell(demo)
    click.echo(hints(demo))
    click.echo(f"The demo took {time.monotonic() - started:.0f} s.")
    return 0 if told else 1
