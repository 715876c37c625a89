"""The Pod Security Standards controls, one function per control and revision.

Each looks at a Pod or a workload's pod template, across all three container lists (init, regular,
ephemeral), and yields (field path, message, how to fix) for every offending field. Which revision of which
control applies at which Kubernetes version is in ``pss.py``; the facts (allowed values, the version each
control changed) follow kubernetes/pod-security-admission ``policy/check_*.go``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from gitopsguard.policy.pods import PodView, dig, pod_metadata

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
# The safe sysctls, by the Kubernetes minor version that added them to the Pod Security Standards.
SYSCTLS_SINCE: dict[int, frozenset[str]] = {
    0: frozenset(
        {
            "kernel.shm_rmid_forced",
            "net.ipv4.ip_local_port_range",
            "net.ipv4.ip_unprivileged_port_start",
            "net.ipv4.tcp_syncookies",
            "net.ipv4.ping_group_range",
        }
    ),
    27: frozenset({"net.ipv4.ip_local_reserved_ports"}),
    29: frozenset(
        {
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl",
            "net.ipv4.tcp_keepalive_probes",
        }
    ),
    32: frozenset({"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}),
    37: frozenset({"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}),
}
SAFE_SYSCTLS = frozenset().union(*SYSCTLS_SINCE.values())  # the newest safe set
SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES = SELINUX_TYPES_1_0 | {"container_engine_t"}  # since 1.31
RESTRICTED_VOLUMES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected",
     "secret"}
)  # fmt: skip
APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
SECCOMP_TYPES = ("RuntimeDefault", "Localhost")

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


def _annotations(pod: PodView) -> tuple[str, dict[str, Any]]:
    """(field path, annotations) of the pod or of the workload's pod template."""
    spec_path = pod.spec_path
    path = spec_path.rpartition(".")[0] + ".metadata.annotations" if "." in spec_path else "metadata.annotations"
    annotations = pod_metadata(pod.body).get("annotations")
    return path, annotations if isinstance(annotations, dict) else {}


def windows(pod: PodView) -> bool:
    return bool(dig(pod.spec, "os", "name") == "windows")


def user_namespace(pod: PodView) -> bool:
    """``hostUsers: false``: the pod runs in its own user namespace, where root and /proc are not the host's."""
    return pod.spec.get("hostUsers") is False


def unless(exempt: Callable[[PodView], bool], control: Control) -> Control:
    """The control, skipped for pods ``exempt`` says it does not apply to (Windows pods, user namespaces)."""

    def check(pod: PodView) -> Found:
        if not exempt(pod):
            yield from control(pod)

    check.__name__ = f"{control.__name__}_unless_{exempt.__name__}"
    return check


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
    meta_path, annotations = _annotations(pod)
    for key, value in sorted(annotations.items()):
        text = str(value)
        allowed = text in ("", "runtime/default") or text.startswith("localhost/")
        if key.startswith(APPARMOR_PREFIX) and not allowed:
            yield f"{meta_path}[{key}]", f"AppArmor profile {value!r} is not allowed", "use runtime/default"
    for path, sc in _contexts(pod):
        kind = dig(sc, "appArmorProfile", "type")
        if dig(sc, "appArmorProfile") is not None and kind not in ("RuntimeDefault", "Localhost"):
            yield f"{path}.appArmorProfile.type", f"AppArmor profile type {kind!r} is not allowed", "use RuntimeDefault"


def se_linux(allowed: frozenset[str]) -> Control:
    def se_linux(pod: PodView) -> Found:
        for path, sc in _contexts(pod):
            options = sc.get("seLinuxOptions") or {}
            at = f"{path}.seLinuxOptions"
            if (options.get("type") or "") not in allowed:
                yield f"{at}.type", f"SELinux type {options['type']!r} is not allowed", "use container_t"
            for field in ("user", "role"):
                if options.get(field):
                    yield f"{at}.{field}", f"a custom SELinux {field} is not allowed", f"remove {field}"

    return se_linux


def proc_mount(pod: PodView) -> Found:
    for path, container in pod.containers():
        value = dig(container, "securityContext", "procMount")
        if value not in (None, "Default"):
            yield f"{path}.securityContext.procMount", f"procMount {value!r} unmasks /proc", "remove procMount"


def seccomp_annotations(pod: PodView) -> Found:
    """Before 1.19 seccomp was chosen by annotations; only the pod's and its containers' keys count."""
    meta_path, annotations = _annotations(pod)
    keys = [SECCOMP_POD_ANNOTATION, *(SECCOMP_CONTAINER_PREFIX + str(c.get("name")) for _, c in pod.containers())]
    for key in (k for k in keys if k in annotations):
        value = str(annotations[key])
        if value not in ("runtime/default", "docker/default") and not value.startswith("localhost/"):
            yield f"{meta_path}[{key}]", f"seccomp profile {value!r} is not allowed", "use runtime/default"


def seccomp_baseline(pod: PodView) -> Found:
    for path, sc in _contexts(pod):
        if dig(sc, "seccompProfile") is not None and dig(sc, "seccompProfile", "type") not in SECCOMP_TYPES:
            kind = dig(sc, "seccompProfile", "type")
            yield f"{path}.seccompProfile.type", f"seccomp profile {kind!r} is not allowed", "use RuntimeDefault"


def sysctls(allowed: frozenset[str]) -> Control:
    def sysctls(pod: PodView) -> Found:
        spec_path, spec = pod.spec_path, pod.spec
        for index, sysctl in enumerate(dig(spec, "securityContext", "sysctls") or []):
            name = sysctl.get("name") if isinstance(sysctl, dict) else None
            if name not in allowed:
                yield (
                    f"{spec_path}.securityContext.sysctls[{index}].name",
                    f"sysctl {name!r} is not in the safe set",
                    "remove it, or use a safe sysctl",
                )

    return sysctls


def host_probes(pod: PodView) -> Found:
    """Probes and lifecycle handlers must not name a host: the kubelet would connect there from the node."""
    for path, container in pod.containers():
        handlers = [(p, container.get(p)) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [(f"lifecycle.{h}", dig(container, "lifecycle", h)) for h in ("postStart", "preStop")]
        for where, handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = dig(handler, action, "host")
                if host not in (None, ""):
                    yield (
                        f"{path}.{where}.{action}.host",
                        f"container {container.get('name')!r} sends a {where} to host {host!r}",
                        "remove host: the kubelet then uses the pod's IP",
                    )


def volume_types(pod: PodView) -> Found:
    # Every source other than the allowed ones is flagged, also next to an allowed one (which the API server
    # refuses anyway); a volume with no source at all is an emptyDir once the API server has defaulted it.
    spec_path, spec = pod.spec_path, pod.spec
    for index, volume in enumerate(spec.get("volumes") or []):
        kinds = sorted(k for k in (volume if isinstance(volume, dict) else {}) if k != "name")
        for kind in (k for k in kinds if k not in RESTRICTED_VOLUMES):
            yield (
                f"{spec_path}.volumes[{index}].{kind}",
                f"volume {volume.get('name')!r} has type {kind}",
                "use configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected or "
                "secret",
            )


def privilege_escalation(pod: PodView) -> Found:
    for path, container in pod.containers():
        if dig(container, "securityContext", "allowPrivilegeEscalation") is not False:
            yield (
                f"{path}.securityContext.allowPrivilegeEscalation",
                f"container {container.get('name')!r} may escalate privileges",
                "set securityContext.allowPrivilegeEscalation to false",
            )


def run_as_non_root(pod: PodView) -> Found:
    pod_path, pod_sc = _sc(pod.spec_path, pod.spec)
    pod_level = pod_sc.get("runAsNonRoot")
    if pod_level is not None and pod_level is not True:
        yield f"{pod_path}.runAsNonRoot", "the pod may run as root", "set runAsNonRoot: true in its securityContext"
    for path, container in pod.containers():
        own = dig(container, "securityContext", "runAsNonRoot")
        if (own is not None and own is not True) or (own is None and pod_level is not True):
            yield (
                f"{path}.securityContext.runAsNonRoot",
                f"container {container.get('name')!r} may run as root",
                "set runAsNonRoot: true in the pod's or the container's securityContext",
            )


def run_as_user(pod: PodView) -> Found:
    for path, sc in _contexts(pod):
        if sc.get("runAsUser") == 0:  # also false and 0.0, which the API server refuses: fail closed
            yield f"{path}.runAsUser", "runAsUser 0 is root", "set runAsUser to a non-zero user id"


def seccomp_restricted(pod: PodView) -> Found:
    pod_path, pod_sc = _sc(pod.spec_path, pod.spec)
    pod_profile = pod_sc.get("seccompProfile")
    pod_valid = pod_profile is not None and dig(pod_profile, "type") in SECCOMP_TYPES
    if pod_profile is not None and not pod_valid:
        kind = dig(pod_profile, "type")
        yield f"{pod_path}.seccompProfile.type", f"seccomp profile {kind!r} is not allowed", "use RuntimeDefault"
    for path, container in pod.containers():
        profile = dig(container, "securityContext", "seccompProfile")
        if profile is None and pod_valid:
            continue
        if profile is None or dig(profile, "type") not in SECCOMP_TYPES:
            yield (
                f"{path}.securityContext.seccompProfile.type",
                f"container {container.get('name')!r} has no RuntimeDefault or Localhost seccomp profile",
                "set securityContext.seccompProfile.type: RuntimeDefault on the pod",
            )


def capabilities_restricted(pod: PodView) -> Found:
    for path, container in pod.containers():
        caps = dig(container, "securityContext", "capabilities")
        caps = caps if isinstance(caps, dict) else {}
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
