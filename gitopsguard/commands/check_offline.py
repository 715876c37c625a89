"""What the Units loop asks the API server while it judges a folder, answered offline for ``check --root``.

The loop's gate (``heads.judge``) asks its applier two things: whether a kind is namespaced (to judge an object
that names no namespace where it will live) and which Namespaces exist (their labels count for policies and Pod
Security). Offline, a kind's scope comes from the kinds Kubernetes serves itself and the CRDs the checkout
defines; the Namespaces are those the checkout's root path and Units apply, as the gate of each let them pass
(mutations included), which is what the cluster holds once the loop applied them.

What cannot be known offline, decided so that ``check`` is never more lenient than the loop where it matters:
a kind neither built in nor defined by a CRD of the checkout is taken as namespaced (most custom kinds are;
a namespace-matched policy then judges it rather than skip it), and Namespaces made by hand are not seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gitopsguard.cluster.apply import Applier
from gitopsguard.model import KubeObject, Manifest

# The kinds a Kubernetes 1.20 API server serves without a namespace (``kubectl api-resources --namespaced=false``
# on the dev cluster, 2026-12-05), by (group, kind); later releases add none that a repository applies.
CLUSTER_SCOPED = frozenset({
    ("", "ComponentStatus"), ("", "Namespace"), ("", "Node"), ("", "PersistentVolume"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"), ("apiregistration.k8s.io", "APIService"),
    ("authentication.k8s.io", "TokenReview"), ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectRulesReview"), ("authorization.k8s.io", "SubjectAccessReview"),
    ("certificates.k8s.io", "CertificateSigningRequest"), ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"), ("networking.k8s.io", "IngressClass"),
    ("node.k8s.io", "RuntimeClass"), ("policy", "PodSecurityPolicy"), ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"), ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "CSIDriver"), ("storage.k8s.io", "CSINode"), ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
})  # fmt: skip


class OfflineCluster(Applier):
    """An applier that only answers the gate's two questions, from the checkout: it has no connection, and the
    gate asks it nothing else (``heads._render_and_gate``). Namespaces are added as the loop would apply them."""

    def __init__(self) -> None:  # no API client: nothing here may reach a cluster
        self._cluster_scoped: set[tuple[str, str]] = set(CLUSTER_SCOPED)
        self._namespaces: dict[str, KubeObject] = {}

    def learn_kinds(self, manifests: Iterable[Manifest]) -> None:
        """The scope of each custom kind a CRD among ``manifests`` defines."""
        for manifest in manifests:
            if (manifest.key.group, manifest.key.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
                defined = _defined_kind(manifest.body)
                if defined is not None:
                    self._cluster_scoped.add(defined)

    def add_namespaces(self, manifests: Iterable[Manifest]) -> None:
        """The Namespaces among ``manifests`` (a judged revision's, as its gate left them) exist from now on."""
        for manifest in manifests:
            if (manifest.key.group, manifest.key.kind) == ("", "Namespace"):
                self._namespaces[manifest.key.name] = manifest.body

    def namespaced(self, manifest: Manifest) -> bool:
        return (manifest.key.group, manifest.key.kind) not in self._cluster_scoped

    def namespaces(self) -> dict[str, KubeObject]:
        return dict(self._namespaces)


def _defined_kind(body: Mapping[str, object]) -> tuple[str, str] | None:
    """(group, kind) of a cluster-scoped CRD's body; None when it is namespaced or not readable as one (a CRD the
    API server would refuse defines nothing; its kind is then taken as namespaced, as any unknown kind)."""
    spec = body.get("spec")
    if not isinstance(spec, Mapping) or spec.get("scope") != "Cluster":
        return None
    names, group = spec.get("names"), spec.get("group")
    kind = names.get("kind") if isinstance(names, Mapping) else None
    return (group, kind) if isinstance(group, str) and isinstance(kind, str) else None
