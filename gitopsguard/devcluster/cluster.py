"""``DevCluster``: bring the local control plane up, recover it, report on it and take it down."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from gitopsguard.devcluster import components as comp
from gitopsguard.devcluster import node, node_net, node_teardown, pki, process
from gitopsguard.devcluster import node_components as nc
from gitopsguard.devcluster.build import ensure_binaries
from gitopsguard.devcluster.kubeconfig import write_kubeconfig
from gitopsguard.devcluster.node_config import BRIDGE_IP
from gitopsguard.devcluster.paths import CacheLayout, StateLayout
from gitopsguard.devcluster.ports import free_port, require_free
from gitopsguard.devcluster.progress import Progress
from gitopsguard.devcluster.system import NODE_COMMANDS, RUNTIME_COMMANDS, ensure_packages, interactive_confirm
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
    node: str | None = None  # the node's name when the cluster has one
    node_ready: bool = False  # the kubelet answers its health check and its Node is Ready

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
        components = tuple(self._component_status(name) for name in _component_names(ports))
        ready = ports is not None and components[1].state is ComponentState.RUNNING and self._ready(ports)
        if ports is None or not ports.has_node:
            return ClusterStatus(ports is not None, components, ports, self.state.kubeconfig, ready)
        name = self._node_name()
        node_ready = ready and self._node_ready(ports, name)
        return ClusterStatus(True, components, ports, self.state.kubeconfig, ready, name, node_ready)

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

    def up(self, *, apiserver_port: int | None = None, audit_log: bool = False, node: bool = False) -> UpResult:
        """Start the cluster, or restart what has stopped. ``audit_log``: a new cluster's API server keeps
        an audit log of writes (``StateLayout.audit_log``), for naming the user behind a drift. ``node``: a new
        cluster also runs a node (containerd, kubelet, kube-proxy, kube-scheduler; one per machine, as root)."""
        current = self.status()
        healthy_node = current.node is None or current.node_ready
        if current.ports is not None and current.all_running and current.ready and healthy_node:
            return UpResult(True, False, (), self.state.kubeconfig, current.ports.server_url())
        if current.ports is not None:
            return self._recover(current, current.ports)
        return self._create(apiserver_port, audit_log, node)

    def down(self) -> tuple[str, ...]:
        """Stop every component this cluster started, put the machine back as the node found it (mounts,
        bridge, iptables, cgroups, sysctls), then remove the whole state directory."""
        if not self.state.state_file.exists():
            return ()  # not a dev cluster's directory (a mistyped --state-dir): touch nothing in it
        stopped = []
        ports = self._load_ports()
        for status in reversed(self.status().components):
            if status.state is ComponentState.RUNNING and status.pid is not None:
                self.progress.stage(f"stopping {status.name} (pid {status.pid})")
                process.stop(status.pid, self._binary_name(status.name))
                stopped.append(status.name)
        if ports is not None and ports.has_node:
            self.progress.stage("removing the node's containers, mounts, bridge and iptables chains")
            node.teardown(self.state, self.cache)
        self._remove_state()
        return tuple(stopped)

    def _remove_state(self) -> None:
        """Never delete through a mount: a Pod volume or a bind mount left under the state directory would
        take the files it shows with it."""
        node_teardown.unmount_all(self.state.root)
        left = node_teardown.mounts_under(self.state.root)
        if left:
            raise DevClusterError(
                f"{self.state.root}: still has mounts ({', '.join(map(str, left[:5]))}); unmount them and run "
                "`gitopsguard dev-cluster down` again (the directory was not removed, so nothing behind them was)"
            )
        shutil.rmtree(self.state.root, ignore_errors=True)

    # -- the two ways up --------------------------------------------------------------------------------

    def _create(self, apiserver_port: int | None, audit_log: bool, with_node: bool) -> UpResult:
        if apiserver_port is not None:
            require_free(apiserver_port, "kube-apiserver")
        if with_node and os.geteuid() != 0:
            raise DevClusterError(
                "the dev cluster's node needs root (cgroups, mounts, network namespaces, a bridge); "
                "run `gitopsguard dev-cluster up` as root, or without a node: `up --no-node`"
            )
        hostname = nc.node_name() if with_node else ""
        ensure_binaries(self.cache, self.progress, confirm=self._confirm)
        ensure_packages({**RUNTIME_COMMANDS, **(NODE_COMMANDS if with_node else {})}, self.progress,
                        confirm=self._confirm)  # fmt: skip
        ports = _pick_ports(apiserver_port, with_node)
        if with_node:
            node.claim_machine(self.state)
        self.progress.stage(f"creating dev cluster state in {self.state.root}")
        self.state.root.mkdir(parents=True, exist_ok=True)
        pki.write_tokens_file(self.state.tokens_file, pki.new_users() + _component_users(hostname))
        if audit_log:  # the API server audits when it finds the policy (also after a restart)
            self.state.audit_policy.write_text(comp.AUDIT_POLICY)
        pki.ensure_service_account_keys(self.state.pki_dir)
        pki.ensure_webhook_client(self.state.pki_dir)
        self._save_ports(ports, hostname)
        children: list[subprocess.Popen[bytes]] = []
        try:
            started = self._start(ports, _component_names(ports), children)
        except BaseException:
            for child in reversed(children):  # a fresh start that fails leaves nothing running behind
                process.stop_child(child)
            if with_node:
                node.teardown(self.state, self.cache)
            self._remove_state()
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
        if ports.has_node:
            node.claim_machine(self.state)
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
        hostname = self._node_name()
        checks: dict[str, Callable[[], bool]] = {
            comp.ETCD: lambda: comp.etcd_healthy(ports),
            comp.APISERVER: lambda: comp.apiserver_ready(self.state, ports, token),
            comp.CONTROLLER_MANAGER: lambda: comp.controller_manager_ready(self.state, ports, token),
            nc.SCHEDULER: lambda: nc.scheduler_healthy(ports.scheduler),
            nc.CONTAINERD: lambda: nc.containerd_ready(self.state),
            nc.KUBE_PROXY: lambda: nc.kube_proxy_healthy() and node_net.kube_proxy_synced(),
            nc.KUBELET: lambda: nc.kubelet_healthy() and self._node_ready(ports, hostname),
        }
        if ports.has_node:
            node.prepare_network(self.state)
        started = []
        for name in _component_names(ports):
            if name in names:
                spec = self._spec(name, ports, hostname)
                self.progress.stage(f"starting {name}")
                child = process.start(spec, self.state.pid_file(name), self.state.log_file(name))
                children.append(child)
                started.append(name)
                self._wait_ready(name, checks[name], child)
            else:
                self._wait_ready(name, checks[name], None)
            self._after_ready(name, ports, hostname)
        return tuple(started)

    def _spec(self, name: str, ports: comp.Ports, hostname: str) -> process.ComponentSpec:
        if name in nc.NODE_COMPONENTS:
            return nc.node_spec(name, self.cache, self.state, ports.scheduler, hostname)
        return comp.component_spec(name, self.cache, self.state, ports)

    def _after_ready(self, name: str, ports: comp.Ports, hostname: str) -> None:
        """What the next components need from this one: the API server's certificate in their kubeconfigs,
        containerd's pause image before any Pod sandbox."""
        if name == comp.APISERVER:
            users = pki.read_tokens_file(self.state.tokens_file)
            people = tuple(user for user in users if not user.name.startswith("system:"))
            write_kubeconfig(self.state.kubeconfig, ports.server_url(), self.state.apiserver_cert, people)
            if ports.has_node:
                node.write_node_files(self.state, self.cache, hostname, ports.server_url(), users)
        elif name == nc.CONTAINERD:
            node.ensure_pause_image(self.state)
        elif name == nc.KUBE_PROXY:
            node_net.ensure_guards()  # back in front of the jumps kube-proxy has just prepended

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

    def _node_ready(self, ports: comp.Ports, hostname: str) -> bool:
        """Asks the kubelet too: with no node-lifecycle controller, a dead kubelet's Node stays Ready."""
        if not nc.kubelet_healthy():
            return False
        code, body = comp.apiserver_get(self.state, ports, self._admin_token(), f"/api/v1/nodes/{hostname}")
        return code == 200 and nc.node_ready(body)

    def _node_name(self) -> str:
        try:
            return str(json.loads(self.state.state_file.read_text()).get("node", ""))
        except (OSError, ValueError, AttributeError):
            return ""

    def _admin_token(self) -> str:
        users = pki.read_tokens_file(self.state.tokens_file)
        return next(user.token for user in users if "system:masters" in user.groups)

    def _require_ports_free(self, ports: comp.Ports, names: tuple[str, ...]) -> None:
        if comp.ETCD in names:
            require_free(ports.etcd_client, "etcd client", grace=10)
            require_free(ports.etcd_peer, "etcd peer", grace=10)
        if comp.APISERVER in names:
            require_free(ports.apiserver, "kube-apiserver", grace=10)
        if nc.SCHEDULER in names:
            require_free(ports.scheduler, "kube-scheduler", grace=10)

    def _load_ports(self) -> comp.Ports | None:
        try:
            return comp.Ports(**json.loads(self.state.state_file.read_text())["ports"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save_ports(self, ports: comp.Ports, hostname: str) -> None:
        body = {"ports": dataclasses.asdict(ports), "node": hostname}
        pki.write_private(self.state.state_file, json.dumps(body, indent=2) + "\n")


def _component_names(ports: comp.Ports | None) -> tuple[str, ...]:
    """In start order: the control plane, then the node's parts when the cluster has a node."""
    return comp.COMPONENTS + (nc.NODE_COMPONENTS if ports is not None and ports.has_node else ())


def _component_users(hostname: str) -> tuple[pki.DevUser, ...]:
    if not hostname:
        return ()
    return tuple(pki.DevUser(user, groups, secrets.token_hex(24)) for _, user, groups in node.component_users(hostname))


def _pick_ports(apiserver_port: int | None, with_node: bool) -> comp.Ports:
    """Distinct free loopback ports; the API server's is the caller's when one was asked for. With a node the
    API server listens on the bridge, and kube-scheduler gets a health port."""
    wanted = 4
    picked: list[int] = []
    while len(picked) < wanted:
        port = free_port()
        if port != apiserver_port and port not in picked:
            picked.append(port)
    api = apiserver_port if apiserver_port is not None else picked[2]
    if not with_node:
        return comp.Ports(etcd_client=picked[0], etcd_peer=picked[1], apiserver=api)
    return comp.Ports(picked[0], picked[1], api, apiserver_host=BRIDGE_IP, scheduler=picked[3])
