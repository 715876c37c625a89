"""The one exception hierarchy of gitopsguard.

Library errors (subprocess, kubernetes, git, OS) are translated into these once, at the edge where they
happen, chaining the original with ``raise ... from e``. Each says whether it is worth retrying (``retryable``,
and ``delay`` when the server said how long to wait): the loops' backoff goes by that alone (``backoff.py``).
Every message starts with the thing it concerns (a file, an object, a component) and, where there is one, says
what to do next::

    GitOpsGuardError
    ├── DevClusterError            the local development control plane
    │   ├── MissingDependencyError     a system package or binary is absent
    │   ├── PortInUseError             a loopback port we need is taken
    │   ├── BuildError                 building kube-apiserver / kube-controller-manager failed
    │   ├── ImageBuildError            building the Debian base or an image with buildah failed
    │   └── ComponentStartError        etcd, kube-apiserver or kube-controller-manager did not come up
    ├── ClusterError               talking to a Kubernetes API server failed
    │   ├── NotFoundError              404: the object (or its kind) is absent
    │   ├── ConflictError              409: it exists already, or changed since it was read
    │   ├── ForbiddenError             401/403: our credentials may not do this (grant the RBAC it names)
    │   │   └── ImpersonationRefusedError  403: we may not act as a unit's service account (cluster/impersonation.py)
    │   ├── InvalidError               400/422: the object is refused as written (``causes`` say where)
    │   ├── TooManyRequestsError       429: throttled (API Priority and Fairness); retry after ``delay``
    │   ├── ServerTimeoutError         504 / reason ServerTimeout: the server gave up; retry
    │   ├── UnavailableError           502/503: the server (or what is in front of it) is away; retry
    │   ├── UnreachableError           no answer at all: refused, reset or silent connection; retry
    │   ├── ListExpiredError           410: a paged list's continue token expired; list from the start (apply.py)
    │   └── WatchExpiredError          410 Gone: a watch resumed from a version no longer kept; list again (informer.py)
    ├── IdentityError              an account to act as is not a service account's name (cluster/impersonation.py)
    ├── LeaseHeldError             another holder has the unit's Lease: a one-off pass does not run beside it
    ├── SourceError                the Git source could not be fetched, or its history was rewritten
    ├── RenderError                manifests could not be read or built (file and line first)
    ├── UnreviewedRevisionError    (source/review.py) a revision lacks the approvals the trust file asks for
    ├── PolicyError                a policy or exception file is invalid (file and line first)
    │   └── FieldError                 (grants/fields.py) one field of a grants file is wrong (file and line)
    ├── PolicyBlockedError         a revision has findings at or above the deny level (one line per finding)
    │   └── RevisionBlockedError       (gate.py) the gate refuses a revision, with its findings
    ├── ApplyError                 a revision could not be applied (one line per object at fault)
    │   ├── RefusedError               (cluster/apply.py) the server refused objects of a dry run (each typed)
    │   ├── RefusedObjectsError        (sync/refused.py) ... as FAILED changes (reason, apiVersion, causes)
    │   └── RolledBackError            (sync/rollback.py) it failed part-way and what it created was deleted
    ├── UnitError                  (units/) a Unit's spec is invalid, its dependencies cannot be ordered, or it
    │   │                          is not under the root path's control (file and line, or the Unit, first)
    │   └── HealthCheckError           (sync/wait.py) a check of its spec.wait.cel is not valid CEL
    ├── AdmissionError             an AdmissionReview, the webhook's certificates or configurations are unusable
    │   └── BadReviewError             (admission/request.py) an AdmissionReview that cannot be read
    └── NotifyError                a notice could not be delivered to one destination (that one alone)
"""


class GitOpsGuardError(Exception):
    """Base of every error gitopsguard raises on purpose; the message is meant for the user.

    ``retryable`` says whether the same step may succeed later unchanged (kopf's TemporaryError against
    PermanentError): a loop then tries again soon, after ``delay`` seconds when the server said how long, else
    with a jittered backoff (``backoff.py``). Any other error waits for a change, or the loop's interval."""

    retryable = False
    delay: float | None = None


class DevClusterError(GitOpsGuardError):
    """The local development control plane could not be managed."""


class MissingDependencyError(DevClusterError):
    """A system package or binary the dev cluster needs is not installed."""


class PortInUseError(DevClusterError):
    """A loopback port the dev cluster needs is used by another process."""


class BuildError(DevClusterError):
    """Building the Kubernetes control-plane binaries failed."""


class ImageBuildError(DevClusterError):
    """debootstrap or buildah failed while making the Debian base or an image; nothing was cached."""


class ComponentStartError(DevClusterError):
    """A control-plane component exited or never became ready."""


class ClusterError(GitOpsGuardError):
    """A Kubernetes API server could not be reached or answered with an error; the message starts with the
    object (``ConfigMap/gitopsguard-system/x: ...``) or request concerned.

    ``retryable`` says whether the same request may succeed later unchanged (as kopf's TemporaryError against
    PermanentError); ``delay`` is how long the server asked us to wait first, when it said."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class NotFoundError(ClusterError):
    """404: the object, its namespace or its kind is absent."""


class ConflictError(ClusterError):
    """409: the object exists already (a create), or changed since it was read (a stale resourceVersion)."""


class ForbiddenError(ClusterError):
    """401 or 403: the credentials are refused, or RBAC does not allow this verb on this object."""


class ImpersonationRefusedError(ForbiddenError):
    """403 on impersonation: gitopsguard's own account may not act as the unit's service account."""


class InvalidError(ClusterError):
    """400 or 422: the request or object is refused as written; ``causes`` are the server's field-level
    reasons (``details.causes``: ``{"reason", "message", "field"}``), kept as it sent them."""

    def __init__(self, message: str, *, causes: tuple[dict[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.causes = causes


class TooManyRequestsError(ClusterError):
    """429: throttled (API Priority and Fairness, max-in-flight); ``delay`` is the server's Retry-After."""

    retryable = True


class ServerTimeoutError(ClusterError):
    """504, or a Status with reason ServerTimeout: the server did not finish in time; the same request may."""

    retryable = True


class UnavailableError(ClusterError):
    """502 or 503: the API server, an aggregated API or a proxy in front of it is away for now. (A 500 is a
    plain ClusterError: it is what a failing webhook answers, and asking again changes nothing.)"""

    retryable = True


class UnreachableError(ClusterError):
    """No answer at all: the connection was refused, reset or stayed silent past the timeout."""

    retryable = True


class IdentityError(GitOpsGuardError):
    """An account to act as (an option, a Unit's serviceAccountName) is not a service account's name; refused
    before it goes into a header."""


class LeaseHeldError(GitOpsGuardError):
    """Another holder has the unit's Lease (a running controller): a one-off pass does not run beside it."""


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
    """A revision could not be applied; ``problems`` holds one message per object at fault. ``retryable`` when
    every object failed only for a reason that passes (throttled, the server away), as ``cluster.apply`` says."""

    def __init__(
        self, summary: str, problems: tuple[str, ...] = (), *, retryable: bool = False, delay: float | None = None
    ) -> None:
        super().__init__(summary + "".join(f"\n  - {problem}" for problem in problems))
        self.problems, self.retryable, self.delay = problems, retryable, delay


class UnitError(GitOpsGuardError):
    """A Unit cannot be served as written: its spec is invalid, its dependencies cannot be ordered, or it was
    not declared under the root path. The message starts with the file and line, or ``Unit/NS/NAME``."""


class HealthCheckError(UnitError):
    """A Unit's ``spec.wait.cel`` holds an expression that does not compile: the Unit cannot be waited for as
    written. The message starts with the Unit's file and line, the Unit and the field, then the compiler's
    words; nothing was waited for. (An expression that compiles but fails on an object is no error: that
    object's health is Failed, with the same words.)"""


class AdmissionError(GitOpsGuardError):
    """An AdmissionReview could not be read, or the webhook's certificates or configurations could not be kept;
    the message starts with the request (uid) or the object concerned."""


class NotifyError(GitOpsGuardError):
    """A notice could not be delivered to one destination, or its address was refused; the message starts
    with the Secret or destination concerned and never holds a token or webhook URL."""
