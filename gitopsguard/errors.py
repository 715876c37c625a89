"""The one exception hierarchy of gitopsguard.

Library errors (subprocess, kubernetes, git, OS) are translated into these once, at the edge where they
happen, chaining the original with ``raise ... from e``. Every message starts with the thing it concerns
(a file, an object, a component) and, where there is one, says what to do next::

    GitOpsGuardError
    ├── DevClusterError            the local development control plane
    │   ├── MissingDependencyError     a system package or binary is absent
    │   ├── PortInUseError             a loopback port we need is taken
    │   ├── BuildError                 building kube-apiserver / kube-controller-manager failed
    │   └── ComponentStartError        etcd, kube-apiserver or kube-controller-manager did not come up
    ├── ClusterError               talking to a Kubernetes API server failed
    ├── SourceError                the Git source could not be fetched, or its history was rewritten
    ├── RenderError                manifests could not be read or built (file and line first)
    ├── PolicyError                a policy or exception file is invalid (file and line first)
    ├── PolicyBlockedError         a revision has findings at or above the deny level (one line per finding)
    ├── ApplyError                 a revision could not be applied (one line per object at fault)
    ├── AdmissionError             an AdmissionReview, the webhook's certificates or configurations are unusable
    └── NotifyError                a notice could not be delivered to one destination (that one alone)
"""


class GitOpsGuardError(Exception):
    """Base of every error gitopsguard raises on purpose; the message is meant for the user."""


class DevClusterError(GitOpsGuardError):
    """The local development control plane could not be managed."""


class MissingDependencyError(DevClusterError):
    """A system package or binary the dev cluster needs is not installed."""


class PortInUseError(DevClusterError):
    """A loopback port the dev cluster needs is used by another process."""


class BuildError(DevClusterError):
    """Building the Kubernetes control-plane binaries failed."""


class ComponentStartError(DevClusterError):
    """A control-plane component exited or never became ready."""


class ClusterError(GitOpsGuardError):
    """A Kubernetes API server could not be reached or answered with an error."""


class RenderError(GitOpsGuardError):
    """Manifests could not be read or built; the message starts with the file (and line) at fault."""


class PolicyError(GitOpsGuardError):
    """A policy or policy exception is invalid; none of the set goes into force. File and line first."""


class PolicyBlockedError(GitOpsGuardError):
    """A revision was not applied because policies deny some of its objects; ``problems`` lists them."""

    def __init__(self, summary: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(summary + "".join(f"\n  - {problem}" for problem in problems))
        self.problems = problems


class SourceError(GitOpsGuardError):
    """The Git source could not be fetched, or its history moved in a way we refuse to follow."""


class ApplyError(GitOpsGuardError):
    """A revision could not be applied; ``problems`` holds one message per object at fault."""

    def __init__(self, summary: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(summary + "".join(f"\n  - {problem}" for problem in problems))
        self.problems = problems


class AdmissionError(GitOpsGuardError):
    """An AdmissionReview could not be read, or the webhook's certificates or configurations could not be kept;
    the message starts with the request (uid) or the object concerned."""


class NotifyError(GitOpsGuardError):
    """A notice could not be delivered to one destination, or its address was refused; the message starts
    with the Secret or destination concerned and never holds a token or webhook URL."""
