"""The node's kubelet syncs its status each second, so its Node is Ready seconds after it starts (the 10 s
default made every `make demo` and `make test` wait 16-17 s), without writing the Node each second."""

from __future__ import annotations

from pathlib import Path

import yaml

from gitopsguard.devcluster.node_config import kubelet_config
from gitopsguard.devcluster.paths import NodeLayout


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(duration[:-1]) * units[duration[-1]]


def test_the_kubelet_syncs_its_node_status_each_second() -> None:
    config = yaml.safe_load(kubelet_config(NodeLayout(Path("/srv/node"))))
    assert _seconds(config["nodeStatusUpdateFrequency"]) <= 1


def test_an_unchanged_node_status_is_not_written_each_sync() -> None:
    """Unset, the report period would default to the sync period: a write of the Node every second."""
    config = yaml.safe_load(kubelet_config(NodeLayout(Path("/srv/node"))))
    assert _seconds(config["nodeStatusReportFrequency"]) >= 60
