"""A real node for the dev cluster: files it needs before starting, the images it runs, and its removal.

``DevCluster`` starts and stops the node's processes like the control plane's (pid files, ``process.py``);
this module prepares the machine for them and puts the machine back afterwards. One machine runs one node:
the claim file names the dev cluster that owns it, and a second cluster with a node is refused.

:func:`import_image` is the one way images reach the node: no registry is reachable, so images are built
here and imported into containerd's ``k8s.io`` namespace, where the kubelet finds them (use
``imagePullPolicy: Never`` or ``IfNotPresent`` with a fixed tag).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from gitopsguard.devcluster import node_components as nc
from gitopsguard.devcluster import node_net, node_teardown
from gitopsguard.devcluster.kubeconfig import render_kubeconfig
from gitopsguard.devcluster.node_config import (
    CNI_NETWORK,
    PAUSE_IMAGE,
    cni_conflist,
    containerd_config,
    kube_proxy_config,
    kubelet_config,
)
from gitopsguard.devcluster.oci_image import write_single_binary_image
from gitopsguard.devcluster.paths import PAUSE_BINARY, CacheLayout, StateLayout
from gitopsguard.devcluster.pki import DevUser, write_private
from gitopsguard.errors import DevClusterError

MACHINE_CLAIM = Path("/run/gitopsguard-dev-node")
# identities of the node's components in the API server's token file; RBAC's default bindings (and the Node
# authorizer for the kubelet) give each exactly what it needs
COMPONENT_USERS = {nc.SCHEDULER: ("system:kube-scheduler", ()), nc.KUBE_PROXY: ("system:kube-proxy", ())}


def component_users(hostname: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(component, user name, groups) for each component that talks to the API server."""
    return (
        (nc.KUBELET, f"system:node:{hostname}", ("system:nodes",)),
        *((name, user, groups) for name, (user, groups) in COMPONENT_USERS.items()),
    )


def node_owner(claim: Path = MACHINE_CLAIM) -> Path | None:
    """The state directory of the dev cluster that holds this machine's node, if that cluster still exists."""
    try:
        owner = Path(claim.read_text().strip())
    except OSError:
        return None
    return owner if owner.exists() else None


def claim_machine(state: StateLayout, claim: Path = MACHINE_CLAIM) -> None:
    """Refuse a second node on this machine; take over a claim whose cluster is gone."""
    owner = node_owner(claim)
    if owner is not None and owner != state.root:
        raise DevClusterError(
            f"{claim}: this machine's node belongs to the dev cluster in {owner}; one machine runs one node. "
            f"Take that one down (`gitopsguard dev-cluster --state-dir {owner} down`) or start this one "
            "without a node (`--no-node`)"
        )
    claim.write_text(f"{state.root}\n")


def release_machine(state: StateLayout, claim: Path = MACHINE_CLAIM) -> None:
    try:
        if Path(claim.read_text().strip()) == state.root:
            claim.unlink()
    except OSError:
        pass


def prepare_network(state: StateLayout) -> None:
    """Before the API server starts: the bridge it binds, the guard chains, and the sysctls recorded."""
    node_net.save_sysctls(state.node.saved_sysctls)
    node_net.ensure_bridge()
    node_net.ensure_guards()


def write_node_files(
    state: StateLayout, cache: CacheLayout, hostname: str, server: str, users: tuple[DevUser, ...]
) -> None:
    """Configuration, kubeconfigs and the pause image archive; needs the API server's certificate."""
    node = state.node
    for directory in (node.cni_conf_dir, node.cni_ipam_dir, node.kubelet_root, node.images_dir):
        directory.mkdir(parents=True, exist_ok=True)
    _write_if_changed(node.containerd_config, containerd_config(node))
    _write_if_changed(node.cni_conf_dir / "10-gitopsguard-dev.conflist", cni_conflist(node))
    _write_if_changed(node.kubelet_config, kubelet_config(node))
    _write_if_changed(node.kube_proxy_config, kube_proxy_config(node, hostname))
    ca = state.apiserver_cert.read_bytes()
    by_name = {user.name: user for user in users}
    for component, user_name, _ in component_users(hostname):
        user = by_name[user_name]
        kubeconfig = render_kubeconfig(server, ca, (user,), user.context)
        if _read(node.kubeconfig(component)) != kubeconfig:
            write_private(node.kubeconfig(component), kubeconfig)
    archive = nc.image_archive(state, "pause")
    if not archive.exists():
        write_single_binary_image(cache.binary(PAUSE_BINARY), PAUSE_IMAGE, archive)


def _write_if_changed(path: Path, text: str) -> None:
    """kube-proxy exits when its configuration file changes at all, even to the same content: on a repair of
    a running node, rewrite nothing that is already right."""
    if _read(path) != text:
        path.write_text(text)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def ensure_pause_image(state: StateLayout) -> None:
    listed = nc.ctr(state, "images", "list", "--quiet", f"name=={PAUSE_IMAGE}")
    if PAUSE_IMAGE not in listed.stdout.split():
        import_image(nc.image_archive(state, "pause"), state)


def import_image(archive: Path, state: StateLayout | None = None) -> None:
    """Import an OCI (or Docker) image archive into the node's containerd, namespace ``k8s.io``.

    The archive's own names (``io.containerd.image.name`` in an OCI index) become the image's tags.
    ``state`` defaults to the dev cluster ``gitopsguard dev-cluster up`` manages."""
    state = state if state is not None else StateLayout.default()
    if not archive.is_file():
        raise DevClusterError(f"{archive}: no such image archive; build it first")
    if not nc.containerd_ready(state):
        raise DevClusterError(
            f"{archive}: the dev cluster in {state.root} runs no node (containerd is not answering on "
            f"{state.node.containerd_socket}); start it with `gitopsguard dev-cluster up`"
        )
    # An absolute path: a relative one starting with "-" would be read as an option.
    result = nc.ctr(state, "images", "import", "--all-platforms", str(archive.resolve()))
    if result.returncode != 0:
        raise DevClusterError(
            f"{archive}: importing into the node's containerd failed (exit {result.returncode}): "
            f"{result.stderr.strip()[-1500:]}; check that it is an OCI or Docker image archive"
        )


def teardown(state: StateLayout, cache: CacheLayout) -> None:
    """After the node's processes stopped: what they leave on the machine. Idempotent."""
    node_teardown.kill_pod_processes()
    node_teardown.kill_shims(state.node.containerd_socket)
    node_teardown.remove_pod_netns()
    node_teardown.unmount_all(state.node.root)
    node_teardown.kill_pod_processes()  # cgroups whose last process died only now can be removed now
    node_teardown.remove_pod_logs()
    node_teardown.remove_cni_results(CNI_NETWORK)
    node_teardown.remove_cni_results("cni-loopback")  # containerd's own loopback network
    node_teardown.remove_shim_sockets()
    _kube_proxy_cleanup(cache)
    node_net.remove_guards()
    node_net.remove_bridge()
    node_net.restore_sysctls(state.node.saved_sysctls)
    release_machine(state)


def _kube_proxy_cleanup(cache: CacheLayout) -> None:
    """``kube-proxy --cleanup`` removes the chains and rules kube-proxy made (iptables and ipvs modes)."""
    binary = cache.binary(nc.KUBE_PROXY)
    if binary.exists():
        subprocess.run([str(binary), "--cleanup"], capture_output=True, check=False, timeout=60)
