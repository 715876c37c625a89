"""``DevCluster``: bring the local control plane up, recover it, report on it and take it down."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from gitopsguard.devcluster import components as comp
from gitopsguard.devcluster import pki, process
from gitopsguard.devcluster.build import ensure_binaries
from gitopsguard.devcluster.kubeconfig import write_kubeconfig
from gitopsguard.devcluster.paths import CacheLayout, StateLayout
from gitopsguard.devcluster.ports import free_port, require_free
from gitopsguard.devcluster.progress import Progress
from gitopsguard.devcluster.system import RUNTIME_COMMANDS, ensure_packages, interactive_confirm
from gitopsguard.errors import ComponentStartError, DevClusterError


class ComponentState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"
    STALE_PID = "stale pid file"


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: ComponentState
    pid: int | None


@dataclass(frozen=True)
class ClusterStatus:
    exists: bool
    components: tuple[ComponentStatus, ...]
    ports: comp.Ports | None
    kubeconfig: Path
    ready: bool

    @property
    def all_running(self) -> bool:
        return all(c.state is ComponentState.RUNNING for c in self.components)


@dataclass(frozen=True)
class UpResult:
    already_up: bool
    recovered: bool
    started: tuple[str, ...]
    kubeconfig: Path
    server: str


class DevCluster:
    def __init__(
        self,
        state: StateLayout,
        cache: CacheLayout,
        progress: Progress,
        *,
        confirm: Callable[[str], bool] = interactive_confirm,
        ready_timeout: float = 120.0,
    ) -> None:
        self.state, self.cache, self.progress = state, cache, progress
        self._confirm, self._ready_timeout = confirm, ready_timeout

    # -- reading ---------------------------------------------------------------------------------------

    def status(self) -> ClusterStatus:
        ports = self._load_ports()
        components = tuple(self._component_status(name) for name in comp.COMPONENTS)
        ready = ports is not None and components[1].state is ComponentState.RUNNING and self._ready(ports)
        return ClusterStatus(ports is not None, components, ports, self.state.kubeconfig, ready)

    def server_version(self) -> str | None:
        ports = self._load_ports()
        if ports is None:
            return None
        code, body = comp.apiserver_get(self.state, ports, self._admin_token(), "/version")
        return str(json.loads(body)["gitVersion"]) if code == 200 else None

    def env(self) -> str:
        if self._load_ports() is None:
            raise DevClusterError(
                f"{self.state.root}: no dev cluster here; start one with `gitopsguard dev-cluster up`"
            )
        return f"export KUBECONFIG={self.state.kubeconfig}"

    # -- changing ---------------------------------------------------------------------------------------

    def up(self, *, apiserver_port: int | None = None, audit_log: bool = False) -> UpResult:
        """Start the cluster, or restart what has stopped. ``audit_log``: a new cluster's API server keeps
        an audit log of writes (``StateLayout.audit_log``), for naming the user behind a drift."""
        current = self.status()
        if current.ports is not None and current.all_running and current.ready:
            return UpResult(True, False, (), self.state.kubeconfig, current.ports.server_url())
        if current.ports is not None:
            return self._recover(current, current.ports)
        return self._create(apiserver_port, audit_log)

    def down(self) -> tuple[str, ...]:
        """Stop every component this cluster started, then remove its whole state directory."""
        stopped = []
        for status in reversed(self.status().components):
            if status.state is ComponentState.RUNNING and status.pid is not None:
                self.progress.stage(f"stopping {status.name} (pid {status.pid})")
                process.stop(status.pid, self._binary_name(status.name))
                stopped.append(status.name)
        shutil.rmtree(self.state.root, ignore_errors=True)
        return tuple(stopped)

    # -- the two ways up --------------------------------------------------------------------------------

    def _create(self, apiserver_port: int | None, audit_log: bool) -> UpResult:
        if apiserver_port is not None:
            require_free(apiserver_port, "kube-apiserver")
        ensure_binaries(self.cache, self.progress, confirm=self._confirm)
        ensure_packages(RUNTIME_COMMANDS, self.progress, confirm=self._confirm)
        ports = _pick_ports(apiserver_port)
        self.progress.stage(f"creating dev cluster state in {self.state.root}")
        self.state.root.mkdir(parents=True, exist_ok=True)
        pki.write_tokens_file(self.state.tokens_file, pki.new_users())
        if audit_log:  # the API server audits when it finds the policy (also after a restart)
            self.state.audit_policy.write_text(comp.AUDIT_POLICY)
        pki.ensure_service_account_keys(self.state.pki_dir)
        self._save_ports(ports)
        children: list[subprocess.Popen[bytes]] = []
        try:
            started = self._start(ports, comp.COMPONENTS, children)
        except BaseException:
            for child in reversed(children):  # a fresh start that fails leaves nothing running behind
                process.stop_child(child)
            shutil.rmtree(self.state.root, ignore_errors=True)
            raise
        return UpResult(False, False, started, self.state.kubeconfig, ports.server_url())

    def _recover(self, current: ClusterStatus, ports: comp.Ports) -> UpResult:
        missing = tuple(c.name for c in current.components if c.state is not ComponentState.RUNNING)
        for status in current.components:
            if status.state is ComponentState.STALE_PID:
                self.progress.stage(
                    f"{status.name}: removing stale pid file (pid {status.pid} no longer runs {status.name})"
                )
                self.state.pid_file(status.name).unlink(missing_ok=True)
        if missing:
            self.progress.stage(f"dev cluster is partly down; restarting {', '.join(missing)}")
            ensure_binaries(self.cache, self.progress, confirm=self._confirm)
            self._require_ports_free(ports, missing)
        try:
            started = self._start(ports, missing, [])
        except DevClusterError as error:
            raise DevClusterError(
                f"{error}\nrecovery failed; start over with `gitopsguard dev-cluster down` and then `up`"
            ) from error
        return UpResult(False, True, started, self.state.kubeconfig, ports.server_url())

    def _start(
        self, ports: comp.Ports, names: tuple[str, ...], children: list[subprocess.Popen[bytes]]
    ) -> tuple[str, ...]:
        """Start ``names`` in dependency order (appending each to ``children``) and wait for every
        component, started now or already running, to be ready."""
        token = self._admin_token()
        checks: dict[str, Callable[[], bool]] = {
            comp.ETCD: lambda: comp.etcd_healthy(ports),
            comp.APISERVER: lambda: comp.apiserver_ready(self.state, ports, token),
            comp.CONTROLLER_MANAGER: lambda: comp.controller_manager_ready(self.state, ports, token),
        }
        started = []
        for name in comp.COMPONENTS:
            if name in names:
                spec = comp.component_spec(name, self.cache, self.state, ports)
                self.progress.stage(f"starting {name}")
                child = process.start(spec, self.state.pid_file(name), self.state.log_file(name))
                children.append(child)
                started.append(name)
                self._wait_ready(name, checks[name], child)
            else:
                self._wait_ready(name, checks[name], None)
            if name == comp.APISERVER:
                write_kubeconfig(self.state.kubeconfig, ports.server_url(), self.state.apiserver_cert,
                                 pki.read_tokens_file(self.state.tokens_file))  # fmt: skip
        return tuple(started)

    def _wait_ready(self, name: str, check: Callable[[], bool], child: subprocess.Popen[bytes] | None) -> None:
        deadline = time.monotonic() + self._ready_timeout
        while not check():
            if child is not None and child.poll() is not None:
                raise ComponentStartError(
                    f"{name} exited with code {child.returncode} while starting; "
                    f"last lines of {self.state.log_file(name)}:\n"
                    f"{process.log_tail(self.state.log_file(name))}"
                )
            if time.monotonic() > deadline:
                raise ComponentStartError(
                    f"{name} not ready after {self._ready_timeout:.0f}s; see {self.state.log_file(name)}:\n"
                    f"{process.log_tail(self.state.log_file(name))}"
                )
            time.sleep(0.2)
        self.progress.detail(f"{name} is ready")

    # -- small helpers ------------------------------------------------------------------------------------

    def _component_status(self, name: str) -> ComponentStatus:
        pid = process.read_pid(self.state.pid_file(name))
        if pid is None:
            return ComponentStatus(name, ComponentState.STOPPED, None)
        if process.is_our_process(pid, self._binary_name(name)):
            return ComponentStatus(name, ComponentState.RUNNING, pid)
        return ComponentStatus(name, ComponentState.STALE_PID, pid)

    def _binary_name(self, name: str) -> str:
        return name  # every component's binary is named after it (etcd, kube-apiserver, ...)

    def _ready(self, ports: comp.Ports) -> bool:
        return comp.apiserver_ready(self.state, ports, self._admin_token())

    def _admin_token(self) -> str:
        users = pki.read_tokens_file(self.state.tokens_file)
        return next(user.token for user in users if "system:masters" in user.groups)

    def _require_ports_free(self, ports: comp.Ports, names: tuple[str, ...]) -> None:
        if comp.ETCD in names:
            require_free(ports.etcd_client, "etcd client", grace=10)
            require_free(ports.etcd_peer, "etcd peer", grace=10)
        if comp.APISERVER in names:
            require_free(ports.apiserver, "kube-apiserver", grace=10)

    def _load_ports(self) -> comp.Ports | None:
        try:
            return comp.Ports(**json.loads(self.state.state_file.read_text())["ports"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save_ports(self, ports: comp.Ports) -> None:
        body = {"ports": {"etcd_client": ports.etcd_client, "etcd_peer": ports.etcd_peer, "apiserver": ports.apiserver}}
        pki.write_private(self.state.state_file, json.dumps(body, indent=2) + "\n")


def _pick_ports(apiserver_port: int | None) -> comp.Ports:
    """Three distinct free loopback ports; the API server's is the caller's when one was asked for."""
    wanted = 2 if apiserver_port is not None else 3
    picked: list[int] = []
    while len(picked) < wanted:
        port = free_port()
        if port != apiserver_port and port not in picked:
            picked.append(port)
    api = apiserver_port if apiserver_port is not None else picked[2]
    return comp.Ports(etcd_client=picked[0], etcd_peer=picked[1], apiserver=api)
