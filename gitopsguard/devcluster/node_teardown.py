"""Removing what a node leaves on the machine outside its processes: container processes and shims, mounts,
Pod cgroups, network namespaces and Pod logs.

Each step is idempotent and never fails the whole teardown: ``down`` after a crash, or twice, must finish.
Only one node runs on a machine (the kubelet and containerd use fixed paths), so what sits at those fixed
paths is this node's: ``kubepods`` cgroups, ``/run/netns/cni-*``, ``/var/log/pods``, ``/var/log/containers``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
POD_CGROUP = "kubepods"
NETNS_DIR = Path("/run/netns")
POD_LOG_DIRS = (Path("/var/log/pods"), Path("/var/log/containers"))


def pod_cgroups() -> list[Path]:
    """Every Pod cgroup in every hierarchy, deepest first (the order ``rmdir`` needs)."""
    roots = [hierarchy / POD_CGROUP for hierarchy in _hierarchies()]
    found = [path for root in roots if root.is_dir() for path in _walk_dirs(root)]
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def _hierarchies() -> list[Path]:
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]  # cgroup v2: one unified hierarchy
    with contextlib.suppress(OSError):
        return [path for path in CGROUP_ROOT.iterdir() if path.is_dir() and not path.is_symlink()]
    return []


def _walk_dirs(root: Path) -> Iterator[Path]:
    yield root
    for path, dirs, _ in os.walk(root):
        for name in dirs:
            yield Path(path, name)


def kill_pod_processes(timeout: float = 10.0) -> None:
    """SIGKILL every process in a Pod cgroup until none is left, then remove the cgroups."""
    deadline = time.monotonic() + timeout
    while (pids := _pod_pids()) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    for cgroup in pod_cgroups():
        with contextlib.suppress(OSError):
            cgroup.rmdir()


def _pod_pids() -> set[int]:
    pids: set[int] = set()
    for cgroup in pod_cgroups():
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(line) for line in (cgroup / "cgroup.procs").read_text().split())
    return pids


def kill_shims(containerd_socket: Path, timeout: float = 10.0) -> None:
    """containerd's shims outlive containerd; stop the ones serving this node's containerd (a killed process
    that is only a zombie now has no command line, so it no longer matches)."""
    deadline = time.monotonic() + timeout
    while (pids := shim_pids(containerd_socket)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def shim_pids(containerd_socket: Path) -> list[int]:
    return _pids_with_argument(str(containerd_socket), binary_prefix="containerd-shim")


def _pids_with_argument(argument: str, binary_prefix: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = Path(argv[0].decode(errors="replace")).name
        if name.startswith(binary_prefix) and argument.encode() in argv:
            found.append(int(entry.name))
    return found


MOUNTINFO = Path("/proc/self/mountinfo")


def mounts_under(*roots: Path, mountinfo: Path = MOUNTINFO) -> list[Path]:
    """Mount points at or under any of ``roots``, deepest first."""
    points = []
    with contextlib.suppress(OSError):
        # Only "\n" ends a line and only " " separates fields: splitlines() and split() would also cut at
        # \x1c-\x1f, \x85 or \u2028, which the kernel leaves unescaped in a path.
        for line in mountinfo.read_bytes().decode(errors="surrogateescape").split("\n"):  # no newline translation
            fields = line.split(" ")
            if len(fields) < 5:
                continue
            point = Path(_unescape(fields[4]))
            if any(point == root or root in point.parents for root in roots):
                points.append(point)
    return sorted(set(points), key=lambda path: (-len(path.parts), str(path)))


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def unmount_all(*roots: Path) -> None:
    """Lazily unmount everything at or under ``roots`` (a mount still busy is detached, not left behind)."""
    for _ in range(5):  # the kubelet's root is bind-mounted onto itself, and mounts stack: repeat until clean
        points = mounts_under(*roots)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


def remove_pod_netns() -> None:
    """The network namespaces containerd made for Pod sandboxes (``/run/netns/cni-<uuid>``)."""
    with contextlib.suppress(OSError):
        for path in NETNS_DIR.glob("cni-*"):
            unmount_all(path)
            with contextlib.suppress(OSError):
                path.unlink()


def pod_netns() -> list[Path]:
    with contextlib.suppress(OSError):
        return sorted(NETNS_DIR.glob("cni-*"))
    return []


def remove_pod_logs() -> None:
    for directory in POD_LOG_DIRS:
        with contextlib.suppress(OSError):
            for entry in directory.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


SHIM_SOCKETS = Path("/run/containerd/s")


def remove_shim_sockets(directory: Path = SHIM_SOCKETS) -> None:
    """The shims' sockets (``/run/containerd/s/<hash>``, a fixed path): a killed shim leaves its socket."""
    with contextlib.suppress(OSError):
        for entry in directory.iterdir():
            if entry.is_socket():
                entry.unlink(missing_ok=True)


def remove_cni_results(network: str, cache: Path = Path("/var/lib/cni/results")) -> None:
    """libcni's cache of each attachment's result (``<network>-<container>-<interface>``), kept per machine."""
    with contextlib.suppress(OSError):
        for entry in cache.glob(f"{glob.escape(network)}-*"):
            entry.unlink(missing_ok=True)
