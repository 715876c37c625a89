"""The node's configuration files: containerd, the CNI bridge, the kubelet and kube-proxy. Pure renderers.

Every listener they open is on loopback or on the node's bridge, never on the machine's other interfaces:
the kubelet allows anonymous requests (the API server calls it without a client certificate), which is
acceptable only because nothing off this machine, and no Pod, can reach it (see ``node_net.py``).
"""

from __future__ import annotations

import json

import yaml

from gitopsguard.devcluster.paths import NodeLayout
from gitopsguard.devcluster.ports import LOOPBACK
from gitopsguard.errors import DevClusterError

# One node per machine, so these are fixed; none overlaps the machine's own networks (checked at `up`).
BRIDGE = "ggdev0"
POD_CIDR = "10.244.0.0/24"
BRIDGE_IP = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/16"
CNI_BIN_DIR = "/usr/lib/cni"
CNI_NETWORK = "gitopsguard-dev"
PAUSE_IMAGE = "localhost/gitopsguard/pause:3.4"
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ_PORT = 10256
KUBE_PROXY_METRICS_PORT = 10249
NODE_STATUS_SYNC = "1s"
NODE_STATUS_REPORT = "5m"  # the kubelet's own default when the sync period is not set


def containerd_config(node: NodeLayout) -> str:
    """containerd 1.6 (config version 2): CRI with runc v2 on cgroupfs, overlayfs, all state under ``node``.

    ``restrict_oom_score_adj``: this machine's container lacks CAP_SYS_RESOURCE, and without it runc fails
    every sandbox ("can't get final child's PID from pipe"). AppArmor is not available here.
    """
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return "\n".join([
        "version = 2",
        f"root = {_toml(node.containerd_root)}",
        f"state = {_toml(node.containerd_state)}",
        "[grpc]",
        f"  address = {_toml(node.containerd_socket)}",
        "[ttrpc]",
        f"  address = {_toml(str(node.containerd_socket) + '.ttrpc')}",
        "[debug]",
        '  address = ""',
        "[metrics]",
        '  address = ""',
        f'[plugins."io.containerd.internal.v1.opt"]\n  path = {_toml(node.root / "containerd" / "opt")}',
        f"[{cri}]",
        f"  sandbox_image = {_toml(PAUSE_IMAGE)}",
        "  restrict_oom_score_adj = true",
        "  disable_apparmor = true",
        "  netns_mounts_under_state_dir = true",  # Pods' network namespaces under our state, not /run/netns
        f"  stream_server_address = {_toml(LOOPBACK)}",
        '  stream_server_port = "0"',
        f"[{cri}.containerd]",
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        f"[{cri}.containerd.runtimes.runc]",
        '  runtime_type = "io.containerd.runc.v2"',
        f"[{cri}.containerd.runtimes.runc.options]",
        "  SystemdCgroup = false",
        f"  Root = {_toml(node.root / 'runc')}",  # runc's container state, else under /run/containerd/runc
        f"[{cri}.cni]",
        f"  bin_dir = {_toml(CNI_BIN_DIR)}",
        f"  conf_dir = {_toml(node.cni_conf_dir)}",
        "",
    ])  # fmt: skip


def _toml(value: object) -> str:
    """A TOML basic string. A state directory may be named anything: quotes, backslashes and control
    characters are escaped, so a path can never end the string and add settings of its own."""
    text = str(value)
    if any(0xD800 <= ord(char) <= 0xDFFF for char in text):  # undecodable bytes in a path (surrogateescape)
        raise DevClusterError(f"{text!r}: not valid UTF-8; containerd's configuration cannot name it")
    return '"' + "".join(_toml_char(char) for char in text) + '"'


def _toml_char(char: str) -> str:
    if char in '\\"':
        return "\\" + char
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return f"\\u{ord(char):04X}"
    return char


def cni_conflist(node: NodeLayout) -> str:
    """One bridge, host-local addresses from POD_CIDR; no masquerading (Pods never need to leave the machine)."""
    bridge = {
        "type": "bridge",
        "bridge": BRIDGE,
        "isGateway": True,
        "ipMasq": False,
        "hairpinMode": True,  # a Pod reaching itself through its own Service
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": POD_CIDR, "gateway": BRIDGE_IP}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": str(node.cni_ipam_dir),
        },
    }
    return json.dumps({"cniVersion": "0.4.0", "name": CNI_NETWORK, "plugins": [bridge]}, indent=2) + "\n"


# A developer's disk is often nearly full; the kubelet's defaults (10-15 %) would evict the tests' Pods.
_LOW_EVICTION = {
    "memory.available": "100Mi",
    "nodefs.available": "1%",
    "nodefs.inodesFree": "1%",
    "imagefs.available": "1%",
}


def kubelet_config(node: NodeLayout) -> str:
    """KubeletConfiguration: loopback only, no read-only port, and no image garbage collection (the node's
    images are imported by hand and cannot be pulled again)."""
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": LOOPBACK,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": LOOPBACK,
        "healthzPort": KUBELET_HEALTHZ_PORT,
        # Anonymous and AlwaysAllow: the API server calls the kubelet without a client certificate. Only
        # loopback reaches it, and node_net.py drops bridge traffic to 127.0.0.0/8 (CVE-2020-8558).
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "makeIPTablesUtilChains": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {**_LOW_EVICTION, "imagefs.available": "1%"},
        "clusterDomain": "cluster.local",
        # The kubelet reports its Node Ready at its first status sync after the runtime answered: at the 10 s
        # default that was 16-17 s after it started. Syncing each second makes it a few seconds; a sync only
        # reads the Node (from the API server's cache) and writes it when it changed, or every report period,
        # which is set because it would otherwise default to the sync period (a write each second).
        "nodeStatusUpdateFrequency": NODE_STATUS_SYNC,
        "nodeStatusReportFrequency": NODE_STATUS_REPORT,
        "maxPods": 60,
        "staticPodPath": "",
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_config(node: NodeLayout, node_name: str) -> str:
    """KubeProxyConfiguration: iptables mode, health and metrics on loopback, NodePorts on the bridge only.

    Conntrack settings of 0 leave the machine's values alone (kube-proxy would otherwise raise them)."""
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "bindAddress": LOOPBACK,
        "healthzBindAddress": f"{LOOPBACK}:{KUBE_PROXY_HEALTHZ_PORT}",
        "metricsBindAddress": f"{LOOPBACK}:{KUBE_PROXY_METRICS_PORT}",
        "nodePortAddresses": [POD_CIDR],
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": node_name,
        "clientConnection": {"kubeconfig": str(node.kubeconfig("kube-proxy"))},
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }
    return yaml.safe_dump(config, sort_keys=False)
