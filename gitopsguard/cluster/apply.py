"""Server-side apply against the API server: resolve kinds, dry-run, apply, list what we own, delete.

Every client exception is translated here into a message that starts with the object and its origin.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import quote

from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError
from kubernetes.dynamic.resource import Resource

from gitopsguard.cluster.http import Answer
from gitopsguard.cluster.impersonation import ServiceAccount
from gitopsguard.cluster.rest import (
    JSON,
    RawApi,
    Request,
    Written,
    answer_object,
    error_for,
    message_of,
    parsed,
    written,
)
from gitopsguard.errors import ApplyError, ClusterError, ImpersonationRefusedError
from gitopsguard.model import UNIT_LABEL, KubeObject, Manifest, ObjectKey

FIELD_MANAGER = "gitopsguard"
Scope = tuple[str, str, str]  # (apiVersion, kind, namespace): where a unit's objects of a kind are read; "" cluster
# Requests in flight per batch. etcd commits concurrent writes together: at 64 rather than 16 the initial
# apply of 2,020 objects took about 5% less time and etcd 10-20% less CPU (bench/apply_2000.py).
WIDTH = 64
PAGE = 500  # objects per list request when a list is paged (``list_pages``): client-go's reflector asks for 500
PAGE_RESTARTS = 3  # a paged list whose continue token expired is listed again from the start this many times
# Objects per page of a pass's own list of what a unit owns (``list_owned``). Each page is a round trip the pass
# waits for, kind after kind: pages of 500 made the one-off no-op pass over 2,020 objects wait a second round
# for its 1,000 ConfigMaps (0.16 -> 0.29 s, bench/noop_pass.py); 2,000 keeps such a pass to one round and still
# cuts the loop's answer of 5,000 ConfigMaps (about 6 MB of JSON) into three.
OWNED_PAGE = 2000
R = TypeVar("R")
APPLY_PATCH = "application/apply-patch+yaml"
# The client library's discovery is not safe to share between threads: a kind it does not know makes it rebuild
# its cache while another thread may be iterating it, and every DynamicClient writes the same cache file.
# Passes run on several workers (fleet_pool.py); a kind is discovered once per applier, so one lock costs little.
_DISCOVERY = threading.Lock()


class ListExpiredError(ClusterError):
    """The server no longer serves the rest of a paged list (its continue token expired): list from the start."""


class Prepared(Protocol):
    """One object as the plan prepared it for sending (``plan.prepare.Desired``): what this edge reads of it.
    A Protocol, so that the API edge depends on no pipeline stage (the import contract ``api-edge``)."""

    @property
    def key(self) -> ObjectKey: ...
    @property
    def origin(self) -> str: ...
    @property
    def api_version(self) -> str: ...
    @property
    def payload(self) -> bytes: ...


@dataclass(frozen=True)
class Refused:
    """Why one object was not stored (or would not be, in a dry run): the typed error, its message starting
    with the object and the file it came from. ``ApplyError`` when it could not even be sent (unknown kind)."""

    key: ObjectKey
    error: ClusterError | ApplyError

    def __str__(self) -> str:
        return str(self.error)


class RefusedError(ApplyError):
    """The server refused some objects of a dry run; ``refused`` holds each one's typed error."""

    def __init__(self, summary: str, refused: Sequence[Refused]) -> None:
        retryable, delay = _worth_waiting(refused)
        super().__init__(summary, tuple(str(r) for r in refused), retryable=retryable, delay=delay)
        self.summary, self.refused = summary, tuple(refused)


@dataclass(frozen=True)
class Created:
    """An object the API server answered 201 Created for, labelled as the applying unit's: the one kind of
    object a failed revision's rollback may delete (by ``uid``, so never another object of that name)."""

    key: ObjectKey
    api_version: str
    uid: str


class Applier:
    """Discovery through the dynamic client; per-object requests in batches (``RawApi.send_all``)."""

    def __init__(self, api: client.ApiClient, *, workers: int = WIDTH, acting_as: ServiceAccount | None = None) -> None:
        self._dyn = DynamicClient(api)
        self._raw = RawApi(api)
        # Writes (dry runs, applies, deletes) as the unit's account when it has one: the API server then
        # confines them to what that account may do. Reads stay ours: they change nothing.
        self.acting_as = acting_as
        self._writes = self._raw.impersonating(acting_as) if acting_as else self._raw
        self.raw = self._raw  # for edges that read single objects (Events on them, for instance)
        self._workers = workers
        self._resources: dict[tuple[str, str], Resource] = {}
        # a long-running loop's watch of every Namespace (``cluster/namespaces.py``): None while not in sync
        self.namespaces_from: Callable[[], dict[str, KubeObject] | None] | None = None

    def acting(self, account: ServiceAccount) -> Applier:
        """This applier's twin writing as ``account``: the same connections, discovery and kinds learned (reads
        stay ours, as in any applier). An applier of its own per account cost a connection pool and a discovery
        client each: about 0.1 MiB an account, for as many accounts as a fleet's tenants."""
        twin = copy.copy(self)
        twin.acting_as, twin._writes = account, self._raw.impersonating(account)
        return twin

    def confirm_acting_as(self, unit: str) -> None:
        """Whether the server lets us act as the unit's account at all, asked once before a pass:
        ImpersonationRefusedError naming the unit and the RBAC missing (rather than one refusal per object)."""
        if self.acting_as is not None:
            # discovery: any authenticated account may read it, so only the impersonation itself is judged
            status, answer = self._writes.request("GET", "/api")
            subject = f"unit {unit}: acting as service account {self.acting_as}"
            if isinstance(error := error_for(status, answer, subject), ImpersonationRefusedError):
                raise error

    # -- kinds ------------------------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str, where: str) -> Resource:
        cached = self._resources.get((api_version, kind))
        if cached is not None:
            return cached
        try:
            with _DISCOVERY:
                found: Resource = self._dyn.resources.get(api_version=api_version, kind=kind)
        except (ResourceNotFoundError, ResourceNotUniqueError) as error:
            raise ApplyError(
                f"{where}: the server does not serve kind {kind} in {api_version}; check the apiVersion, "
                "or install its CustomResourceDefinition first"
            ) from error
        self._resources[(api_version, kind)] = found
        return found

    def collection_path(self, api_version: str, kind: str, namespace: str | None = None) -> str:
        """The URL path listing this kind, in one namespace or across all (for lists and watches)."""
        return str(self.resource(api_version, kind, f"{kind} ({api_version})").path(namespace=namespace))

    def object_path(self, api_version: str, key: ObjectKey) -> str:
        """The URL path of one object."""
        return one_object_path(self.resource(api_version, key.kind, str(key)), key, str(key))

    def namespaced(self, manifest: Manifest) -> bool:
        resource = self.resource(str(manifest.body["apiVersion"]), manifest.key.kind, manifest.origin)
        return bool(resource.namespaced)

    # -- reading ----------------------------------------------------------------------------------------

    def list_owned(self, scopes: Iterable[Scope], unit: str) -> dict[ObjectKey, KubeObject]:
        """The live objects carrying this unit's label in these scopes (apiVersion, kind, namespace; "" for
        a cluster-scoped kind), and no others: anyone who may label an object may file it under any unit, so
        what lies outside the namespaces a unit applies to is never its own. Each kind is listed across the
        cluster (one request, however many namespaces); a kind whose list cannot be read (an object in it no
        client parses: ``tests/integration/test_deep_objects.py``) is listed again namespace by namespace, so
        that such an object elsewhere cannot stop the unit."""
        wanted: dict[tuple[str, str], set[str]] = {}
        for api_version, kind, namespace in scopes:
            wanted.setdefault((api_version, kind), set()).add(namespace)
        selector, what = {"labelSelector": f"{UNIT_LABEL}={unit}"}, f"owned by unit {unit}"
        live: dict[ObjectKey, KubeObject] = {}
        for (api_version, kind), listed in self._paged_together(sorted(wanted), selector, what).items():
            namespaces = wanted[(api_version, kind)]
            if not isinstance(listed, dict):
                if "" in namespaces:  # a cluster-scoped kind: no namespace to narrow the list to
                    raise listed
                listed = self._list([(api_version, kind)] * len(namespaces), sorted(namespaces), selector, what)
            live |= {key: body for key, body in listed.items() if key.namespace in namespaces}
        return live

    def _paged_together(
        self, kinds: Sequence[tuple[str, str]], query: dict[str, str], what: str
    ) -> dict[tuple[str, str], dict[ObjectKey, KubeObject] | ApplyError | ClusterError]:  # fmt: skip
        """Each kind listed across the cluster in pages of ``OWNED_PAGE`` (as ``list_pages``), the kinds' pages asked
        for together (the wait is the longest list's, not their sum), each page parsed before the next is read: one
        answer of 5,000 objects held about 6 MB of JSON beside what it parsed to. Per kind its objects, or why
        they could not be listed; a kind whose continue token expired is listed again from the start."""
        paths = {kind: self.collection_path(*kind) for kind in kinds}
        listed: dict[tuple[str, str], dict[ObjectKey, KubeObject]] = {kind: {} for kind in kinds}
        failed: dict[tuple[str, str], ApplyError | ClusterError] = {}
        tokens, restarts = dict.fromkeys(kinds, ""), 0
        while tokens:
            asked = sorted(tokens)
            limit = {"limit": str(OWNED_PAGE)}
            queries = [{**query, **limit} | ({"continue": tokens[k]} if tokens[k] else {}) for k in asked]
            requests = [Request("GET", paths[kind], q, None) for kind, q in zip(asked, queries, strict=True)]
            for kind, answer in zip(asked, self._raw.send_all(requests, self._workers), strict=True):
                if answer.status == 410 and tokens[kind] and restarts < PAGE_RESTARTS:
                    listed[kind], tokens[kind], restarts = {}, "", restarts + 1
                    continue
                token = tokens.pop(kind)
                try:
                    page, following = _page(*kind, answer, what)
                except (ApplyError, ClusterError) as error:
                    failed[kind] = error
                    continue
                listed[kind] |= page
                if following == token and token:  # a server paging forever: failed, never read as all there is
                    failed[kind] = ClusterError(f"listing {kind[1]} {what}: the server answered the same continue "
                                                "token twice; listing again")  # fmt: skip
                elif following:
                    tokens[kind] = following
        return {kind: failed.get(kind, listed[kind]) for kind in kinds}

    def namespaces(self) -> dict[str, KubeObject]:
        """Every live Namespace by name (policies may look at an object's namespace): from the loop's watch while
        it is in sync, else listed."""
        watched = self.namespaces_from() if self.namespaces_from is not None else None
        if watched is not None:
            return watched
        return {key.name: body for key, body in self._list([("v1", "Namespace")], [None], None, "").items()}

    def list_in_namespace(self, kinds: Iterable[tuple[str, str]], namespace: str) -> dict[ObjectKey, KubeObject]:
        """Every live object of these (apiVersion, kind) pairs in one namespace, whoever owns it."""
        kinds = list(kinds)
        return self._list(kinds, [namespace] * len(kinds), None, f"in namespace {namespace}")

    def list_kind(
        self, api_version: str, kind: str, *, namespace: str | None = None, query: dict[str, str] | None = None,
        what: str = "",
    ) -> tuple[dict[ObjectKey, KubeObject], str]:  # fmt: skip
        """Every live object of one kind matching ``query``, and the list's resourceVersion (to watch from)."""
        status, listed = self._raw.request("GET", self.collection_path(api_version, kind, namespace), query=query)
        live = _items(api_version, kind, status, listed, what)
        return live, str((listed.get("metadata") or {}).get("resourceVersion") or "")

    def list_pages(
        self, api_version: str, kind: str, *, namespace: str | None = None, query: dict[str, str] | None = None,
        what: str = "", limit: int = PAGE,
    ) -> Iterator[tuple[dict[ObjectKey, KubeObject], str]]:  # fmt: skip
        """``list_kind`` ``limit`` objects at a time (``limit`` and ``continue``, as client-go's reflector pages its
        lists), each page with the list's resourceVersion: a caller turns each page into what it keeps before the
        next is read, instead of holding one answer of every object (5,000 ConfigMaps: about 6 MB of JSON, then
        parsed). The pages together are one consistent list, at the first page's resourceVersion. ListExpiredError
        when the server no longer serves the rest of it (410 once etcd compacted that revision): list again."""
        path, token, subject = self.collection_path(api_version, kind, namespace), "", f"listing {kind} {what}"
        while True:
            paged = {**(query or {}), "limit": str(max(1, limit))} | ({"continue": token} if token else {})
            status, listed = self._raw.request("GET", path, query=paged)
            if status == 410 and token:
                raise ListExpiredError(f"{subject}: the list's continue token expired ({message_of(status, listed)}); "
                                       "listing again from the start")  # fmt: skip
            metadata = listed.get("metadata")
            metadata = metadata if isinstance(metadata, dict) else {}
            yield _items(api_version, kind, status, listed, what), str(metadata.get("resourceVersion") or "")
            token, last = str(metadata.get("continue") or ""), token
            if not token:
                return
            if token == last:  # a server that pages forever would hold the caller forever
                raise ClusterError(f"{subject}: the server answered the same continue token twice; listing again")

    def _list(
        self, kinds: Sequence[tuple[str, str]], namespaces: Sequence[str | None], query: dict[str, str] | None,
        what: str,
    ) -> dict[ObjectKey, KubeObject]:  # fmt: skip
        """Each kind's list in the namespace beside it (None: across the cluster), asked for together (the server
        works on them side by side)."""
        paths = [self.collection_path(v, k, n) for (v, k), n in zip(kinds, namespaces, strict=True)]
        answers = self._raw.send_all([Request("GET", path, query or {}, None) for path in paths], self._workers)
        live: dict[ObjectKey, KubeObject] = {}
        for (api_version, kind), answer in zip(kinds, answers, strict=True):
            live |= _listed(api_version, kind, answer, what)
        return live

    # -- writing ----------------------------------------------------------------------------------------

    def dry_run_each(self, desired: Sequence[Prepared]) -> list[Refused | KubeObject]:
        """Per object: what the server would store, or why it refuses it."""
        answers = self._send(desired, dry_run=True, take=_kept)
        return [self._stored(d, answer) for d, answer in zip(desired, answers, strict=True)]

    def get(self, desired: Prepared) -> KubeObject | None:
        """The live object (whoever owns it), or None."""
        status, body = self._raw.request("GET", self.object_path(desired.api_version, desired.key))
        return body if status == 200 else None

    def dry_run(self, desired: Sequence[Prepared], compare: Container[ObjectKey]) -> dict[ObjectKey, KubeObject]:
        """What the server would store for each object in ``compare`` (the others are only checked);
        RefusedError listing every object it refuses."""

        # an answer to compare is kept whole and parsed here, on the caller's thread (a deep object fails there
        # as anywhere else: ``answer_object``); the others become their outcome as they arrive
        def take(d: Prepared, answer: Answer | Refused) -> Answer | Refused | Written:
            return answer if d.key in compare else self._outcome(d, answer, dry_run=True)

        answers = self._send(desired, dry_run=True, take=take)
        results = [self._stored(d, r) if isinstance(r, Answer | Refused) and d.key in compare else r
                   for d, r in zip(desired, answers, strict=True)]  # fmt: skip
        refused = [r for r in results if isinstance(r, Refused)]
        if refused:
            raise RefusedError(f"the server refused {len(refused)} of {len(desired)} objects in a dry run", refused)
        return {d.key: r for d, r in zip(desired, results, strict=True) if isinstance(r, dict)}

    def apply(self, desired: Sequence[Prepared]) -> list[Refused | Written]:
        """Apply for real; each result is the stored resourceVersion, or why it failed."""
        return self._send(desired, dry_run=False, take=lambda d, answer: self._outcome(d, answer, dry_run=False))

    def apply_noting_created(
        self, desired: Sequence[Prepared], unit: str
    ) -> tuple[list[Refused | Written], list[Created]]:
        """Apply for real, and which objects the server created for ``unit`` just now (an object that existed
        before, ours or not, is answered 200, never 201)."""

        # kept across a batch sent again after a dropped connection: the object the first attempt created is
        # answered 200 the second time, and is still this unit's to roll back
        made: dict[ObjectKey, Created] = {}

        def take(d: Prepared, answer: Answer | Refused) -> Refused | Written:
            if (created := _created(d, answer, unit)) is not None:
                made[d.key] = created
            return self._outcome(d, answer, dry_run=False)

        outcomes = self._send(desired, dry_run=False, take=take)
        return outcomes, [made[d.key] for d in desired if d.key in made]

    def delete(
        self, key: ObjectKey, api_version: str, *, uid: str | None = None, resource_version: str | None = None
    ) -> ClusterError | None:
        """Delete one object (background propagation), only if its uid (and resourceVersion) are still those
        given; None when done or already gone, else the typed error saying why not (returned: one refused delete
        does not stop the others; a changed object is a ConflictError)."""
        path = self.object_path(api_version, key)  # never the collection's: a DELETE there empties it
        body: dict[str, object] = {"propagationPolicy": "Background"}
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v is not None}
        if preconditions:
            body["preconditions"] = preconditions
        status, answer = self._writes.request("DELETE", path, body=body)
        if status in (200, 202, 404):
            return None
        return error_for(status, answer, f"{key}: delete failed")

    def wait_established(self, crds: Iterable[Prepared], timeout: float = 30.0) -> None:
        resource = self.resource("apiextensions.k8s.io/v1", "CustomResourceDefinition", "CRDs")
        for crd in crds:
            deadline = time.monotonic() + timeout
            while not _established(self._raw.request("GET", one_object_path(resource, crd.key, str(crd.key)))[1]):
                if time.monotonic() > deadline:
                    raise ApplyError(f"{crd.key} ({crd.origin}): not Established after {timeout:.0f}s")
                time.sleep(0.2)

    def _send(
        self, desired: Sequence[Prepared], *, dry_run: bool, take: Callable[[Prepared, Answer | Refused], R]
    ) -> list[R]:
        """Per object, in order: ``take`` of its raw answer (JSON) to its apply (or dry run), or of why it could
        not be sent (an unknown kind). ``take`` runs as each answer arrives, on the event loop's thread
        (``RawApi.send_each``): what it keeps is all a batch holds, not its answers (a batch of 5,000 held about
        5 MB of them until its end). It must be quick and must not raise; it may see an object twice (a
        dropped connection sends a batch again), the later answer standing."""
        results: list[R | None] = [None] * len(desired)
        sent: list[int] = []
        requests = []
        for i, d in enumerate(desired):
            try:
                path = self._path_of(d)
            except ApplyError as error:
                results[i] = take(d, Refused(d.key, error))
                continue
            sent.append(i)
            requests.append(Request("PATCH", path, _apply_query(dry_run=dry_run), d.payload, APPLY_PATCH, JSON))

        def taken(j: int, answer: Answer) -> None:
            i = sent[j]
            results[i] = take(desired[i], answer)

        self._writes.send_each(requests, self._workers, taken)
        return results  # type: ignore[return-value]  # every slot is filled: sent, or refused before

    def _stored(self, desired: Prepared, answer: Answer | Refused) -> Refused | KubeObject:
        """The object a dry run would store, or why it is refused."""
        if isinstance(answer, Refused):
            return answer
        status, _, data, _ = answer
        subject = f"{desired.key} ({desired.origin}): dry run refused"
        if status in (200, 201):
            try:
                return answer_object(data, subject)
            except ClusterError as error:
                return Refused(desired.key, error)
        return Refused(desired.key, error_for(status, parsed(data), subject, retry_after=answer.retry_after))

    def _outcome(self, desired: Prepared, answer: Answer | Refused, *, dry_run: bool) -> Refused | Written:
        if isinstance(answer, Refused):
            return answer
        outcome = written(answer, version=not dry_run)
        return outcome if outcome.ok else self._refusal(desired, outcome, answer.retry_after, dry_run=dry_run)

    def _path_of(self, desired: Prepared) -> str:
        where = f"{desired.key} ({desired.origin})"
        return one_object_path(self.resource(desired.api_version, desired.key.kind, where), desired.key, where)

    @staticmethod
    def _refusal(desired: Prepared, written: Written, retry_after: str, *, dry_run: bool) -> Refused:
        """The typed error of a failed write, keeping the server's Retry-After (how long the loop then waits)."""
        subject = f"{desired.key} ({desired.origin}): {'dry run' if dry_run else 'apply'} refused"
        payload = {"message": written.message}
        return Refused(desired.key, error_for(written.status, payload, subject, retry_after=retry_after))


def one_object_path(resource: Resource, key: ObjectKey, where: str) -> str:
    """The path of exactly one object. Names come from Git: the client builds the collection's path for an
    empty name (a DELETE there deletes every object of the kind), and "/", "?", "#", "." or ".." would address
    another path; so each name is one percent-quoted path segment, and an empty, "." or ".." one is refused."""
    for part, field in ((key.name, "metadata.name"), (key.namespace, "metadata.namespace")):
        if part in (".", "..") or (field == "metadata.name" and not part):
            raise ApplyError(f"{where}: {field} {part!r} is not a name; give the object a valid name in Git")
    namespace = quote(key.namespace, safe="") if key.namespace else None
    return str(resource.path(name=quote(key.name, safe=""), namespace=namespace))


def refusal(summary: str, refused: Sequence[Refused]) -> RefusedError:
    """One error for these refusals, retryable as ``_worth_waiting`` says."""
    return RefusedError(summary, refused)


def _worth_waiting(refused: Sequence[Refused]) -> tuple[bool, float | None]:
    """Retryable only when each refusal is (throttled, the server away; an invalid object in the batch will not
    pass by waiting), then after the longest wait the server asked for."""
    delays = [r.error.delay for r in refused if r.error.delay is not None]
    return bool(refused) and all(r.error.retryable for r in refused), max(delays, default=None)


def _kept(_: Prepared, answer: Answer | Refused) -> Answer | Refused:
    return answer


def _created(desired: Prepared, answer: Answer | Refused, unit: str) -> Created | None:
    if isinstance(answer, Refused) or answer.status != 201:
        return None
    metadata = parsed(answer.body).get("metadata") or {}
    if (metadata.get("labels") or {}).get(UNIT_LABEL) != unit or not metadata.get("uid"):
        return None
    return Created(desired.key, desired.api_version, str(metadata["uid"]))


def _page(api_version: str, kind: str, answer: Answer, what: str) -> tuple[dict[ObjectKey, KubeObject], str]:
    """The objects of one page of a list by key, and the continue token of the next page ("" after the last);
    errors as ``_listed``."""
    status, _, data, _ = answer
    listed = answer_object(data, f"listing {kind} {what}") if status == 200 else parsed(data)
    metadata = listed.get("metadata")
    following = str(metadata.get("continue") or "") if isinstance(metadata, dict) else ""
    return _items(api_version, kind, status, listed, what), following


def _listed(api_version: str, kind: str, answer: Answer, what: str) -> dict[ObjectKey, KubeObject]:
    """The objects of one list answer by key; ClusterError when it cannot be parsed, ApplyError when refused."""
    status, _, data, _ = answer
    listed = answer_object(data, f"listing {kind} {what}") if status == 200 else parsed(data)
    return _items(api_version, kind, status, listed, what)


def _items(api_version: str, kind: str, status: int, listed: KubeObject, what: str) -> dict[ObjectKey, KubeObject]:
    """The objects of a list answer by key; ApplyError naming the kind when the server refused the list."""
    if status != 200:
        typed = error_for(status, listed, f"listing {kind} {what}")
        raise ApplyError(f"listing {kind} {what}: {message_of(status, listed)}", retryable=typed.retryable,
                         delay=typed.delay) from typed  # fmt: skip
    return {keyed(item, api_version, kind): item for item in listed.get("items") or []}


def keyed(item: KubeObject, api_version: str, kind: str) -> ObjectKey:
    """The key of a listed or watched object, filling in the apiVersion and kind list items come without."""
    item.setdefault("apiVersion", api_version)
    item.setdefault("kind", kind)
    return ObjectKey.of(item)


def _apply_query(*, dry_run: bool) -> dict[str, str]:
    return {"fieldManager": FIELD_MANAGER, "force": "true", **({"dryRun": "All"} if dry_run else {})}


def _established(crd: KubeObject) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


class KindCache(Protocol):
    def objects(self, kind: tuple[str, str]) -> dict[ObjectKey, KubeObject] | None:
        """The owned objects of this (apiVersion, kind), or None when not known."""
        ...


class OwnedSnapshot:
    """What a unit owns, listed (or copied from a watch-fed cache) at most once per kind and namespace during one
    pass.

    Every reader in a pass (the skip test, the drift test, prune) wants the objects as they were before
    the pass wrote anything, and each kind is read before any object of that kind is written, so one
    read serves them all. After writes, take a new snapshot. Readers name the objects they mean (the
    inventory's, the render's), and get those alone: a labelled object no key names is never a unit's.
    """

    def __init__(self, applier: Applier, unit: str, cache: KindCache | None = None) -> None:
        self._applier, self._unit, self._cache = applier, unit, cache
        self._listed: set[Scope] = set()
        self._objects: dict[ObjectKey, KubeObject] = {}

    def of(self, wanted: Iterable[tuple[str, ObjectKey]]) -> dict[ObjectKey, KubeObject]:
        """The live owned objects among these (apiVersion, key) pairs, by key."""
        pairs = list(wanted)
        scopes = {(api_version, key.kind, key.namespace) for api_version, key in pairs} - self._listed
        unlisted = []
        for kind in {(api_version, kind) for api_version, kind, _ in scopes}:
            cached = self._cache.objects(kind) if self._cache else None
            if cached is None:
                unlisted += [s for s in scopes if s[:2] == kind]
            else:
                self._objects |= cached
        if unlisted:  # listed together: the wait is the longest list's, not their sum
            self._objects |= self._applier.list_owned(unlisted, self._unit)
        self._listed |= scopes
        return {key: self._objects[key] for _, key in pairs if key in self._objects}
