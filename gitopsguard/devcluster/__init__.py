"""A real, local Kubernetes cluster for development, demos and tests.

etcd (Debian's ``etcd-server``), kube-apiserver and kube-controller-manager 1.20.2 (built once from Debian's
``kubernetes`` source package and cached) run as plain processes on free loopback ports. With a node
(``up(node=True)``, the CLI's default; root, one per machine) kube-scheduler, containerd, kube-proxy and the
kubelet run too, so Pods run; images are imported with :func:`import_image`, never pulled.

The public surface is :class:`DevCluster`, :func:`import_image` and the layouts that say where it keeps things.
"""

from gitopsguard.devcluster.cluster import ClusterStatus, ComponentStatus, DevCluster, UpResult
from gitopsguard.devcluster.node import import_image
from gitopsguard.devcluster.paths import CacheLayout, StateLayout

__all__ = ["CacheLayout", "ClusterStatus", "ComponentStatus", "DevCluster", "StateLayout", "UpResult", "import_image"]
