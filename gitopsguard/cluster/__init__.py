"""The edge that talks to a Kubernetes API server through the ``kubernetes`` client.

Client exceptions are translated here, once, into :class:`gitopsguard.errors.ClusterError`.
"""

from gitopsguard.cluster.client import ServerInfo, connect, server_info

__all__ = ["ServerInfo", "connect", "server_info"]
