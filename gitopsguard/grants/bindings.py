"""RoleBindings and ClusterRoleBindings for active grants, written while impersonating a dedicated service
account that may `bind` only the roles escalation policies name: the controller itself cannot hand out
anything else, even if a policy file or this code were wrong."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from kubernetes import client

from gitopsguard.cluster.configmaps import ensure_namespace
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError, ConflictError, NotFoundError, UnreachableError
from gitopsguard.grants.model import GRANT_LABEL, Grant
from gitopsguard.model import KubeObject

GRANTS_ACCOUNT = "system:serviceaccount:gitopsguard-system:gitopsguard-grants"
_RBAC = "/apis/rbac.authorization.k8s.io/v1"


def binding_name(grant: Grant) -> str:
    return f"gitopsguard-grant-{grant.name}-{grant.content[:8]}"[:253]


def binding_body(grant: Grant, expires: datetime) -> KubeObject:
    kind = "RoleBinding" if grant.namespace else "ClusterRoleBinding"
    metadata: KubeObject = {
        "name": binding_name(grant),
        "labels": {GRANT_LABEL: grant.content[:12], "app.kubernetes.io/managed-by": "gitopsguard"},
        "annotations": {"gitopsguard.io/grant-file": grant.path,
                        "gitopsguard.io/expires": f"{expires:%Y-%m-%dT%H:%M:%SZ}",
                        "gitopsguard.io/reason": grant.reason[:500]},
    }  # fmt: skip
    if grant.namespace:
        metadata["namespace"] = grant.namespace
    subject = {"kind": grant.subject_kind, "name": grant.subject, "apiGroup": "rbac.authorization.k8s.io"}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": grant.role_kind, "name": grant.role},
            "subjects": [subject]}  # fmt: skip


def _optional(node: dict[str, object], key: str) -> object:
    """An optional field: absent and null are the same to the server; anything else is kept as it is."""
    value = node.get(key)
    return "" if value is None else value


def identity(body: KubeObject) -> tuple[object, ...]:
    """What a binding gives to whom, and where: kind, namespace, name, grant label, roleRef and subjects.
    Annotations and server-set fields are left out; everything that grants anything is in."""
    metadata, ref, subjects = body.get("metadata"), body.get("roleRef"), body.get("subjects")
    metadata = metadata if isinstance(metadata, dict) else {}
    labels = metadata.get("labels")
    labels = labels if isinstance(labels, dict) else {}
    ref = ref if isinstance(ref, dict) else {}
    subjects = subjects if isinstance(subjects, list) else []
    return (
        body.get("kind"), _optional(metadata, "namespace"), metadata.get("name"), labels.get(GRANT_LABEL),
        (ref.get("apiGroup"), ref.get("kind"), ref.get("name")),
        tuple((s.get("kind"), s.get("name"), _optional(s, "apiGroup"), _optional(s, "namespace"))
              if isinstance(s, dict) else (repr(s),) for s in subjects),
    )  # fmt: skip


def matches(body: KubeObject, grant: Grant) -> bool:
    """Whether ``body`` is exactly the binding ``grant`` makes (its expiry annotation aside)."""
    return identity(body) == identity(binding_body(grant, datetime.min))


def install_rbac(api: client.ApiClient, objects: list[KubeObject]) -> None:
    """Server-side apply the grants account and its RBAC (as `gitopsguard grants rbac` prints them)."""
    raw = RawApi(api)
    ensure_namespace(raw, "gitopsguard-system")
    plurals = {"ServiceAccount": "serviceaccounts", "ClusterRole": "clusterroles",
               "ClusterRoleBinding": "clusterrolebindings"}  # fmt: skip
    for body in objects:
        kind, name = body["kind"], body["metadata"]["name"]
        base = "/api/v1/namespaces/gitopsguard-system" if kind == "ServiceAccount" else _RBAC
        try:
            raw.call("PATCH", f"{base}/{plurals[kind]}/{name}", f"{kind}/{name}", body=body,
                     query={"fieldManager": "gitopsguard", "force": "true"},
                     content_type="application/apply-patch+yaml")  # fmt: skip
        except UnreachableError:
            raise
        except ClusterError as error:
            reason = str(error).removeprefix(f"{kind}/{name}: ")
            raise type(error)(f"{kind}/{name}: cannot install the grants account: {reason}") from error


class Binder:
    def __init__(self, api: client.ApiClient, account: str = GRANTS_ACCOUNT) -> None:
        self._raw = RawApi(api, impersonate=account)

    def bind(self, grant: Grant, expires: datetime) -> str | None:
        """Create the grant's binding; None when it is in place, else why not. A binding already under its
        name (409) counts only when it is exactly the grant's; otherwise it is replaced."""
        body = binding_body(grant, expires)
        path = self._path(body["kind"], grant.namespace)
        where = f"{body['kind']}/{f'{grant.namespace}/' if grant.namespace else ''}{binding_name(grant)}"
        try:
            try:
                self._raw.call("POST", path, where, body=body)
            except ConflictError:
                self._replace(f"{path}/{quote(binding_name(grant), safe='')}", where, grant, body)
        except UnreachableError:
            raise
        except ClusterError as error:
            return str(error)
        return None

    def _replace(self, path: str, where: str, grant: Grant, body: KubeObject) -> None:
        """Keep a same-named binding that is exactly the grant's; delete anything else and create ours."""
        try:
            live = self._raw.get(path, where)
            if matches(live, grant):
                return
            self._raw.delete(path, where, body={"preconditions": {"uid": (live.get("metadata") or {}).get("uid")}})
        except NotFoundError:
            pass  # gone meanwhile: create ours
        self._raw.call("POST", path.rsplit("/", 1)[0], where, body=body)

    def listed(self) -> list[KubeObject]:
        """Every binding carrying the grant label, whoever made it."""
        found = []
        for kind in ("RoleBinding", "ClusterRoleBinding"):
            answer = self._raw.get(self._path(kind, ""), f"listing {kind}s labelled {GRANT_LABEL}",
                                   query={"labelSelector": GRANT_LABEL})  # fmt: skip
            for item in answer.get("items") or []:
                item["kind"] = kind
                found.append(item)
        return found

    def unbind(self, body: KubeObject) -> str | None:
        """Delete the binding; None when it is gone. A deletion held by finalizers would leave the binding,
        and the access it gives, in place: they are taken off, and that is reported."""
        metadata = body.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "")
        where = f"{body['kind']}/{f'{namespace}/' if namespace else ''}{metadata.get('name')}"
        path = f"{self._path(str(body['kind']), namespace)}/{quote(str(metadata.get('name')), safe='')}"
        try:
            answer = self._raw.delete(path, where)
        except NotFoundError:
            return None
        except UnreachableError:
            raise
        except ClusterError as error:
            return str(error)
        held = (answer.get("metadata") or {}).get("finalizers") if answer.get("kind") == body["kind"] else None
        if not held:
            return None
        finalizers = ", ".join(map(str, held))
        try:
            self._raw.call("PATCH", path, where, body={"metadata": {"finalizers": None}},
                           content_type="application/merge-patch+json")  # fmt: skip
        except NotFoundError:
            pass
        except UnreachableError:
            raise
        except ClusterError as error:
            return f"{where}: its deletion is held by finalizers {finalizers}: {str(error).removeprefix(where + ': ')}"
        return (f"{where}: its deletion was held by finalizers {finalizers}; took them off so that the access it "
                "gives ends (find out who added them)")  # fmt: skip

    @staticmethod
    def _path(kind: str, namespace: str) -> str:
        if kind == "RoleBinding":
            # Names from grant files go into the URL: quoted, so that "../" or "?" cannot reach another resource.
            where = f"/namespaces/{quote(namespace, safe='')}" if namespace else ""
            return f"{_RBAC}{where}/rolebindings"
        return f"{_RBAC}/clusterrolebindings"
