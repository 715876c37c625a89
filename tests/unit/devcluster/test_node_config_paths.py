"""The node's configuration files name the state directory whatever it is called, and listen nowhere but
loopback and the node's bridge."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.devcluster.node_config import (
    BRIDGE,
    CNI_BIN_DIR,
    PAUSE_IMAGE,
    POD_CIDR,
    cni_conflist,
    containerd_config,
    kube_proxy_config,
    kubelet_config,
)
from gitopsguard.devcluster.paths import NodeLayout
from gitopsguard.errors import DevClusterError

CRI = "io.containerd.grpc.v1.cri"


def parsed_containerd(node: NodeLayout) -> dict[str, object]:
    return tomllib.loads(containerd_config(node))


@given(st.text(min_size=1, max_size=40).filter(lambda name: "/" not in name and "\0" not in name))
@example('x"\nroot = "/"\n[plugins]\n#')  # a directory name that would end the string and add settings
@example("a\\b\x7fc\u00e9\U0001f600")  # backslash, DEL (illegal raw in TOML), non-ASCII, astral (no surrogate pair)
def test_containerd_config_names_any_state_directory_exactly_and_adds_nothing(name: str) -> None:
    node = NodeLayout(Path("/tmp") / name / "node")
    try:
        config = parsed_containerd(node)
    except DevClusterError:
        assert any(0xD800 <= ord(char) <= 0xDFFF for char in name)  # only undecodable names are refused
        return
    assert config["root"] == str(node.containerd_root)
    assert config["state"] == str(node.containerd_state)
    assert set(config) == {"version", "root", "state", "grpc", "ttrpc", "debug", "metrics", "plugins"}


def test_containerd_config_has_the_settings_this_machine_needs() -> None:
    node = NodeLayout(Path("/srv/state/node"))
    cri = parsed_containerd(node)["plugins"][CRI]  # type: ignore[index]
    assert cri["restrict_oom_score_adj"] is True  # no CAP_SYS_RESOURCE: runc fails every sandbox without it
    assert cri["disable_apparmor"] is True
    assert cri["netns_mounts_under_state_dir"] is True  # Pod network namespaces under the state, unmounted by down
    assert cri["sandbox_image"] == PAUSE_IMAGE
    assert cri["stream_server_address"] == "127.0.0.1"
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    assert cri["containerd"]["runtimes"]["runc"]["options"] == {"SystemdCgroup": False, "Root": str(node.root / "runc")}
    assert cri["cni"] == {"bin_dir": CNI_BIN_DIR, "conf_dir": str(node.cni_conf_dir)}


def test_containerd_keeps_every_path_under_the_node_directory() -> None:
    node = NodeLayout(Path("/srv/state/node"))
    config = parsed_containerd(node)
    paths = [config["root"], config["state"], config["grpc"]["address"], config["ttrpc"]["address"]]  # type: ignore[index]
    paths.append(config["plugins"]["io.containerd.internal.v1.opt"]["path"])  # type: ignore[index]
    assert all(Path(str(path)).is_relative_to(node.root) for path in paths)
    assert config["debug"]["address"] == "" and config["metrics"]["address"] == ""  # type: ignore[index]


def test_kubelet_listens_on_loopback_only_and_keeps_imported_images() -> None:
    config = yaml.safe_load(kubelet_config(NodeLayout(Path("/srv/node"))))
    assert config["address"] == "127.0.0.1"
    assert config["healthzBindAddress"] == "127.0.0.1"
    assert config["readOnlyPort"] == 0
    assert config["imageGCHighThresholdPercent"] == 100  # imported images cannot be pulled back
    assert config["makeIPTablesUtilChains"] is False


def test_kube_proxy_serves_health_and_metrics_on_loopback_and_node_ports_on_the_bridge_only() -> None:
    config = yaml.safe_load(kube_proxy_config(NodeLayout(Path("/srv/node")), "vm"))
    assert config["mode"] == "iptables"
    assert config["healthzBindAddress"].startswith("127.0.0.1:")
    assert config["metricsBindAddress"].startswith("127.0.0.1:")
    assert config["nodePortAddresses"] == [POD_CIDR]
    assert config["conntrack"]["maxPerCore"] == 0  # leave the machine's conntrack table alone


def test_cni_bridge_never_masquerades_pod_traffic() -> None:
    conflist = json.loads(cni_conflist(NodeLayout(Path("/srv/node"))))
    (bridge,) = conflist["plugins"]
    assert bridge["bridge"] == BRIDGE and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": POD_CIDR, "gateway": "10.244.0.1"}]]
    assert bridge["ipam"]["dataDir"] == "/srv/node/cni/ipam"


@pytest.mark.parametrize("name", ["bad\udcff"])
def test_state_directory_with_undecodable_bytes_is_refused(name: str) -> None:
    with pytest.raises(DevClusterError, match="not valid UTF-8"):
        containerd_config(NodeLayout(Path("/tmp") / name))
