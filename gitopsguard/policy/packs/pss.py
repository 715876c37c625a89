"""The Kubernetes Pod Security Standards, baseline and restricted, at every version from v1.0 to the newest.

A version is what one Kubernetes release's Pod Security Admission checks: controls were added (Host Probes in
1.34), relaxed (user namespaces in 1.35, more safe sysctls) or moved from annotations to fields (seccomp in
1.19). ``latest``, and any version newer than this module knows, means the newest. Restricted includes
baseline, except where a restricted control replaces a baseline one (Capabilities from 1.22, Seccomp from
1.19, Volume Types, /proc Mount Type from 1.35), as Kubernetes evaluates it. Findings name the control as
the Pod Security Standards page does, and the level it belongs to.

Source of the facts: kubernetes/pod-security-admission, ``policy/check_*.go`` and ``policy/registry.go``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gitopsguard.model import KubeObject
from gitopsguard.policy.model import Check, Context, Hit, Severity
from gitopsguard.policy.packs import pss_controls as c
from gitopsguard.policy.packs.pss_controls import capabilities_baseline  # noqa: F401  (re-exported)
from gitopsguard.policy.pods import CONTAINER_FIELDS, PodView, dig, view

LATEST = 37  # the newest Kubernetes 1.x release whose Pod Security Standards this module checks
LEVELS = ("baseline", "restricted")
_VERSION = re.compile(r"v1\.(0|[1-9][0-9]*)")
_INT64 = 2**63 - 1  # Kubernetes parses the minor as a Go int: a larger one is not a version


class BadVersionError(ValueError):
    """Not a Pod Security Standards version."""


def parse_version(text: object) -> int:
    """The 1.x minor version ``text`` names: ``latest`` or ``v1.x`` (as the Kubernetes labels write it);
    a version newer than the newest known is the newest, as Kubernetes evaluates it."""
    if text == "latest":
        return LATEST
    match = _VERSION.fullmatch(text) if isinstance(text, str) else None
    if match is None or len(match.group(1)) > 19 or int(match.group(1)) > _INT64:
        raise BadVersionError(f'version {text!r} must be "latest" or "v1.x" (such as v1.{LATEST})')
    return min(int(match.group(1)), LATEST)


def version_name(minor: int) -> str:
    return f"v1.{minor}"


@dataclass(frozen=True)
class Revision:
    since: int  # the first Kubernetes 1.x minor version it applies to
    check: c.Control
    overrides: tuple[str, ...] = ()  # baseline controls (keys) this restricted one replaces


@dataclass(frozen=True)
class Standard:
    key: str
    code: str
    name: str  # as the Pod Security Standards page writes it
    level: str
    revisions: tuple[Revision, ...]  # by increasing ``since``

    def at(self, minor: int) -> Revision | None:
        return next((r for r in reversed(self.revisions) if r.since <= minor), None)


def _sysctls_at(minor: int) -> frozenset[str]:
    return frozenset().union(*(names for since, names in c.SYSCTLS_SINCE.items() if since <= minor))


STANDARDS: tuple[Standard, ...] = (
    Standard("hostProcess", "GG1101", "HostProcess", "baseline", (Revision(0, c.host_process),)),
    Standard("hostNamespaces", "GG1102", "Host Namespaces", "baseline", (Revision(0, c.host_namespaces),)),
    Standard("privileged", "GG1103", "Privileged Containers", "baseline", (Revision(0, c.privileged),)),
    Standard("capabilities", "GG1104", "Capabilities", "baseline", (Revision(0, c.capabilities_baseline),)),
    Standard("hostPath", "GG1105", "HostPath Volumes", "baseline", (Revision(0, c.host_path),)),
    Standard("hostPorts", "GG1106", "Host Ports", "baseline", (Revision(0, c.host_ports),)),
    Standard("appArmor", "GG1107", "AppArmor", "baseline", (Revision(0, c.app_armor),)),
    Standard("seLinux", "GG1108", "SELinux", "baseline",
             (Revision(0, c.se_linux(c.SELINUX_TYPES_1_0)), Revision(31, c.se_linux(c.SELINUX_TYPES)))),
    Standard("procMount", "GG1109", "/proc Mount Type", "baseline",
             (Revision(0, c.proc_mount), Revision(35, c.unless(c.user_namespace, c.proc_mount)))),
    Standard("seccomp", "GG1110", "Seccomp", "baseline",
             (Revision(0, c.seccomp_annotations), Revision(19, c.seccomp_baseline))),
    Standard("sysctls", "GG1111", "Sysctls", "baseline",
             tuple(Revision(since, c.sysctls(_sysctls_at(since))) for since in sorted(c.SYSCTLS_SINCE))),
    Standard("hostProbes", "GG1112", "Host Probes / Lifecycle Hooks", "baseline", (Revision(34, c.host_probes),)),
    Standard("volumeTypes", "GG1201", "Volume Types", "restricted", (Revision(0, c.volume_types, ("hostPath",)),)),
    Standard("privilegeEscalation", "GG1202", "Privilege Escalation", "restricted",
             (Revision(8, c.privilege_escalation), Revision(25, c.unless(c.windows, c.privilege_escalation)))),
    Standard("runAsNonRoot", "GG1203", "Running as Non-root", "restricted",
             (Revision(0, c.run_as_non_root), Revision(35, c.unless(c.user_namespace, c.run_as_non_root)))),
    Standard("runAsUser", "GG1204", "Running as Non-root user", "restricted",
             (Revision(23, c.run_as_user), Revision(35, c.unless(c.user_namespace, c.run_as_user)))),
    Standard("seccompRestricted", "GG1205", "Seccomp", "restricted",
             (Revision(19, c.seccomp_restricted, ("seccomp",)),
              Revision(25, c.unless(c.windows, c.seccomp_restricted), ("seccomp",)))),
    Standard("capabilitiesRestricted", "GG1206", "Capabilities", "restricted",
             (Revision(22, c.capabilities_restricted, ("capabilities",)),
              Revision(25, c.unless(c.windows, c.capabilities_restricted), ("capabilities",)))),
    Standard("procMountRestricted", "GG1207", "/proc Mount Type", "restricted",
             (Revision(35, c.proc_mount, ("procMount",)),)),
)  # fmt: skip
_SEVERITY = {"baseline": Severity.HIGH, "restricted": Severity.MED}


@lru_cache(maxsize=2 * (LATEST + 1))
def standards_at(level: str, minor: int) -> tuple[tuple[Standard, c.Control], ...]:
    """The controls ``level`` checks at Kubernetes 1.``minor``, each at its revision of that version:
    baseline's first, then restricted's, without the baseline controls a restricted one replaces."""
    if level not in LEVELS:
        raise BadVersionError(f"level {level!r} must be baseline or restricted")
    chosen = [(s, s.at(minor)) for s in STANDARDS if s.level == "baseline" or level == "restricted"]
    live = [(s, r) for s, r in chosen if r is not None]
    replaced = {key for s, r in live if s.level == "restricted" for key in r.overrides}
    return tuple((s, r.check) for s, r in live if s.key not in replaced)


_memo: tuple[PodView | None, dict[tuple[str, c.Control], list[Hit]]] = (None, {})


def _hits(pod: PodView, standard: Standard, control: c.Control) -> list[Hit]:
    """One control's hits, kept for the last pod: with both packs, or several versions, on one object each
    control runs once."""
    global _memo  # a one-entry memo; a read racing a write is only a miss (each thread keeps its own table)
    cached, table = _memo
    if cached is not pod:
        table = {}
        _memo = (pod, table)
    key = (standard.key, control)
    if key not in table:
        severity, name, level = _SEVERITY[standard.level], standard.name, standard.level
        table[key] = [Hit(standard.code, f"{name}: {message}", path, severity, name, level, fix)
                      for path, message, fix in control(pod)]  # fmt: skip
    return table[key]


def pod_view(body: KubeObject) -> PodView | None:
    """The pod a Pod, workload or PodTemplate describes; None for other kinds."""
    if body.get("kind") != "PodTemplate":
        return view(body)
    found = dig(body, "template", "spec")
    spec: dict[str, Any] = found if isinstance(found, dict) else {}
    as_pod = {"kind": "Pod", "metadata": dig(body, "template", "metadata") or {}, "spec": spec}
    boxes = tuple((f, f"template.spec.{f}[{i}]", x) for f in CONTAINER_FIELDS
                  for i, x in enumerate(spec.get(f) or []) if isinstance(x, dict))  # fmt: skip
    return PodView(as_pod, "template.spec", spec, boxes)


def evaluate_pod(body: KubeObject, level: str, minor: int = LATEST) -> list[Hit]:
    """Every hit of ``level`` at Kubernetes 1.``minor`` on a Pod, workload or PodTemplate; [] for other
    kinds and for level ``privileged``."""
    pod = pod_view(body)
    if pod is None or level == "privileged":
        return []
    return [hit for standard, control in standards_at(level, minor) for hit in _hits(pod, standard, control)]


def pack(level: str, version: str = "latest") -> Check:
    """The check of a pss pack at a version (BadVersionError when it is not one)."""
    minor = parse_version(version)
    standards_at(level, minor)  # a bad level fails here, when the policy loads, not on the first object

    def check(body: KubeObject, _ctx: Context) -> list[Hit]:
        return evaluate_pod(body, level, minor)

    return check


def baseline(body: KubeObject, ctx: Context) -> list[Hit]:
    return evaluate_pod(body, "baseline")


def restricted(body: KubeObject, ctx: Context) -> list[Hit]:
    return evaluate_pod(body, "restricted")
