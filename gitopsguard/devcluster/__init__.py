"""A real, local Kubernetes control plane for development, demos and tests.

etcd (Debian's ``etcd-server``), kube-apiserver and kube-controller-manager 1.20.2 (built once from Debian's
``kubernetes`` source package and cached) run as plain processes on free loopback ports. There is no
scheduler or kubelet, so Pods stay Pending; everything a GitOps controller touches is real.

The public surface is :class:`DevCluster` and the layouts that say where it keeps things.
"""

from gitopsguard.devcluster.cluster import ClusterStatus, ComponentStatus, DevCluster, UpResult
from gitopsguard.devcluster.paths import CacheLayout, StateLayout

__all__ = ["CacheLayout", "ClusterStatus", "ComponentStatus", "DevCluster", "StateLayout", "UpResult"]
