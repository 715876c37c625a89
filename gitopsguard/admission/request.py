"""Reading an ``admission.k8s.io/v1`` AdmissionReview: hostile bytes in, a typed request out, or an
AdmissionError that says what is wrong (never another exception: the server answers every request).

The API server is the usual sender, but anyone who reaches the port can send anything: sizes, nesting,
numbers Python cannot turn into text, NaN, odd types. The object's namespace is taken from the request
(the API server's, from the URL), never from the object alone, so an object cannot leave its namespace out
to dodge a policy or claim an exception scoped to another namespace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gitopsguard.errors import AdmissionError
from gitopsguard.model import KubeObject

MAX_REVIEW_BYTES = 7 * 1024 * 1024  # object and oldObject, each up to the API server's 3 MiB, and the envelope
MAX_FIELD = 1024  # characters of a uid, name, username or group
MAX_GROUPS = 256
REVIEW_VERSION = "admission.k8s.io/v1"
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})


class BadReviewError(AdmissionError):
    """The review cannot be judged; ``uid`` is the request's when it could be read ("" otherwise)."""

    def __init__(self, message: str, uid: str = "") -> None:
        super().__init__(message)
        self.uid = uid


@dataclass(frozen=True)
class AdmissionRequest:
    uid: str
    group: str
    version: str
    kind: str
    resource: str
    sub_resource: str
    namespace: str
    name: str
    operation: str
    username: str
    groups: tuple[str, ...]
    obj: KubeObject | None  # the object as it would be stored (None for DELETE and CONNECT)
    old: KubeObject | None
    dry_run: bool

    @property
    def subject(self) -> str:
        """Kind/namespace/name as the rest of gitopsguard names objects."""
        name = self.name or str(((self.obj or {}).get("metadata") or {}).get("generateName") or "") + "*"
        return f"{self.kind}/{self.namespace}/{name}" if self.namespace else f"{self.kind}/{name}"


def parse_review(data: bytes) -> AdmissionRequest:
    """The request in an AdmissionReview; BadReviewError when it is not one."""
    if len(data) > MAX_REVIEW_BYTES:
        raise BadReviewError(f"AdmissionReview: {len(data)} bytes, over the {MAX_REVIEW_BYTES}-byte limit")
    try:
        review = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, a number too long, nesting too deep
        raise BadReviewError(f"AdmissionReview: not valid JSON ({type(error).__name__}: {str(error)[:200]})") from error
    if not isinstance(review, dict) or review.get("apiVersion") != REVIEW_VERSION:
        raise BadReviewError(f"AdmissionReview: apiVersion must be {REVIEW_VERSION} (register the webhook with "
                             'admissionReviewVersions: ["v1"])')  # fmt: skip
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadReviewError("AdmissionReview: `request` must be an object")
    uid = _text(request, "uid", "")
    if not uid:
        raise BadReviewError("AdmissionReview: `request.uid` is required")
    try:
        return _request(request, uid)
    except BadReviewError as error:
        raise BadReviewError(str(error), uid) from None


def _request(request: dict[str, Any], uid: str) -> AdmissionRequest:
    kind = _mapping(request, "kind", uid)
    user = _mapping(request, "userInfo", uid)
    operation = _text(request, "operation", uid)
    if operation not in OPERATIONS:
        raise BadReviewError(f"AdmissionReview {uid}: operation {operation[:40]!r} is not one of {sorted(OPERATIONS)}")
    groups = user.get("groups") or []
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS or not all(isinstance(g, str) for g in groups):
        raise BadReviewError(f"AdmissionReview {uid}: userInfo.groups must be a list of at most {MAX_GROUPS} names")
    resource = _mapping(request, "resource", uid)
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise BadReviewError(f"AdmissionReview {uid}: dryRun must be true or false")
    return AdmissionRequest(
        uid=uid,
        group=_text(kind, "group", uid),
        version=_text(kind, "version", uid),
        kind=_text(kind, "kind", uid),
        resource=_text(resource, "resource", uid),
        sub_resource=_text(request, "subResource", uid),
        namespace=_text(request, "namespace", uid),
        name=_text(request, "name", uid),
        operation=operation,
        username=_text(user, "username", uid),
        groups=tuple(g[:MAX_FIELD] for g in groups),
        obj=_object(request, "object", uid),
        old=_object(request, "oldObject", uid),
        dry_run=dry_run,
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _mapping(node: dict[str, Any], key: str, uid: str) -> dict[str, Any]:
    value = node.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadReviewError(f"AdmissionReview {uid}: `{key}` must be an object")
    return value


def _text(node: dict[str, Any], key: str, uid: str) -> str:
    value = node.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_FIELD:
        raise BadReviewError(f"AdmissionReview {uid or '?'}: `{key}` must be text of at most {MAX_FIELD} characters")
    return value


def _object(request: dict[str, Any], key: str, uid: str) -> KubeObject | None:
    value = request.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadReviewError(f"AdmissionReview {uid}: `{key}` must be an object")
    metadata = value.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadReviewError(f"AdmissionReview {uid}: `{key}.metadata` must be an object")
    return value
