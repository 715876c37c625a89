"""Where the dev cluster keeps its cache (built binaries) and its state (one running cluster)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "1.20.2"
# Built together in one `make WHAT="..."` (the code generators run once for all of them) and cached as one set.
CONTROL_PLANE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
# The Pod sandbox's process, compiled from build/pause/linux/pause.c of the same tree, cached beside them.
PAUSE_BINARY = "pause"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


@dataclass(frozen=True)
class CacheLayout:
    """Built binaries, kept across clusters: ``<root>/v1.20.2/bin/{kube-apiserver,...}``."""

    root: Path

    @classmethod
    def default(cls) -> CacheLayout:
        override = os.environ.get("GITOPSGUARD_CACHE_DIR")
        base = Path(override) if override else _xdg("XDG_CACHE_HOME", ".cache") / "gitopsguard"
        return cls(root=base / "k8s")

    @property
    def bin_dir(self) -> Path:
        return self.root / f"v{KUBERNETES_VERSION}" / "bin"

    @property
    def manifest(self) -> Path:
        """Written last, after every binary is in place: its presence is what makes the cache valid."""
        return self.bin_dir / "MANIFEST.json"

    @property
    def work_dir(self) -> Path:
        """Scratch space for the source download and the build; safe to delete."""
        return self.root / "work"

    def binary(self, name: str) -> Path:
        return self.bin_dir / name


@dataclass(frozen=True)
class StateLayout:
    """Everything one running dev cluster owns; ``down`` removes the whole directory."""

    root: Path

    @classmethod
    def default(cls) -> StateLayout:
        override = os.environ.get("GITOPSGUARD_DEV_CLUSTER_DIR")
        if override:
            return cls(root=Path(override))
        return cls(root=_xdg("XDG_STATE_HOME", ".local/state") / "gitopsguard" / "dev-cluster")

    @property
    def state_file(self) -> Path:
        return self.root / "cluster.json"

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd-data"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def tokens_file(self) -> Path:
        return self.pki_dir / "tokens.csv"

    @property
    def apiserver_cert(self) -> Path:
        """kube-apiserver writes its self-signed serving certificate here (``--cert-dir``)."""
        return self.pki_dir / "apiserver.crt"

    @property
    def audit_policy(self) -> Path:
        return self.root / "audit-policy.yaml"

    @property
    def audit_log(self) -> Path:
        """The API server's audit log (JSON lines): who wrote what, for ``gitopsguard run --audit-log``."""
        return self.log_dir / "audit.log"

    @property
    def node(self) -> NodeLayout:
        return NodeLayout(self.root / "node")

    def pid_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.pid"

    def log_file(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"


@dataclass(frozen=True)
class NodeLayout:
    """The node's own state, under the cluster's: containerd, the kubelet, CNI and their configuration.

    The kubelet and containerd also use a few fixed paths of the machine (``/var/log/pods``,
    ``/var/log/containers``, ``/run/containerd/s``, ``/run/netns``): that is why one machine runs one node.
    """

    root: Path

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd.toml"

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd" / "state"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet.yaml"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy.yaml"

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def saved_sysctls(self) -> Path:
        """The machine's sysctls as they were before the node changed them; ``down`` puts them back."""
        return self.root / "sysctls.json"

    def kubeconfig(self, component: str) -> Path:
        return self.root / f"{component}.kubeconfig"
