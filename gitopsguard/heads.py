"""A branch head fetched, rendered and judged: ready to apply, or refused with its reason.

``judge`` is the render and gate steps of a reconcile pass. Any failure in them, whatever its type (a
5,000-digit integer, a label map that is a string, a folder 1,500 levels deep, a bug), refuses the head:
it never escapes as an "internal error" that would stop the loop from holding the last applied commit.

``HeadWorker`` runs fetch and ``judge`` on a thread of its own for the continuous loop, so that drift
repair and expiry keep their latency while a slow or hostile commit is rendered (kustomize may take up to
its time limit). The loop applies the newest head it was given; until a new one is ready it keeps
repairing the last applied commit from its kept render. The worker catches what a head can throw; a bug
in the worker itself kills its thread, and ``lifeline`` then ends the process loudly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gitopsguard.backoff import next_wait, worth_retrying
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, InventoryStore
from gitopsguard.errors import ApplyError, GitOpsGuardError, RenderError, SourceError
from gitopsguard.gate import gate, policies_at
from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.policy import Evaluation, PolicySet
from gitopsguard.source import GitSource, Revision

if TYPE_CHECKING:
    from gitopsguard.reconcile import Unit

Render = Callable[[Path, str, str], tuple[Manifest, ...]]  # (checkout, path, commit) -> manifests
_REASON_CHARS = 500  # an exception's text can hold a whole hostile document; the reason needs its start


@dataclass(frozen=True)
class Head:
    """A fetched revision (None when the fetch itself failed) and its judged render, or why it is refused."""

    revision: Revision | None
    manifests: tuple[Manifest, ...] = ()
    evaluation: Evaluation | None = None
    policies: PolicySet | None = None
    refusal: GitOpsGuardError | None = None

    def fetched(self) -> Revision:
        """The revision; raises the refusal when the fetch failed."""
        if self.revision is None:
            raise self._refusal()
        return self.revision

    def accepted(self) -> tuple[Evaluation, PolicySet, tuple[Manifest, ...]]:
        """The verdict, the policies and the manifests to apply; raises the refusal when refused."""
        if self.refusal is not None or self.evaluation is None or self.policies is None:
            raise self._refusal()
        return self.evaluation, self.policies, self.manifests

    def _refusal(self) -> GitOpsGuardError:
        # Raised again on every pass: without its traceback, so that the tracebacks do not pile up.
        return (self.refusal or RenderError("the head was not judged")).with_traceback(None)


def judge(unit: Unit, revision: Revision, applier: Applier, render: Render, now: datetime | None = None) -> Head:
    """Render the unit's path at ``revision`` and pass it through the policy gate; never raises."""
    try:
        evaluation, policies = _render_and_gate(unit, revision, applier, render, now or datetime.now(UTC))
    except GitOpsGuardError as error:
        return Head(revision, refusal=error)
    except Exception as error:  # any failure of these stages refuses the head, whatever its type
        return Head(revision, refusal=_unexpected(unit, revision, error))
    return Head(revision, evaluation.manifests, evaluation, policies)


def _reason(error: Exception) -> str:
    reason = f"{type(error).__name__}: {error}"
    return reason[:_REASON_CHARS] + "..." if len(reason) > _REASON_CHARS else reason


def _unexpected(unit: Unit, revision: Revision, error: Exception) -> RenderError:
    refusal = RenderError(
        f"{unit.path} at {revision.commit[:12]}: could not be rendered or judged ({_reason(error)}); fix the commit "
        "(the last applied commit is still held)"
    )
    refusal.__cause__ = error.with_traceback(None)  # the stack would keep the hostile input alive
    return refusal


def _render_and_gate(
    unit: Unit, revision: Revision, applier: Applier, render: Render, now: datetime
) -> tuple[Evaluation, PolicySet]:
    manifests = render(revision.checkout, unit.path, revision.commit)
    _outside_the_controller(manifests)
    policies = policies_at(revision.checkout, unit.policies_path, own=unit.own_policies_path, unit=unit.name)
    if policies.policies:  # policies match on namespaces: judge each object where it will really live
        manifests = tuple(_placed(m, unit.default_namespace, applier) for m in manifests)
    namespaces = applier.namespaces()  # their Pod Security labels count with or without repository policies
    evaluation = gate(manifests, policies, deny_level=unit.deny_level, now=now, commit=revision.commit,
                      namespaces=namespaces, exemptions=unit.pod_security_exemptions)  # fmt: skip
    return evaluation, policies


def _outside_the_controller(manifests: tuple[Manifest, ...]) -> None:
    """Refuse a revision that writes into the controller's own namespace: its configuration, state, trust
    file and Deployment live there, so an object there could turn review off or rewrite what was applied."""
    inside = [m for m in manifests if m.key.namespace == CONTROLLER_NAMESPACE
              or (m.key.kind == "Namespace" and m.key.name == CONTROLLER_NAMESPACE and not m.key.group)]  # fmt: skip
    if inside:
        raise RenderError(
            f"{inside[0].origin}: {inside[0].key} is in {CONTROLLER_NAMESPACE}, the controller's own namespace, "
            "which no revision may write (the controller's configuration, state and trust file live there); change "
            "the controller with `kubectl apply -k manifests/` instead"
            + (f" ({len(inside) - 1} more objects there)" if len(inside) > 1 else "")
        )


def _placed(manifest: Manifest, default_namespace: str, applier: Applier) -> Manifest:
    """The manifest with the unit's default namespace filled in where its kind has one and it names none."""
    if manifest.key.namespace or manifest.key.kind in ("Namespace", "CustomResourceDefinition"):
        return manifest
    try:
        if not applier.namespaced(manifest):
            return manifest
    except ApplyError:  # a kind whose CRD this same revision brings: the apply stage will place it
        return manifest
    body = {**manifest.body, "metadata": {**(manifest.body.get("metadata") or {}), "namespace": default_namespace}}
    return Manifest(ObjectKey.of(body), body, manifest.origin)


def _worth_retrying(head: Head) -> bool:
    """A head refused for a reason that passes (the API server throttling or away while it was judged) is
    judged again soon; so is a fetch that failed, since git's exit status cannot tell a remote that is away
    from one that refuses us, and a refused fetch tried again with backoff costs a few fetches, never a write.
    A head the gate or the renderer refused waits for the next commit or the interval."""
    if head.refusal is None:
        return False
    return worth_retrying(head.refusal) or (head.revision is None and isinstance(head.refusal, SourceError))


class HeadWorker:
    """Fetches and judges the branch head on its own thread, when asked and on a timer, and hands each new
    head to the loop (``latest``, and ``on_ready`` to wake it)."""

    def __init__(
        self, unit: Unit, source: GitSource, applier: Applier, store: InventoryStore, render: Render, *,
        on_ready: Callable[[], None], delay: Callable[[int], float],
    ) -> None:  # fmt: skip
        self._unit, self._source, self._applier, self._store, self._render = unit, source, applier, store, render
        self._on_ready, self._delay = on_ready, delay  # delay(n): seconds to wait after n failures in a row
        self._due = threading.Event()
        self._lock = threading.Lock()
        self._latest: Head | None = None
        self.died = threading.Event()  # set (and the loop woken) when the thread ends on an exception

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(stop,), name="heads", daemon=True)
        thread.start()
        return thread

    def fetch_now(self) -> None:
        self._due.set()

    def latest(self) -> Head | None:
        """The newest head, or None until the first one is ready."""
        with self._lock:
            return self._latest

    def _run(self, stop: threading.Event) -> None:
        try:
            self._serve(stop)
        except BaseException:
            self.died.set()
            self._on_ready()
            raise  # to the lifeline, which ends the process

    def _serve(self, stop: threading.Event) -> None:
        failures = 0
        while not stop.is_set():
            self._due.clear()
            head = self._next()
            if head is not self.latest():
                with self._lock:
                    self._latest = head
                self._on_ready()
            failures = failures + 1 if _worth_retrying(head) else 0
            if worth_retrying(head.refusal):  # as long as the server asked, if it did
                self._due.wait(next_wait(head.refusal, failures, self._delay))
            else:  # the interval; after failed fetches, the backoff
                self._due.wait(self._delay(failures))

    def _next(self) -> Head:
        """The head as it is now: the same object when the branch has not moved and it was judged cleanly."""
        try:
            last_applied = self._store.load(self._unit.name).last_applied
            revision = self._source.fetch(last_applied=last_applied)
        except GitOpsGuardError as error:
            return Head(None, refusal=error)
        except Exception as error:  # a commit git or GitPython chokes on: refused, never the end of the worker
            why = f"unit {self._unit.name}: fetching the head failed ({_reason(error)}); the applied commit is held"
            return Head(None, refusal=SourceError(why))
        current = self.latest()
        if current is not None and current.refusal is None and current.revision == revision:
            return current
        return judge(self._unit, revision, self._applier, self._render)
