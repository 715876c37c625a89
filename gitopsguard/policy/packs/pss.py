"""The Kubernetes Pod Security Standards, every control of the baseline and restricted levels.

Each control looks at a Pod, or at the pod template of a workload, and at all three container lists.
Findings name the control exactly as the Pod Security Standards page does, and the level it belongs to.
Restricted includes baseline, as the standard defines it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from gitopsguard.model import KubeObject
from gitopsguard.policy.model import Context, Hit, Severity
from gitopsguard.policy.pods import PodView, dig, pod_metadata, view

BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"

Found = Iterator[tuple[str, str, str]]  # (field path, message, how to fix)
Control = Callable[[PodView], Found]


def _sc(path: str, node: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    value = node.get("securityContext")
    return f"{path}.securityContext", value if isinstance(value, dict) else {}


def _contexts(pod: PodView) -> Iterator[tuple[str, dict[str, Any]]]:
    """The pod's security context, then each container's."""
    yield _sc(pod.spec_path, pod.spec)
    for path, container in pod.containers():
        yield _sc(path, container)


def host_process(pod: PodView) -> Found:
    for path, sc in _contexts(pod):
        if dig(sc, "windowsOptions", "hostProcess") is True:
            yield f"{path}.windowsOptions.hostProcess", "Windows HostProcess is not allowed", "remove hostProcess"


def host_namespaces(pod: PodView) -> Found:
    spec_path, spec = pod.spec_path, pod.spec
    for name in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(name) is True:
            yield f"{spec_path}.{name}", f"{name} shares the node's namespace", f"remove {name} or set it to false"


def privileged(pod: PodView) -> Found:
    for path, container in pod.containers():
        if dig(container, "securityContext", "privileged") is True:
            yield (
                f"{path}.securityContext.privileged",
                f"container {container.get('name')!r} is privileged",
                "set securityContext.privileged to false",
            )


def capabilities_baseline(pod: PodView) -> Found:
    for path, container in pod.containers():
        added = dig(container, "securityContext", "capabilities", "add") or []
        extra = sorted(str(c) for c in added if str(c) not in BASELINE_CAPABILITIES)
        if extra:
            yield (
                f"{path}.securityContext.capabilities.add",
                f"container {container.get('name')!r} adds capabilities {', '.join(extra)}",
                "add only capabilities from the baseline list (for example NET_BIND_SERVICE)",
            )


def host_path(pod: PodView) -> Found:
    spec_path, spec = pod.spec_path, pod.spec
    for index, volume in enumerate(spec.get("volumes") or []):
        if isinstance(volume, dict) and volume.get("hostPath") is not None:
            yield (
                f"{spec_path}.volumes[{index}].hostPath",
                f"volume {volume.get('name')!r} mounts a host path",
                "use a configMap, secret, emptyDir or persistentVolumeClaim volume instead",
            )


def host_ports(pod: PodView) -> Found:
    for path, container in pod.containers():
        for index, port in enumerate(container.get("ports") or []):
            if isinstance(port, dict) and port.get("hostPort") not in (None, 0):
                yield (
                    f"{path}.ports[{index}].hostPort",
                    f"container {container.get('name')!r} binds host port {port.get('hostPort')}",
                    "remove hostPort and expose the pod through a Service",
                )


def app_armor(pod: PodView) -> Found:
    spec_path = pod.spec_path
    annotations = pod_metadata(pod.body).get("annotations") or {}
    meta_path = spec_path.rpartition(".")[0] + ".metadata.annotations" if "." in spec_path else "metadata.annotations"
    for key, value in sorted(annotations.items()):
        if key.startswith(APPARMOR_PREFIX) and value != "runtime/default" and not str(value).startswith("localhost/"):
            yield f"{meta_path}[{key}]", f"AppArmor profile {value!r} is not allowed", "use runtime/default"
    for path, sc in _contexts(pod):
        kind = dig(sc, "appArmorProfile", "type")
        if kind is not None and kind not in ("RuntimeDefault", "Localhost"):
            yield f"{path}.appArmorProfile.type", f"AppArmor profile type {kind!r} is not allowed", "use RuntimeDefault"


def se_linux(pod: PodView) -> Found:
    for path, sc in _contexts(pod):
        options = sc.get("seLinuxOptions") or {}
        if (options.get("type") or "") not in SELINUX_TYPES:
            yield f"{path}.seLinuxOptions.type", f"SELinux type {options['type']!r} is not allowed", "use container_t"
        for field in ("user", "role"):
            if options.get(field):
                yield f"{path}.seLinuxOptions.{field}", f"a custom SELinux {field} is not allowed", f"remove {field}"


def proc_mount(pod: PodView) -> Found:
    for path, container in pod.containers():
        value = dig(container, "securityContext", "procMount")
        if value not in (None, "Default"):
            yield f"{path}.securityContext.procMount", f"procMount {value!r} unmasks /proc", "remove procMount"


def seccomp_baseline(pod: PodView) -> Found:
    for path, sc in _contexts(pod):
        if dig(sc, "seccompProfile", "type") == "Unconfined":
            yield f"{path}.seccompProfile.type", "seccomp profile Unconfined is not allowed", "use RuntimeDefault"


def sysctls(pod: PodView) -> Found:
    spec_path, spec = pod.spec_path, pod.spec
    for index, sysctl in enumerate(dig(spec, "securityContext", "sysctls") or []):
        name = sysctl.get("name") if isinstance(sysctl, dict) else None
        if name not in SAFE_SYSCTLS:
            yield (
                f"{spec_path}.securityContext.sysctls[{index}].name",
                f"sysctl {name!r} is not in the safe set",
                "remove it, or use a safe sysctl",
            )


def volume_types(pod: PodView) -> Found:
    spec_path, spec = pod.spec_path, pod.spec
    for index, volume in enumerate(spec.get("volumes") or []):
        kinds = sorted(k for k in (volume if isinstance(volume, dict) else {}) if k != "name")
        for kind in (k for k in kinds if k not in RESTRICTED_VOLUMES):
            yield (
                f"{spec_path}.volumes[{index}].{kind}",
                f"volume {volume.get('name')!r} has type {kind}",
                "use configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected or secret",
            )


def _windows(spec: dict[str, Any]) -> bool:
    return bool(dig(spec, "os", "name") == "windows")


def privilege_escalation(pod: PodView) -> Found:
    spec = pod.spec
    if _windows(spec):
        return
    for path, container in pod.containers():
        if dig(container, "securityContext", "allowPrivilegeEscalation") is not False:
            yield (
                f"{path}.securityContext.allowPrivilegeEscalation",
                f"container {container.get('name')!r} may escalate privileges",
                "set securityContext.allowPrivilegeEscalation to false",
            )


def run_as_non_root(pod: PodView) -> Found:
    spec = pod.spec
    pod_level = dig(spec, "securityContext", "runAsNonRoot")
    for path, container in pod.containers():
        own = dig(container, "securityContext", "runAsNonRoot")
        if own is False or (own is None and pod_level is not True):
            yield (
                f"{path}.securityContext.runAsNonRoot",
                f"container {container.get('name')!r} may run as root",
                "set runAsNonRoot: true in the pod's or the container's securityContext",
            )


def run_as_non_root_user(pod: PodView) -> Found:
    for path, sc in _contexts(pod):
        if sc.get("runAsUser") == 0:
            yield f"{path}.runAsUser", "runAsUser 0 is root", "set runAsUser to a non-zero user id"


def seccomp_restricted(pod: PodView) -> Found:
    spec = pod.spec
    if _windows(spec) or dig(spec, "securityContext", "seccompProfile", "type") in ("RuntimeDefault", "Localhost"):
        return
    for path, container in pod.containers():
        if dig(container, "securityContext", "seccompProfile", "type") not in ("RuntimeDefault", "Localhost"):
            yield (
                f"{path}.securityContext.seccompProfile.type",
                f"container {container.get('name')!r} has no RuntimeDefault or Localhost seccomp profile",
                "set securityContext.seccompProfile.type: RuntimeDefault on the pod",
            )


def capabilities_restricted(pod: PodView) -> Found:
    spec = pod.spec
    if _windows(spec):
        return
    for path, container in pod.containers():
        caps = dig(container, "securityContext", "capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            yield (
                f"{path}.securityContext.capabilities.drop",
                f"container {container.get('name')!r} does not drop ALL",
                "add capabilities.drop: [ALL]",
            )
        extra = sorted(str(c) for c in caps.get("add") or [] if c != "NET_BIND_SERVICE")
        if extra:
            yield (
                f"{path}.securityContext.capabilities.add",
                f"container {container.get('name')!r} adds {', '.join(extra)}",
                "add only NET_BIND_SERVICE",
            )


# (code, control name as the Pod Security Standards page writes it, level, check)
CONTROLS: tuple[tuple[str, str, str, Control], ...] = (
    ("GG1101", "HostProcess", "baseline", host_process),
    ("GG1102", "Host Namespaces", "baseline", host_namespaces),
    ("GG1103", "Privileged Containers", "baseline", privileged),
    ("GG1104", "Capabilities", "baseline", capabilities_baseline),
    ("GG1105", "HostPath Volumes", "baseline", host_path),
    ("GG1106", "Host Ports", "baseline", host_ports),
    ("GG1107", "AppArmor", "baseline", app_armor),
    ("GG1108", "SELinux", "baseline", se_linux),
    ("GG1109", "/proc Mount Type", "baseline", proc_mount),
    ("GG1110", "Seccomp", "baseline", seccomp_baseline),
    ("GG1111", "Sysctls", "baseline", sysctls),
    ("GG1201", "Volume Types", "restricted", volume_types),
    ("GG1202", "Privilege Escalation", "restricted", privilege_escalation),
    ("GG1203", "Running as Non-root", "restricted", run_as_non_root),
    ("GG1204", "Running as Non-root user", "restricted", run_as_non_root_user),
    ("GG1205", "Seccomp", "restricted", seccomp_restricted),
    ("GG1206", "Capabilities", "restricted", capabilities_restricted),
)
_SEVERITY = {"baseline": Severity.HIGH, "restricted": Severity.MED}


def _evaluate(pod: PodView, level: str) -> list[Hit]:
    hits = []
    for code, control, control_level, check in CONTROLS:
        if control_level == level:
            for path, message, fix in check(pod):
                hits.append(Hit(code, f"{control}: {message}", path, _SEVERITY[level], control, level, fix))
    return hits


_last_baseline: tuple[PodView | None, list[Hit]] = (None, [])


def baseline(body: KubeObject, _ctx: Context) -> list[Hit]:
    global _last_baseline  # a one-entry memo: with both packs on, restricted reuses baseline's answer
    pod = view(body)
    if pod is None:
        return []
    cached_pod, hits = _last_baseline
    if cached_pod is not pod:
        hits = _evaluate(pod, "baseline")
        _last_baseline = (pod, hits)
    return list(hits)


def restricted(body: KubeObject, ctx: Context) -> list[Hit]:
    pod = view(body)
    return [] if pod is None else [*baseline(body, ctx), *_evaluate(pod, "restricted")]
