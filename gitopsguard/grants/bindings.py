"""RoleBindings and ClusterRoleBindings for active grants, written while impersonating a dedicated service
account that may `bind` only the roles escalation policies name: the controller itself cannot hand out
anything else, even if a policy file or this code were wrong."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import quote

from kubernetes import client

from gitopsguard.cluster.configmaps import ensure_namespace
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError, ConflictError, IdentityError, NotFoundError, UnreachableError
from gitopsguard.grants.model import DEFAULT_KEEPER, GRANT_LABEL, KEEPER_LABEL, Grant
from gitopsguard.model import KubeObject

GRANTS_ACCOUNT = "system:serviceaccount:gitopsguard-system:gitopsguard-grants"
_RBAC = "/apis/rbac.authorization.k8s.io/v1"


_KEEPER_ID = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DEFAULT_PREFIX = "gitopsguard-grant-"


def keeper_id(text: str, where: str) -> str:
    """A keeper's identity: a DNS label (its mark is a label value, its state a ConfigMap name), never one whose
    binding names could be the cluster keeper's. IdentityError starting with ``where`` otherwise."""
    if not _KEEPER_ID.fullmatch(text) or (text != DEFAULT_KEEPER and text.startswith(_DEFAULT_PREFIX[:-1])):
        raise IdentityError(f"{where}: {text[:80]!r} is not a keeper name: give a DNS label (lowercase letters, "
                            f"digits, '-'; at most 63) not starting with {_DEFAULT_PREFIX[:-1]!r}")  # fmt: skip
    return text


def name_prefix(keeper: str) -> str:
    """What the names of this keeper's bindings start with (the cluster keeper's are as they always were)."""
    return _DEFAULT_PREFIX if keeper == DEFAULT_KEEPER else f"{keeper}."


def binding_name(grant: Grant, keeper: str = DEFAULT_KEEPER) -> str:
    return f"{name_prefix(keeper)}{grant.name}-{grant.content[:8]}"[:253]


def binding_body(grant: Grant, expires: datetime, keeper: str = DEFAULT_KEEPER) -> KubeObject:
    kind = "RoleBinding" if grant.namespace else "ClusterRoleBinding"
    metadata: KubeObject = {
        "name": binding_name(grant, keeper),
        "labels": {GRANT_LABEL: grant.content[:12], KEEPER_LABEL: keeper,
                   "app.kubernetes.io/managed-by": "gitopsguard"},
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
        labels.get(KEEPER_LABEL),
        (ref.get("apiGroup"), ref.get("kind"), ref.get("name")),
        tuple((s.get("kind"), s.get("name"), _optional(s, "apiGroup"), _optional(s, "namespace"))
              if isinstance(s, dict) else (repr(s),) for s in subjects),
    )  # fmt: skip


def matches(body: KubeObject, grant: Grant, keeper: str = DEFAULT_KEEPER) -> bool:
    """Whether ``body`` is exactly the binding ``grant`` makes under ``keeper`` (its expiry annotation aside)."""
    return identity(body) == identity(binding_body(grant, datetime.min, keeper))


def sweepable(body: KubeObject, keeper: str) -> bool:
    """Whether ``keeper`` may delete this labelled binding: it carries the keeper's mark, or no mark and a name
    only this keeper makes (made before the mark existed, or a forgery of one of ours). A binding another keeper
    marked, or one someone else labelled under another name, is never this keeper's to delete."""
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    labels = (metadata or {}).get("labels")
    mark = labels.get(KEEPER_LABEL) if isinstance(labels, dict) else None
    if mark is not None:
        return bool(mark == keeper)
    return str((metadata or {}).get("name") or "").startswith(name_prefix(keeper))


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
    keeper = DEFAULT_KEEPER  # whose bindings these are (``KEEPER_LABEL``)

    def __init__(self, api: client.ApiClient, account: str = GRANTS_ACCOUNT, *, keeper: str = DEFAULT_KEEPER) -> None:
        self._raw = RawApi(api, impersonate=account)
        self.keeper = keeper_id(keeper, "grants keeper")

    def bind(self, grant: Grant, expires: datetime) -> str | None:
        """Create the grant's binding; None when it is in place, else why not. A binding already under its
        name (409) counts only when it is exactly the grant's; otherwise it is replaced."""
        body = binding_body(grant, expires, self.keeper)
        name = binding_name(grant, self.keeper)
        path = self._path(body["kind"], grant.namespace)
        where = f"{body['kind']}/{f'{grant.namespace}/' if grant.namespace else ''}{name}"
        try:
            try:
                self._raw.call("POST", path, where, body=body)
            except ConflictError:
                self._replace(f"{path}/{quote(name, safe='')}", where, grant, body)
        except UnreachableError:
            raise
        except ClusterError as error:
            return str(error)
        return None

    def _replace(self, path: str, where: str, grant: Grant, body: KubeObject) -> None:
        """Keep a same-named binding that is exactly the grant's; delete anything else and create ours."""
        try:
            live = self._raw.get(path, where)
            if matches(live, grant, self.keeper):
                return
            self._raw.delete(path, where, body={"preconditions": {"uid": (live.get("metadata") or {}).get("uid")}})
        except NotFoundError:
            pass  # gone meanwhile: create ours
        self._raw.call("POST", path.rsplit("/", 1)[0], where, body=body)

    def listed(self) -> list[KubeObject]:
        """Every binding carrying the grant label that this keeper may sweep (``sweepable``)."""
        found = []
        for kind in ("RoleBinding", "ClusterRoleBinding"):
            answer = self._raw.get(self._path(kind, ""), f"listing {kind}s labelled {GRANT_LABEL}",
                                   query={"labelSelector": GRANT_LABEL})  # fmt: skip
            for item in answer.get("items") or []:
                item["kind"] = kind
                if sweepable(item, self.keeper):
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
