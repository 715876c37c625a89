"""Acting as a unit's service account: the identity a tenant's apply, dry run and prune are sent as.

Only ``Impersonate-User: system:serviceaccount:NS:NAME`` is sent, never ``Impersonate-Group``. For a service
account named without groups the API server adds exactly the groups a real token of that account has
(``system:serviceaccounts``, ``system:serviceaccounts:NS``) and ``system:authenticated``; verified on
kube-apiserver 1.20.2 by ``tests/integration/test_tenant_impersonation.py``, each group bound alone. Naming
any group ourselves would make the server drop that mapping and ask whether we may impersonate each group,
and the per-namespace group cannot be limited by ``resourceNames`` to namespaces nobody knows in advance;
so the controller needs ``impersonate`` on ``serviceaccounts`` alone, bound per tenant namespace.

The names are checked before they go into a header: a colon or line break in them could name another user
or add a header (header injection), so only Kubernetes names pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gitopsguard.errors import IdentityError

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # a namespace's name (DNS-1123 label)
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")  # a service account's (DNS-1123 subdomain)
RBAC_HINT = ("bind ClusterRole gitopsguard-impersonate-tenants to ServiceAccount gitopsguard-system/gitopsguard "
             "with a RoleBinding in the account's namespace (manifests/controller-rbac.yaml)")  # fmt: skip


@dataclass(frozen=True)
class ServiceAccount:
    """A service account to act as; ``where`` names what asked for it (an option, a Unit) in errors."""

    namespace: str
    name: str

    def __post_init__(self) -> None:
        if not _LABEL.fullmatch(self.namespace) or not _SUBDOMAIN.fullmatch(self.name) or ".." in self.name:
            raise IdentityError(f"service account {self.namespace!r}/{self.name!r}: not a Kubernetes name (a "
                                "namespace is a DNS label, a name a DNS subdomain: lowercase letters, digits, '-' "
                                "and '.'); give NAMESPACE/NAME")  # fmt: skip

    @classmethod
    def parse(cls, text: str, where: str) -> ServiceAccount:
        """``NAMESPACE/NAME``; IdentityError starting with ``where`` otherwise."""
        namespace, slash, name = text.partition("/")
        if not slash:
            raise IdentityError(f"{where}: {text[:100]!r} is not NAMESPACE/NAME; give the service account as "
                                "NAMESPACE/NAME, such as team-a/deployer")  # fmt: skip
        try:
            return cls(namespace, name)
        except IdentityError as error:
            raise IdentityError(f"{where}: {error}") from error

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups the server gives a request made as this account (not sent: see the module)."""
        return ("system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated")

    def headers(self) -> dict[str, str]:
        return {"Impersonate-User": self.user}

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def refused_impersonation(status: int, message: str) -> bool:
    """Whether a refusal is the server's refusal to let us impersonate (rather than the account's own)."""
    return status == 403 and "cannot impersonate" in message


def account_for(named: str, default: str, *, namespace: str = "", where: str) -> ServiceAccount | None:
    """The account a unit acts as: the one it names, else the operator's ``default``, else None (the
    controller's own account: a platform unit). For a Unit (``namespace``: its own) both are resolved in that
    namespace, as Flux does: a Unit names a bare ``NAME`` and never reaches another namespace's account; an
    operator's default may still be ``NAMESPACE/NAME``. Without ``namespace`` (the single unit of `run`) both
    are ``NAMESPACE/NAME``. IdentityError starting with ``where`` for anything else."""
    if namespace and "/" in named:
        raise IdentityError(f"{where}: serviceAccountName {named[:100]!r} names another namespace; a Unit acts "
                            "only as an account of its own namespace: give a bare NAME")  # fmt: skip
    if named:
        return ServiceAccount.parse(f"{namespace}/{named}" if namespace else named, where)
    if not default:
        return None
    if namespace and "/" not in default:
        return ServiceAccount.parse(f"{namespace}/{default}", f"{where} (the default service account)")
    return ServiceAccount.parse(default, f"{where} (the default service account)")
