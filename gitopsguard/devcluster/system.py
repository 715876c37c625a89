"""System packages the dev cluster needs, and installing them with apt when they are missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitopsguard.devcluster.progress import Progress
from gitopsguard.errors import MissingDependencyError

# a command on PATH, or an absolute path -> the Debian package that provides it
# what gitopsguard itself runs: git for sources, ssh-keygen and gpg to verify signed grants
TOOL_COMMANDS: Mapping[str, str] = {"git": "git", "ssh-keygen": "openssh-client", "gpg": "gnupg"}
# what only the test suite runs: a real sshd on loopback for git over ssh with host keys
TEST_COMMANDS: Mapping[str, str] = {"/usr/sbin/sshd": "openssh-server"}
RUNTIME_COMMANDS: Mapping[str, str] = {"etcd": "etcd-server", "openssl": "openssl", **TOOL_COMMANDS}
# what the node runs: containerd and runc for containers, the CNI plugins for the Pods' bridge, iptables and
# conntrack for kube-proxy, socat for port-forward, ip for the bridge
NODE_COMMANDS: Mapping[str, str] = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "/usr/lib/cni/host-local": "containernetworking-plugins",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "socat": "socat",
    "ip": "iproute2",
    "umount": "mount",
}
FIXED_REFLECT2 = Path("/usr/share/gocode/src/github.com/modern-go/reflect2")
BUILD_COMMANDS: Mapping[str, str] = {
    "go": "golang-go",
    "make": "make",
    "git": "git",
    "rsync": "rsync",
    "jq": "jq",
    "tar": "tar",
    "gcc": "gcc",  # the pause program, static: the Pod sandbox image has nothing else in it
    "/usr/include/stdio.h": "libc6-dev",
    str(FIXED_REFLECT2 / "go_above_118.go"): "golang-github-modern-go-reflect2-dev",
}
# building gitopsguard's image without a registry or a Docker engine: buildah (vfs storage, chroot
# isolation) from a base that debootstrap makes out of Debian's packages
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
IMAGE_COMMANDS: Mapping[str, str] = {
    "buildah": "buildah",
    "debootstrap": "debootstrap",
    str(DEBIAN_KEYRING): "debian-archive-keyring",
}


def missing_packages(commands: Mapping[str, str], which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """The Debian packages whose command is not on PATH (or whose file is absent), sorted, no repeats."""
    return sorted({package for needed, package in commands.items() if not _present(needed, which)})


def _present(needed: str, which: Callable[[str], str | None]) -> bool:
    return Path(needed).exists() if needed.startswith("/") else which(needed) is not None


@dataclass(frozen=True)
class InstallPlan:
    commands: tuple[tuple[str, ...], ...]

    def describe(self) -> str:
        return " && ".join(" ".join(command) for command in self.commands)


def plan_install(packages: Sequence[str], *, is_root: bool, has_sudo: bool) -> InstallPlan:
    """The apt commands that install ``packages``, prefixed with sudo when we are not root."""
    prefix: tuple[str, ...] = () if is_root else ("sudo",)
    if not is_root and not has_sudo:
        manual = f"apt-get update && apt-get install -y {' '.join(packages)}"
        raise MissingDependencyError(
            f"missing system packages: {', '.join(packages)}; there is no sudo here, "
            f"so ask an administrator to run: {manual}"
        )
    update = (*prefix, "apt-get", "update", "-q")
    install = (*prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", *packages)
    return InstallPlan(commands=(update, install))


def ensure_packages(
    commands: Mapping[str, str],
    progress: Progress,
    *,
    confirm: Callable[[str], bool],
) -> None:
    """Install whatever ``commands`` needs. As root (as on CI) just do it; otherwise ask before sudo."""
    packages = missing_packages(commands)
    if not packages:
        return
    is_root = os.geteuid() == 0
    plan = plan_install(packages, is_root=is_root, has_sudo=shutil.which("sudo") is not None)
    if not is_root and not confirm(f"Install {', '.join(packages)} with: {plan.describe()}?"):
        raise MissingDependencyError(
            f"missing system packages: {', '.join(packages)}; install them with: {plan.describe()}"
        )
    progress.stage(f"installing system packages: {', '.join(packages)}")
    for command in plan.commands:
        _run_quietly(command, packages)
    still_missing = missing_packages(commands)
    if still_missing:
        raise MissingDependencyError(
            f"installed {', '.join(packages)} but still missing: {', '.join(still_missing)}; "
            "check that apt's sources are reachable and run `gitopsguard dev-cluster up` again"
        )


def _run_quietly(command: Sequence[str], packages: Sequence[str]) -> None:
    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise MissingDependencyError(
            f"installing {', '.join(packages)} failed: `{' '.join(command)}` exited {result.returncode}:\n{tail}"
        )


def interactive_confirm(question: str) -> bool:
    """Ask on the terminal; without one (CI, pipes) the answer is no."""
    if not sys.stdin.isatty():
        return False
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in {"y", "yes"}
