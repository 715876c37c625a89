"""The health of one live object, for a Unit's ``spec.wait``: Current, InProgress, Failed or Unknown, and why.

Pure: a body in, a ``Health`` out. The rules are kstatus's (kubernetes-sigs/cli-utils, ``pkg/kstatus/status``:
``generic.go`` for every kind, ``core.go`` for the workloads), as Flux's kustomize-controller applies them to
``wait: true``, written anew here and stricter where kstatus is lenient:

- every kind: being deleted is InProgress; a ``status.observedGeneration`` other than ``metadata.generation``
  is InProgress (the status describes an older spec); a ``Stalled`` condition that is True is Failed, a
  ``Reconciling`` one InProgress; anything else is Current, unless a Unit's CEL check for its kind says not;
- Deployment, StatefulSet, DaemonSet: their controllers always write ``observedGeneration``, so a status
  without it has not seen this spec (kstatus waits so for DaemonSets only; a Deployment of 0 replicas would
  otherwise be Current before its controller looked at it); replicas created, updated, available and ready
  against the spec; a Deployment past its ``progressDeadlineSeconds`` is Failed;
- Job: Current once ``Complete`` (the issue asks for Jobs complete; kstatus takes a started Job as Current),
  Failed once ``Failed``.

The status comes from the cluster: any controller, or whoever may write ``/status``, wrote it. A field of the
wrong type, a negative or out-of-range count, or a condition listed twice is Unknown, never Current (fail
closed); the words it carries are cut to one short line before they reach a Unit's status or Slack.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from gitopsguard.model import KubeObject

MAX_COUNT = 2**31  # replicas and scheduled numbers are int32 in every workload's schema
MAX_GENERATION = 2**63
MAX_SAID_CHARS = 200  # a condition's message, an expression: as much as a person reads in one line
MAX_CEL_DEPTH = 100  # nesting handed to CEL; Git's documents are bounded alike (documents/limits.py max_depth)


class State(StrEnum):
    CURRENT = "Current"  # as the spec asks: rolled out, complete, or (other kinds) present and not stalled
    IN_PROGRESS = "InProgress"  # on its way; may become Current without a change in Git
    FAILED = "Failed"  # will not become Current by waiting (a progress deadline passed, a Job failed)
    UNKNOWN = "Unknown"  # its status cannot be read as the kind's schema says, or it could not be read at all


@dataclass(frozen=True)
class Health:
    state: State
    reason: str

    @property
    def current(self) -> bool:
        return self.state is State.CURRENT


class Predicate(Protocol):
    """A compiled CEL expression over ``self`` (``policy.cel.Expression``): whether it holds for a body;
    raises ValueError, and nothing else, when it cannot be evaluated. A Protocol: plan imports no policy."""

    @property
    def source(self) -> str: ...
    def holds(self, body: KubeObject, namespace: KubeObject | None) -> bool: ...


@dataclass(frozen=True)
class HealthCheck:
    """One of a Unit's ``spec.wait.cel`` checks: objects of ``group``/``kind`` are Current only while
    ``predicate`` holds. ``where`` names it for people: ``units/a.yaml:3: Unit/team-a/app: spec.wait.cel[0]``."""

    api_version: str
    kind: str
    where: str
    predicate: Predicate

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]


class _OddFieldError(ValueError):
    """A field of the status (or spec) is not what the kind's schema says; the message names the field."""


def health_of(body: object, checks: Sequence[HealthCheck] = ()) -> Health:
    """The health of one live object under kstatus's rules and the Unit's ``checks`` for its kind."""
    try:
        return _health(body, checks)
    except _OddFieldError as odd:
        return Health(State.UNKNOWN, f"{odd}: its status cannot be read, so it is not taken as healthy")


def _health(body: object, checks: Sequence[HealthCheck]) -> Health:
    if not isinstance(body, Mapping):
        raise _OddFieldError(f"the object is a {type(body).__name__}, not a mapping")
    metadata = _mapping(body, "metadata")
    if metadata.get("deletionTimestamp") is not None:
        return Health(State.IN_PROGRESS, "it is being deleted")
    group, kind = _text(body, "apiVersion").rpartition("/")[0], _text(body, "kind")
    rule = _RULES.get((group, kind))
    health = (_generic(body) or _CURRENT) if rule is None else rule(body)
    for check in checks:
        if health.current and (check.group, check.kind) == (group, kind):
            health = _checked(check, body)
    return health


_CURRENT = Health(State.CURRENT, "it exists and no condition says it is reconciling or stalled")


def _generic(body: Mapping[str, Any]) -> Health | None:
    """kstatus's rules for any kind (generic.go); None when they decide nothing."""
    status = _mapping(body, "status")
    observed = _generation(status, "observedGeneration")
    generation = _generation(_mapping(body, "metadata"), "generation")
    if observed is not None and generation is not None and observed != generation:
        return Health(State.IN_PROGRESS, f"generation {generation} not yet observed (status is of {observed})")
    conditions = _conditions(status)
    stalled, reconciling = conditions.get("Stalled"), conditions.get("Reconciling")
    if stalled is not None and stalled.true:
        return Health(State.FAILED, f"stalled: {stalled}")
    if reconciling is not None and reconciling.true:
        return Health(State.IN_PROGRESS, f"reconciling: {reconciling}")
    return None


def _observed(body: Mapping[str, Any]) -> Health | None:
    """For the workloads, whose controllers always write it: not Current until this spec was observed."""
    generation = _generation(_mapping(body, "metadata"), "generation")
    observed = _generation(_mapping(body, "status"), "observedGeneration")
    if observed is None or generation is None:
        return Health(State.IN_PROGRESS, "its controller has not observed it yet (no status.observedGeneration)")
    if observed != generation:
        return Health(State.IN_PROGRESS, f"generation {generation} not yet observed (status is of {observed})")
    return _generic(body)


def _deployment(body: Mapping[str, Any]) -> Health:
    if (early := _observed(body)) is not None:
        return early
    spec, status = _mapping(body, "spec"), _mapping(body, "status")
    conditions = _conditions(status)
    progressing, available = conditions.get("Progressing"), conditions.get("Available")
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        return Health(State.FAILED, f"progress deadline exceeded: {progressing}")
    want = _count(spec, "replicas", 1)
    replicas, updated = _count(status, "replicas"), _count(status, "updatedReplicas")
    ready, ready_available = _count(status, "readyReplicas"), _count(status, "availableReplicas")
    why = f": {available}" if available is not None and not available.true else ""
    waiting = _first(
        (want > replicas, f"{replicas} of {want} replicas created"),
        (want > updated, f"{updated} of {want} replicas updated"),
        (replicas > want, f"{replicas - want} old replicas pending termination"),
        (updated > ready_available, f"{ready_available} of {updated} replicas available{why}"),
        (want > ready, f"{ready} of {want} replicas ready"),
        (available is None or not available.true, f"not Available{why}"),
        (_tracks_progress(spec) and not (progressing is not None and progressing.true
                                         and progressing.reason == "NewReplicaSetAvailable"),
         f"rollout not finished: {progressing or 'no Progressing condition'}"),
    )  # fmt: skip
    return waiting or Health(State.CURRENT, f"{ready_available} of {want} replicas available")


def _tracks_progress(spec: Mapping[str, Any]) -> bool:
    """Whether the Deployment controller writes a Progressing condition: not when the deadline is absent or
    int32's largest, which it reads as "none" (kstatus core.go, after the controller's deployment_util.go)."""
    return spec.get("progressDeadlineSeconds") is not None and _count(spec, "progressDeadlineSeconds") != MAX_COUNT - 1


def _stateful_set(body: Mapping[str, Any]) -> Health:
    if (early := _observed(body)) is not None:
        return early
    spec, status = _mapping(body, "spec"), _mapping(body, "status")
    strategy = _mapping(spec, "updateStrategy")
    want, replicas, ready = _count(spec, "replicas", 1), _count(status, "replicas"), _count(status, "readyReplicas")
    partition = _count(_mapping(strategy, "rollingUpdate"), "partition")
    current, updated = _count(status, "currentReplicas"), _count(status, "updatedReplicas")
    update_revision, current_revision = _text(status, "updateRevision"), _text(status, "currentRevision")
    on_delete = _text(strategy, "type") == "OnDelete"  # pods change only when someone deletes them
    waiting = _first(
        (want > replicas, f"{replicas} of {want} replicas created"),
        (want > ready, f"{ready} of {want} replicas ready"),
        (replicas > want, f"{replicas - want} old replicas pending termination"),
        (not on_delete and partition > 0 and updated < want - partition,
         f"{updated} of {want - partition} replicas updated (partition {partition})"),
        (not on_delete and partition == 0 and want > current, f"{current} of {want} replicas at the current revision"),
        (not on_delete and partition == 0 and current_revision != update_revision,
         f"revision {_said(update_revision) or '(none)'} not yet rolled out (current: "
         f"{_said(current_revision) or '(none)'})"),
    )  # fmt: skip
    return waiting or Health(State.CURRENT, f"{ready} of {want} replicas ready")


def _daemon_set(body: Mapping[str, Any]) -> Health:
    if (early := _observed(body)) is not None:
        return early
    status = _mapping(body, "status")
    if status.get("desiredNumberScheduled") is None:
        return Health(State.IN_PROGRESS, "its controller has not counted its nodes yet")
    desired = _count(status, "desiredNumberScheduled")
    current, updated = _count(status, "currentNumberScheduled"), _count(status, "updatedNumberScheduled")
    available, ready = _count(status, "numberAvailable"), _count(status, "numberReady")
    waiting = _first(
        (desired > current, f"{current} of {desired} nodes run it"),
        (desired > updated, f"{updated} of {desired} nodes run the current version"),
        (desired > available, f"{available} of {desired} pods available"),
        (desired > ready, f"{ready} of {desired} pods ready"),
    )
    return waiting or Health(State.CURRENT, f"{ready} of {desired} pods ready")


def _job(body: Mapping[str, Any]) -> Health:
    spec, status = _mapping(body, "spec"), _mapping(body, "status")
    conditions = _conditions(status)
    failed_condition, complete = conditions.get("Failed"), conditions.get("Complete")
    succeeded, failed, active = _count(status, "succeeded"), _count(status, "failed"), _count(status, "active")
    if failed_condition is not None and failed_condition.true:
        return Health(State.FAILED, f"failed ({failed} failed pods): {failed_condition}")
    if complete is not None and complete.true:
        return Health(State.CURRENT, f"complete: {succeeded} succeeded")
    completions = _count(spec, "completions", _count(spec, "parallelism", 1))
    return Health(State.IN_PROGRESS, f"not complete: {succeeded} of {completions} succeeded, {active} active, "
                                     f"{failed} failed")  # fmt: skip


_RULES: dict[tuple[str, str], Callable[[Mapping[str, Any]], Health]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _stateful_set,
    ("apps", "DaemonSet"): _daemon_set,
    ("batch", "Job"): _job,
}


def _checked(check: HealthCheck, body: Mapping[str, Any]) -> Health:
    """A Unit's CEL check on one object. A field that is not there yet (a controller that has not written
    its status) is waited for, as Flux does; any other error is Failed, naming the Unit's file and the
    expression: waiting would not change a type error or an expression too costly to evaluate."""
    shown = f"{check.where}: {_said(check.predicate.source)}"
    if _deeper_than(body, MAX_CEL_DEPTH):
        return Health(State.UNKNOWN, f"{shown}: not evaluated: the object is nested deeper than {MAX_CEL_DEPTH} "
                                     "levels")  # fmt: skip
    try:
        holds = check.predicate.holds(dict(body), None)
    except ValueError as error:
        said = _said(str(error))
        if said.startswith("NOT_FOUND:"):
            return Health(State.IN_PROGRESS, f"{shown}: {said} (not there yet; has() tells a field that may stay "
                                             "absent)")  # fmt: skip
        return Health(State.FAILED, f"{shown}: cannot be evaluated on it: {said}; fix the expression")
    if not holds:
        return Health(State.IN_PROGRESS, f"{shown}: is false")
    return Health(State.CURRENT, f"{shown}: holds")


def _deeper_than(body: object, limit: int) -> bool:
    """Whether mappings and lists nest deeper than ``limit``, found without recursion. The CEL runtime converts
    an object recursively and crashes the process (SIGSEGV, measured from about 7,000 levels) where Python
    would raise; the API server stores custom resources nested up to 10,000 deep."""
    stack: list[tuple[object, int]] = [(body, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping | list):
            if depth >= limit:
                return True
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, Mapping) else value))
    return False


def _first(*rules: tuple[bool, str]) -> Health | None:
    """InProgress with the first rule's words whose test is true (None when none is)."""
    return next((Health(State.IN_PROGRESS, words) for failing, words in rules if failing), None)


@dataclass(frozen=True)
class _Condition:
    status: str
    reason: str
    message: str

    @property
    def true(self) -> bool:
        return self.status == "True"

    def __str__(self) -> str:
        return f"{self.message or '(no message)'} ({self.reason or 'no reason'})"


def _conditions(status: Mapping[str, Any]) -> dict[str, _Condition]:
    """``status.conditions`` by type; _OddFieldError unless a list of mappings with text fields, each type once."""
    listed = status.get("conditions")
    if listed is None:
        return {}
    if not isinstance(listed, list):
        raise _OddFieldError("status.conditions is not a list")
    found: dict[str, _Condition] = {}
    for index, item in enumerate(listed):
        if not isinstance(item, Mapping):
            raise _OddFieldError(f"status.conditions[{index}] is not a mapping")
        kind = _text(item, "type", f"status.conditions[{index}]")
        if kind in found:
            raise _OddFieldError(f"status.conditions lists {_said(kind)} twice")
        found[kind] = _Condition(*(_said(_text(item, f, f"status.conditions[{index}]"))
                                   for f in ("status", "reason", "message")))  # fmt: skip
    return found


def _mapping(parent: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    value = parent.get(field)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _OddFieldError(f"{field} is a {type(value).__name__}, not a mapping")
    return value


def _count(parent: Mapping[str, Any], field: str, default: int = 0) -> int:
    value = parent.get(field)
    if value is None:
        return default
    if type(value) is not int or not 0 <= value < MAX_COUNT:  # bool is an int, and so is 10**5000
        raise _OddFieldError(f"{field} is {_shown(value)}, not a count from 0 to {MAX_COUNT - 1}")
    return value


def _generation(parent: Mapping[str, Any], field: str) -> int | None:
    value = parent.get(field)
    if value is None:
        return None
    if type(value) is not int or not 0 <= value < MAX_GENERATION:
        raise _OddFieldError(f"{field} is {_shown(value)}, not a generation")
    return value


def _text(parent: Mapping[str, Any], field: str, where: str = "") -> str:
    value = parent.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _OddFieldError(f"{where + '.' if where else ''}{field} is {_shown(value)}, not text")
    return value


def _shown(value: object) -> str:
    """A value of the wrong type, short: its type, and the value itself when it is a short scalar."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**18:
        return "an integer too large"  # str() of 10**5000 raises, and nobody reads it
    if isinstance(value, Mapping | list | tuple):
        return f"a {type(value).__name__}"
    return f"{type(value).__name__} {_said(repr(value))[:40]}"


def _said(text: str) -> str:
    """Words from the cluster (or a Unit), safe to put in a status, a log line or Slack: control, format and
    separator characters (newlines, bidi overrides) become spaces, runs of space one, and at most
    ``MAX_SAID_CHARS`` characters are kept."""
    cleaned = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text[: 4 * MAX_SAID_CHARS])
    words = " ".join(cleaned.split())
    return words if len(words) <= MAX_SAID_CHARS else words[: MAX_SAID_CHARS - 3] + "..."
