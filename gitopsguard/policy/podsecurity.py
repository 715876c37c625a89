"""Kubernetes Pod Security Admission, as a pure function: what the namespace labels
``pod-security.kubernetes.io/{enforce,audit,warn}`` and their ``-version`` labels mean for one request.

The semantics are Kubernetes' own (kubernetes/pod-security-admission, ``api/helpers.go`` and
``admission/admission.go``), so that a cluster that has its own Pod Security Admission and gitopsguard agree:

- A missing label takes the operator's default (privileged at latest, unless configured). An invalid
  ``enforce`` level is restricted and an invalid version is latest (fail closed); an invalid ``warn`` or
  ``audit`` level is privileged (they only inform). ``warn`` follows an explicit, stricter ``enforce`` when
  it has no label of its own. Versions newer than known are evaluated as the newest.
- Pods are enforced; warnings are returned only for a Pod that is not denied; audit is computed either way.
  The pod templates of Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, ReplicationController
  and PodTemplate get warn and audit only. Other kinds, DELETE and CONNECT, and the subresources PSA ignores
  (exec, attach, binding, eviction, log, portforward, proxy, status; any subresource of a workload) pass.
  The ``ephemeralcontainers`` subresource is checked like the Pod.
- A Pod UPDATE that changes no container image and adds no container is not checked (the rest of a pod spec
  is immutable, so it cannot have become worse).
- Exemptions are operator configuration: usernames, runtime classes, namespaces.
- Namespaces: invalid labels are refused on create, and on update unless the old object had the same errors.
  Tightening ``enforce`` on update warns about the existing Pods the caller passes in (I/O is the caller's).

Findings come from the same controls as the pss-baseline and pss-restricted packs (``packs/pss.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gitopsguard.model import KubeObject, ObjectKey
from gitopsguard.policy.model import Finding, Severity
from gitopsguard.policy.packs import pss
from gitopsguard.policy.pods import dig

PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
LEVELS = ("privileged", "baseline", "restricted")
LABEL_CODE = "GG1100"  # Pod Security cannot decide: a namespace's labels are invalid, or an object unreadable
PODS_CODE = "GG1099"  # existing pods violate a namespace's new enforce level
IGNORED_POD_SUBRESOURCES = frozenset({"exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status"})
# (API group, kind) of every resource PSA reads a pod spec from; the Pod itself is the one it enforces.
POD_TEMPLATE_KINDS = frozenset(
    {("", "ReplicationController"), ("", "PodTemplate"), ("apps", "ReplicaSet"), ("apps", "Deployment"),
     ("apps", "StatefulSet"), ("apps", "DaemonSet"), ("batch", "Job"), ("batch", "CronJob")}
)  # fmt: skip


@dataclass(frozen=True)
class LevelVersion:
    level: str = "privileged"
    version: str = "latest"  # "latest" or "v1.x", as Kubernetes prints it

    def __str__(self) -> str:
        return f"{self.level}:{self.version}"

    @property
    def minor(self) -> int:
        return pss.parse_version(self.version)


@dataclass(frozen=True)
class NamespacePolicy:
    enforce: LevelVersion = LevelVersion()
    audit: LevelVersion = LevelVersion()
    warn: LevelVersion = LevelVersion()

    def mode(self, name: str) -> LevelVersion:
        return {"enforce": self.enforce, "audit": self.audit, "warn": self.warn}[name]

    @property
    def fully_privileged(self) -> bool:
        return all(self.mode(m).level == "privileged" for m in MODES)


@dataclass(frozen=True)
class Exemptions:
    """Operator configuration, as Kubernetes' PodSecurityConfiguration ``exemptions``."""

    usernames: frozenset[str] = frozenset()
    runtime_classes: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()


NO_EXEMPTIONS = Exemptions()
DEFAULTS = NamespacePolicy()  # Kubernetes' own: privileged at latest in every mode
# What a control raises on an object of a shape it did not expect (a string where a map belongs).
_SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError, RecursionError)


@dataclass(frozen=True)
class PodSecurityVerdict:
    enforce: tuple[Finding, ...] = ()  # deny the request (Pods, and Namespaces with invalid labels)
    warn: tuple[Finding, ...] = ()  # returned as admission warnings
    audit: tuple[Finding, ...] = ()  # written as audit records
    policy: NamespacePolicy = field(default_factory=NamespacePolicy)  # the labels as evaluated
    errors: tuple[str, ...] = ()  # invalid labels, each naming its label (Kubernetes audits them as "error")
    exempt: str = ""  # "namespace", "user" or "runtimeClass" when an exemption let the request through

    @property
    def allowed(self) -> bool:
        return not self.enforce


def _level(value: object) -> str | None:
    return value if isinstance(value, str) and value in LEVELS else None


def _version(value: object) -> str | None:
    try:
        pss.parse_version(value)
    except pss.BadVersionError:
        return None
    return str(value)  # already canonical: the pattern allows no leading zeros


def namespace_policy(
    labels: Mapping[str, Any], defaults: NamespacePolicy = DEFAULTS
) -> tuple[NamespacePolicy, tuple[str, ...]]:
    """The policy a namespace's labels set, and one message per invalid label."""
    errors: list[str] = []
    modes = {m: defaults.mode(m) for m in MODES}
    for mode in MODES:
        level, version = modes[mode].level, modes[mode].version
        if PREFIX + mode in labels:
            raw = labels[PREFIX + mode]
            level = _level(raw) or ("restricted" if mode == "enforce" else "privileged")
            if _level(raw) is None:
                errors.append(f"label {PREFIX}{mode}={raw!r} must be one of privileged, baseline, restricted")
        if PREFIX + mode + "-version" in labels:
            raw = labels[PREFIX + mode + "-version"]
            version = _version(raw) or "latest"
            if _version(raw) is None:
                errors.append(f'label {PREFIX}{mode}-version={raw!r} must be "latest" or "v1.x"')
        modes[mode] = LevelVersion(level, version)
    enforce_set = PREFIX + "enforce" in labels and _level(labels[PREFIX + "enforce"]) is not None
    warn = modes["warn"]
    if enforce_set and PREFIX + "warn" not in labels and _stricter(modes["enforce"].level, warn.level):
        version = warn.version if PREFIX + "warn-version" in labels else modes["enforce"].version
        modes["warn"] = LevelVersion(modes["enforce"].level, version)
    return NamespacePolicy(modes["enforce"], modes["audit"], modes["warn"]), tuple(errors)


def _stricter(a: str, b: str) -> bool:
    return LEVELS.index(a) > LEVELS.index(b)


def pod_security(
    obj: KubeObject, namespace_labels: Mapping[str, Any], *, namespace: str, username: str = "",
    exemptions: Exemptions = NO_EXEMPTIONS, operation: str = "CREATE", old: KubeObject | None = None,
    subresource: str = "", defaults: NamespacePolicy = DEFAULTS, existing_pods: Sequence[KubeObject] = (),
    kubernetes_minor: int | None = None,
) -> PodSecurityVerdict:  # fmt: skip
    """What Kubernetes Pod Security Admission decides for one admission request.

    ``namespace_labels`` are the labels of the request's namespace (of ``obj`` itself for a Namespace);
    ``old`` is the object before an UPDATE; ``defaults`` the operator's policy for unlabelled namespaces;
    ``existing_pods`` are the namespace's Pods, for a Namespace UPDATE that tightens ``enforce`` (the caller
    lists them; Kubernetes checks at most 3,000); ``kubernetes_minor`` the cluster's 1.x release, to agree with
    a cluster's own Pod Security Admission, which evaluates every newer version (and latest) as its own release
    (None: the newest this knows, for a cluster without one, such as 1.20). Never raises on an object of an
    odd shape (a string where a map belongs): a Pod the controls cannot read is refused wherever ``enforce``
    is not privileged."""
    if operation not in ("CREATE", "UPDATE"):
        return PodSecurityVerdict()
    newest = pss.LATEST if kubernetes_minor is None else max(0, min(kubernetes_minor, pss.LATEST))
    kind = (_group(obj), str(obj.get("kind")))
    if kind == ("", "Namespace"):
        if subresource:
            return PodSecurityVerdict()
        return _namespace(obj, namespace, exemptions, operation, old, defaults, existing_pods, newest)
    if kind == ("", "Pod"):
        if subresource in IGNORED_POD_SUBRESOURCES:
            return PodSecurityVerdict()
    elif kind not in POD_TEMPLATE_KINDS or subresource:
        return PodSecurityVerdict()
    exempt = _exempt_request(namespace, username, exemptions)
    if exempt:
        return PodSecurityVerdict(exempt=exempt)
    policy, errors = namespace_policy(namespace_labels, defaults)
    pod = kind == ("", "Pod")
    quiet = policy.fully_privileged if pod else policy.warn.level == policy.audit.level == "privileged"
    if quiet and not errors:
        return PodSecurityVerdict(policy=policy)
    try:
        if pod and operation == "UPDATE" and old is not None and not _significant_update(obj, old):
            return PodSecurityVerdict(policy=policy, errors=errors)
        if _runtime_class(obj) in exemptions.runtime_classes:
            return PodSecurityVerdict(policy=policy, errors=errors, exempt="runtimeClass")
        return _evaluate(obj, policy, errors, newest, enforce=pod)
    except _SHAPE_ERRORS as error:
        return _unreadable(obj, policy, errors, error, enforce=pod)


def _unreadable(
    obj: KubeObject, policy: NamespacePolicy, errors: tuple[str, ...], error: Exception, *, enforce: bool
) -> PodSecurityVerdict:
    """Fail closed: what the controls cannot read violates every level but privileged."""
    why = f"{type(error).__name__}: {str(error)[:200]}"
    reason = f"{ObjectKey.of(obj)}: Pod Security cannot read it ({why}); not compliant"

    def finding(mode: str) -> tuple[Finding, ...]:
        lv = policy.mode(mode)
        return () if lv.level == "privileged" else (
            Finding(f"{PREFIX}{mode}={lv}", LABEL_CODE, "", lv.level, Severity.HIGH, reason, "",
                    "fix the object's shape", mode == "enforce"),)  # fmt: skip

    denied = finding("enforce") if enforce else ()
    return PodSecurityVerdict(denied, () if denied else finding("warn"), finding("audit"), policy, errors)


def _evaluate(
    obj: KubeObject, policy: NamespacePolicy, errors: tuple[str, ...], newest: int, *, enforce: bool
) -> PodSecurityVerdict:
    found = {m: _findings(obj, m, policy.mode(m), newest) for m in MODES if enforce or m != "enforce"}
    denied = found.get("enforce", ())
    warn = () if denied else found["warn"]  # Kubernetes warns only about what it lets in
    return PodSecurityVerdict(denied, warn, found["audit"], policy, errors)


def _findings(obj: KubeObject, mode: str, lv: LevelVersion, newest: int) -> tuple[Finding, ...]:
    hits = pss.evaluate_pod(obj, lv.level, min(lv.minor, newest)) if lv.level != "privileged" else []
    name = f"{PREFIX}{mode}={lv}"
    return tuple(Finding(name, h.code, h.control, h.level, h.severity or Severity.HIGH, h.message, h.path, h.fix,
                         mode == "enforce") for h in hits)  # fmt: skip


def _group(obj: KubeObject) -> str:
    api_version = str(obj.get("apiVersion") or "")
    return api_version.rpartition("/")[0]


def _exempt_request(namespace: str, username: str, exemptions: Exemptions) -> str:
    if namespace and namespace in exemptions.namespaces:
        return "namespace"
    if username and username in exemptions.usernames:
        return "user"
    return ""


def _runtime_class(obj: KubeObject) -> str | None:
    view = pss.pod_view(obj)
    name = view.spec.get("runtimeClassName") if view is not None else None
    return name if isinstance(name, str) and name else None


def _significant_update(new: KubeObject, old: KubeObject) -> bool:
    """Whether a Pod UPDATE can have changed what PSA checks: a container added or removed, or an image
    changed (anything else in a pod spec is immutable). Shapes it cannot compare count as significant."""
    new_spec, old_spec = dig(new, "spec"), dig(old, "spec")
    if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
        return True
    if _seccomp_annotations(new) != _seccomp_annotations(old):  # as Kubernetes' isSignificantPodUpdate: a 1.20
        return True  # kubelet reads these on a container restart (red team)
    for list_field in ("containers", "initContainers"):
        now, before = new_spec.get(list_field) or [], old_spec.get(list_field) or []
        if not isinstance(now, list) or not isinstance(before, list) or len(now) != len(before):
            return True
        if any(_image(a) != _image(b) for a, b in zip(now, before, strict=True)):
            return True
    now, before = new_spec.get("ephemeralContainers") or [], old_spec.get("ephemeralContainers") or []
    if not isinstance(now, list) or not isinstance(before, list):
        return True
    old_images = {c["name"]: _image(c) for c in before if isinstance(c, dict) and isinstance(c.get("name"), str)}
    return any(not isinstance(c, dict) or not isinstance(c.get("name"), str) or c["name"] not in old_images
               or old_images[c["name"]] != _image(c) for c in now)  # fmt: skip


SECCOMP_POD = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER = "container.seccomp.security.alpha.kubernetes.io/"


def _seccomp_annotations(pod: KubeObject) -> object:
    annotations = dig(pod, "metadata", "annotations")
    if not isinstance(annotations, dict):
        return annotations if annotations is None else object()  # an odd shape never equals another
    return {
        k: v
        for k, v in annotations.items()
        if isinstance(k, str)
        and (
            k == "seccomp.security.alpha.kubernetes.io/pod"
            or k.startswith("container.seccomp.security.alpha.kubernetes.io/")
        )
    }


def _image(container: Any) -> object:
    # a container that is not a mapping has no comparable image: a fresh object never equals another
    return container.get("image") if isinstance(container, dict) else object()


def labels_of(obj: KubeObject | None) -> Mapping[str, Any]:
    labels = dig(obj, "metadata", "labels")
    return labels if isinstance(labels, dict) else {}


def _namespace(
    obj: KubeObject, namespace: str, exemptions: Exemptions, operation: str, old: KubeObject | None,
    defaults: NamespacePolicy, pods: Sequence[KubeObject], newest: int,
) -> PodSecurityVerdict:  # fmt: skip
    """A Namespace CREATE or UPDATE: invalid labels are refused; a tightened enforce warns about its Pods."""
    name = namespace or str(dig(obj, "metadata", "name") or "")
    policy, errors = namespace_policy(labels_of(obj), defaults)
    old_policy, old_errors = namespace_policy(labels_of(old), defaults)
    if errors and (operation == "CREATE" or old is None or old_errors != errors):
        refused = tuple(_label_finding(name, error, enforced=True) for error in errors)
        return PodSecurityVerdict(enforce=refused, policy=policy, errors=errors)
    exempt = name in exemptions.namespaces
    if operation == "UPDATE" and not exempt and _tightened(policy.enforce, old_policy.enforce):
        return PodSecurityVerdict(warn=_existing_pods(name, policy.enforce, pods, exemptions, newest), policy=policy)
    if exempt and (operation == "CREATE" or _tightened(policy.enforce, old_policy.enforce)):
        ignored = _exempt_warning(name, policy, labels_of(obj), defaults)
        return PodSecurityVerdict(warn=ignored, policy=policy, exempt="namespace")
    return PodSecurityVerdict(policy=policy)


def _tightened(new: LevelVersion, old: LevelVersion) -> bool:
    if new == old or new.level == "privileged":
        return False
    return new.version != old.version or _stricter(new.level, old.level)


def _label_finding(namespace: str, message: str, *, enforced: bool) -> Finding:
    label = message.split()[1].partition("=")[0] if message.startswith("label ") else ""
    return Finding(f"{PREFIX}labels", LABEL_CODE, "Pod Security labels", "", Severity.HIGH,
                   f"Namespace/{namespace}: {message}", f"metadata.labels[{label}]" if label else "metadata.labels",
                   "use privileged, baseline or restricted, and latest or v1.x (such as v1.35)", enforced)  # fmt: skip


def _exempt_warning(
    name: str, policy: NamespacePolicy, labels: Mapping[str, Any], defaults: NamespacePolicy
) -> tuple[Finding, ...]:
    equivalent = all(_equivalent(policy.mode(m), defaults.mode(m)) for m in MODES)
    set_here = [f"{m}={policy.mode(m)}" for m in MODES if policy.mode(m).level != "privileged"
                and (PREFIX + m in labels or PREFIX + m + "-version" in labels)]  # fmt: skip
    if policy.fully_privileged or equivalent or not set_here:
        return ()
    message = f'namespace "{name}" is exempt from Pod Security, and the policy ({", ".join(set_here)}) will be ignored'
    return (replace(_label_finding(name, message, enforced=False), fix="remove the labels, or the exemption"),)


def _equivalent(a: LevelVersion, b: LevelVersion) -> bool:
    return a == b or a.level == b.level == "privileged"


def _existing_pods(
    namespace: str, enforce: LevelVersion, pods: Sequence[KubeObject], exemptions: Exemptions, newest: int
) -> tuple[Finding, ...]:
    """One warning per existing Pod the new enforce level would refuse, naming its controls."""
    found = []
    for pod in pods:
        try:
            if _runtime_class(pod) in exemptions.runtime_classes:
                continue
            controls = sorted({h.control for h in pss.evaluate_pod(pod, enforce.level, min(enforce.minor, newest))})
        except _SHAPE_ERRORS:
            controls = ["(unreadable)"]
        if controls:
            pod_name = dig(pod, "metadata", "name")
            found.append(Finding(f"{PREFIX}enforce={enforce}", PODS_CODE, ", ".join(controls), enforce.level,
                                 Severity.HIGH, f"Namespace/{namespace}: existing pod {pod_name!r} violates the new "
                                 f'PodSecurity enforce level "{enforce}": {", ".join(controls)}', "",
                                 "fix or replace the pod before it restarts", False))  # fmt: skip
    return tuple(found)
