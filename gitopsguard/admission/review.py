"""The admission decision (pure): a request, the policies of the last applied revision, the deny level and
the clock in; the verdict and its AdmissionReview response out.

The findings come from the one evaluator the gate, ``check`` and the live scan use (``judge_object``: the
same policies, exceptions, severities), and an object is denied exactly when the gate would deny it: a
finding of an enforcing policy at the deny level that no unexpired exception covers. The validating webhook
judges the object as the API server would store it; our mutating webhook has already added what the
policies add (the gate applies its mutated body, the API server applies our patch), so both see the same
object. An update is denied only for the findings it brings (see ``_standing_before``).

``pod_security`` is the seam for namespace Pod Security labels (``pod-security.kubernetes.io/*``): given the
object, its namespace's labels, the namespace, the user, the operation and the old object, it returns the
findings to enforce, to warn about and to audit. Enforced ones deny whatever the deny level (as Pod Security Admission
does); warned ones become warnings; audited ones are recorded.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gitopsguard.admission.patch import Operation, mutations
from gitopsguard.admission.request import REVIEW_VERSION, AdmissionRequest
from gitopsguard.admission.text import message_lines, warning_lines
from gitopsguard.model import KubeObject
from gitopsguard.policy import DenyLevel, Finding, PolicySet, judge_object
from gitopsguard.policy.compose import Governance
from gitopsguard.policy.model import Context, PolicyException

PodSecurityFindings = tuple[tuple[Finding, ...], tuple[Finding, ...], tuple[Finding, ...]]  # enforce, warn, audit
# (object, namespace labels (None: the namespace could not be read), namespace, username, operation, old object
# or None) -> findings; admission/podsecurity.py connects it to policy/podsecurity.py's decision.
PodSecurity = Callable[[KubeObject, Mapping[str, str] | None, str, str, str, KubeObject | None], PodSecurityFindings]
JUDGED = frozenset({"CREATE", "UPDATE"})
NOT_READY = 503  # the status of a denial for want of policies to judge by (the API server passes it on)
IMMUTABLE_SPECS = frozenset({("", "Pod"), ("batch", "Job")})  # not mutated on UPDATE (their specs are fixed)
BREAK_GLASS = "gitopsguard.io/admission"  # a Namespace label; "disabled" turns admission off inside it
# What a policy or mutation raises on an object of a shape it did not expect: the API server decodes built-in
# kinds into their types before admission, but anyone who reaches the port can send any shape. As at the
# gate (gate.py), such an object is denied with its name, never admitted unjudged.
SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError, RecursionError)


# The control plane's own users: what they write (aggregated ClusterRoles, ReplicaSets, garbage collection)
# follows from objects already judged or from the cluster's own configuration, and a denial would wedge the
# cluster itself. No tenant can authenticate as them; whoever holds their credentials holds the cluster
# already. Pods are judged whoever creates them, as Pod Security Admission does: otherwise a policy that
# matches only Pods would be dodged by wrapping the Pod in a Deployment (its ReplicaSet controller creates
# the Pod), and a refused Pod only leaves its controller reporting the refusal.
CONTROL_PLANE_USERS = frozenset({"system:kube-controller-manager", "system:kube-scheduler", "system:apiserver"})
# The controller-manager's own controllers when it runs with --use-service-account-credentials (named: any other
# account in kube-system is an add-on, a dashboard or a Helm tiller, and is judged like anyone; red team).
CONTROLLER_ACCOUNTS = frozenset(f"system:serviceaccount:kube-system:{name}" for name in (
    "attachdetach-controller", "bootstrap-signer", "certificate-controller", "clusterrole-aggregation-controller",
    "cronjob-controller", "daemon-set-controller", "deployment-controller", "disruption-controller",
    "endpoint-controller", "endpointslice-controller", "endpointslicemirroring-controller",
    "ephemeral-volume-controller", "expand-controller", "generic-garbage-collector", "horizontal-pod-autoscaler",
    "job-controller", "namespace-controller", "node-controller", "persistent-volume-binder", "pod-garbage-collector",
    "pv-protection-controller", "pvc-protection-controller", "replicaset-controller", "replication-controller",
    "resourcequota-controller", "root-ca-cert-publisher", "route-controller", "service-account-controller",
    "service-controller",
    "statefulset-controller", "token-cleaner", "ttl-after-finished-controller", "ttl-controller"))  # fmt: skip
CONTROL_PLANE_GROUPS = frozenset({"system:nodes"})
# Judged whoever makes them: a Pod (its controller would else wrap it) and a Job (a CronJob's controller
# makes them from a template a Job-only policy never saw).
ALWAYS_JUDGED = frozenset({("", "Pod"), ("batch", "Job")})


def control_plane(request: AdmissionRequest) -> bool:
    """Whether the request comes from the control plane itself and is not a Pod or Job (admitted unjudged)."""
    if (request.group, request.kind) in ALWAYS_JUDGED:
        return False
    return (request.username in CONTROL_PLANE_USERS or request.username in CONTROLLER_ACCOUNTS
            or bool(CONTROL_PLANE_GROUPS.intersection(request.groups)))  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    request: AdmissionRequest
    allowed: bool
    denying: tuple[Finding, ...] = ()
    warning: tuple[Finding, ...] = ()
    audit: tuple[Finding, ...] = ()  # recorded only (Pod Security audit level)
    excepted: tuple[tuple[Finding, PolicyException], ...] = ()
    patch: tuple[Operation, ...] = ()
    reason: str = ""  # why it was denied when no finding says it (no policies yet, an unreadable object)
    code: int = 403
    revision: str = ""  # of the policies it was judged by
    break_glass: str = ""  # "on" or "off" when this request switches a namespace's break glass
    owners: tuple[str, ...] = ()  # where each denying policy a Unit added comes from (its file and line)

    @property
    def policies(self) -> frozenset[str]:
        return frozenset(f.policy for f in (*self.denying, *self.warning))


@dataclass(frozen=True)
class Judgement:
    """What the webhook judges with: swapped whole when the controller applies a new revision, or a Unit does.
    ``policies`` are the root's (the platform's); ``governance``, under ``run --root``, adds each Unit's own
    in the namespaces it targets, as the gate and the live scan judge them (``policy/compose.py``)."""

    policies: PolicySet
    deny_level: DenyLevel
    revision: str = ""
    governance: Governance | None = None
    pending: str = ""  # why it cannot judge yet (the Units' own policies not read at start): every request refused

    def policies_for(self, request: AdmissionRequest) -> PolicySet:
        """The policies that govern the request's namespace; the root's alone for a cluster-scoped object (a
        Namespace included: the API server names the Namespace itself as a request's namespace)."""
        if self.governance is None or not request.namespace or (request.group, request.kind) == ("", "Namespace"):
            return self.policies
        return self.governance.for_namespace(request.namespace)

    def unknown(self, request: AdmissionRequest) -> str:
        """The Unit governing the request's namespace whose applied policies are not read yet ("" if none)."""
        if self.governance is None or (request.group, request.kind) == ("", "Namespace"):
            return ""
        return self.governance.unknown.get(request.namespace, "")


def validate(
    request: AdmissionRequest, judgement: Judgement | None, *, now: datetime, namespace: KubeObject | None,
    pod_security: PodSecurity | None = None,
) -> Verdict:  # fmt: skip
    """The validating webhook's verdict on one request."""
    body = _judged(request)
    if body is None:
        return Verdict(request, True)
    if judgement is None:  # fail closed: nothing is admitted unjudged
        return Verdict(request, False, reason=f"{request.subject}: gitopsguard has not applied a revision yet, so "
                       "it has no policies to judge by; retry in a minute, or see the controller's log")  # fmt: skip
    # Fail closed while a Unit's own policies are not read (judging by the root's alone would admit what they
    # forbid); answered 503, a server not ready yet, so that clients (our own Units' dry runs among them, in the
    # seconds a replica reads the Units at start) ask again shortly rather than give up
    unit = judgement.unknown(request)
    if judgement.pending or unit:
        why = judgement.pending or (f"the policies Unit {unit} applied to namespace {request.namespace} are not "
                                    "read yet")  # fmt: skip
        return Verdict(request, False, reason=f"{request.subject}: {why}; retry in a minute, or see the "
                       "controller's log", code=NOT_READY, revision=judgement.revision)  # fmt: skip
    try:
        standing, excepted = judge_object(body, judgement.policies_for(request), Context(namespace), now)
    except SHAPE_ERRORS as error:
        return Verdict(request, False, reason=_unjudgeable(request, error), code=400)
    blocks = judgement.deny_level.blocks
    denying = [f for f in standing if f.enforced and blocks(f.severity)]
    warning = [f for f in standing if not (f.enforced and blocks(f.severity))]
    if denying and request.operation == "UPDATE":  # deny what the update brings, warn about what stood before
        before = _standing_before(request, judgement, namespace, now)
        warning = [f for f in denying if _same(f) in before] + warning
        denying = [f for f in denying if _same(f) not in before]
    audit: tuple[Finding, ...] = ()
    if pod_security is not None:
        readable = namespace is not None or not request.namespace  # a cluster-scoped object names none
        labels = (((namespace or {}).get("metadata") or {}).get("labels") or {}) if readable else None
        enforce, warn, audit = pod_security(body, labels, request.namespace, request.username, request.operation,
                                            request.old)  # fmt: skip
        denying.extend(enforce)
        warning.extend(warn)
    return Verdict(request, not denying, tuple(denying), tuple(warning), audit, excepted,
                   revision=judgement.revision, break_glass=break_glass_switch(request),
                   owners=_owners(judgement.policies_for(request), denying))  # fmt: skip


def _owners(policies: PolicySet, denying: list[Finding]) -> tuple[str, ...]:
    """For each denying policy a Unit added (not the platform's): its file and line and whose it is, so that
    whoever is refused knows which team's rule it was and where to read it."""
    names = {f.policy for f in denying}
    return tuple(f"{p.origin}: policy {p.name} is Unit {p.owner}'s own (its spec.policiesPath)"
                 for p in policies.policies if p.owner and p.name in names)  # fmt: skip


def _same(finding: Finding) -> tuple[str, str, str, str]:
    return finding.policy, finding.code, finding.path, finding.message


def _standing_before(
    request: AdmissionRequest, judgement: Judgement, namespace: KubeObject | None, now: datetime
) -> set[tuple[str, str, str, str]]:
    """The findings the object had before this update. Controllers and the garbage collector update objects
    that predate admission (ownerReferences, labels, finalizers): denying what they did not bring would wedge
    them, so such findings are warned about, as Pod Security Admission lets metadata-only updates through, and
    left to the live scan. An old object that cannot be judged had none (fail closed)."""
    old = _namespaced(request.old, request.namespace) if request.old is not None else None
    if old is None:
        return set()
    try:
        standing, _ = judge_object(old, judgement.policies_for(request), Context(namespace), now)
    except SHAPE_ERRORS:
        return set()
    new = request.obj or {}
    # A finding stood before only if what it is about is unchanged: the whole container or volume its path
    # names (a privileged container given another image is a new finding; red team), else the whole spec.
    return {_same(f) for f in standing if _substance(old, f.path) == _substance(new, f.path)}


def _substance(body: KubeObject, path: str) -> Any:
    """What a finding at ``path`` is about in ``body``: the value up to the last list element the path names
    (``spec.template.spec.containers[0]``), or the whole path's value; everything but metadata and status
    when the path cannot be followed (a wildcard, a shape that changed)."""
    cut = path[: path.rindex("]") + 1] if "]" in path else path
    value: Any = body
    for name, index in _PATH_STEP.findall(cut):
        if name:
            value = value.get(name) if isinstance(value, dict) else _MISSING
        if index:
            if index == "*" or not isinstance(value, list) or int(index) >= len(value):
                return {key: item for key, item in body.items() if key not in ("metadata", "status")}
            value = value[int(index)]
        if value is _MISSING:
            return value
    return value


_PATH_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+|\*)\]")
_MISSING = object()


def break_glass_switch(request: AdmissionRequest) -> str:
    """ "on" when this request turns a namespace's break glass on, "off" when it turns it off, else ""."""
    if request.kind != "Namespace" or request.group:
        return ""

    def disabled(body: KubeObject | None) -> bool:
        labels = ((body or {}).get("metadata") or {}).get("labels")
        return isinstance(labels, dict) and labels.get(BREAK_GLASS) == "disabled"

    before, after = disabled(request.old), disabled(request.obj)
    return "" if before == after else "on" if after else "off"


def mutate_request(request: AdmissionRequest, judgement: Judgement | None) -> Verdict:
    """The mutating webhook's verdict: always allowed (validation denies), with the policies' patch."""
    body = _judged(request)
    if body is None or judgement is None:
        return Verdict(request, True)
    if request.operation == "UPDATE" and (request.group, request.kind) in IMMUTABLE_SPECS:
        return Verdict(request, True)  # a default added to a Pod made before the policy would make it unchangeable
    try:
        _, patch = mutations(body, judgement.policies_for(request).policies)
    except SHAPE_ERRORS as error:
        return Verdict(request, False, reason=_unjudgeable(request, error), code=400)
    return Verdict(request, True, patch=patch)


def _unjudgeable(request: AdmissionRequest, error: Exception) -> str:
    return (f"{request.subject}: the policies cannot judge this object ({type(error).__name__}: "
            f"{str(error)[:200]}); fix the object's shape")  # fmt: skip


def _judged(request: AdmissionRequest) -> KubeObject | None:
    """The object to judge, namespaced as the request says; None when there is nothing to judge (deletes,
    connects, subresources such as status, which cannot change what the policies check)."""
    namespace_label_path = (
        request.kind == "Namespace" and not request.group and request.sub_resource in ("status", "finalize")
    )  # a Namespace's labels can change through these: judged like the object
    if request.operation not in JUDGED or (request.sub_resource and not namespace_label_path) or request.obj is None:
        return None
    return _namespaced(request.obj, request.namespace)


def _namespaced(body: KubeObject, namespace: str) -> KubeObject:
    """``body`` in the request's namespace: the API server's, from the URL, whatever the object says."""
    metadata = body.get("metadata") or {}
    if namespace and metadata.get("namespace") != namespace:
        body = {**body, "metadata": {**metadata, "namespace": namespace}}
    return body


def refusal(uid: str, message: str, code: int = 400) -> dict[str, Any]:
    """An AdmissionReview denying a request that could not be judged at all."""
    return _review({"uid": uid, "allowed": False, "status": {"code": code, "message": message_lines([message])}})


def response(verdict: Verdict) -> dict[str, Any]:
    """The AdmissionReview answering ``verdict``'s request."""
    answer: dict[str, Any] = {"uid": verdict.request.uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        lines = [verdict.reason] if verdict.reason else [*(describe(f, "FAIL") for f in verdict.denying),
                                                         *verdict.owners]  # fmt: skip
        head = f"{verdict.request.subject}: denied by gitopsguard policy"
        reason = "ServiceUnavailable" if verdict.code == NOT_READY else "Forbidden"
        answer["status"] = {"code": verdict.code, "reason": reason, "message": message_lines([head, *lines])}
    if verdict.warning:
        answer["warnings"] = warning_lines([describe(f, "WARN") for f in verdict.warning])
    if verdict.patch:
        answer["patchType"] = "JSONPatch"
        answer["patch"] = base64.b64encode(json.dumps(list(verdict.patch)).encode()).decode()
    return _review(answer)


def describe(finding: Finding, outcome: str) -> str:
    """One finding in the spirit of MagTape: ``[FAIL] HIGH - <message> (<code>) at <path>: <how to fix>``."""
    where = f" at {finding.path}" if finding.path else ""
    fix = f": {finding.fix}" if finding.fix else ""
    return f"[{outcome}] {finding.severity.value} - {finding.message} ({finding.code}){where}{fix}"


def _review(answer: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": REVIEW_VERSION, "kind": "AdmissionReview", "response": answer}
