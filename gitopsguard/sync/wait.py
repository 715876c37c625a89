"""Wait until what a pass applied is healthy (a Unit's ``spec.wait``), until one of it fails, or until the
deadline: the health verb, as fluxcd/pkg's ``ssa`` has ``manager_wait.go``.

Each round reads afresh, from the API server, every object not yet Current and judges it with
``plan.health.health_of`` (kstatus's rules and the Unit's CEL checks). A watch-fed cache is not read: it may
still hold the object as it was before the apply, whose old status, observed at its old generation, would
pass for the new one's. An object once Current is not read again in the same wait (it was healthy after
this apply; the live scan and the next pass see what happens to it later). Reading errors are no verdict:
the object is Unknown, with the server's words, and read again next round, so a server away for a moment
costs nothing but time. The result names every object not healthy and why, the object first:
``Deployment/shop/web: 0 of 2 replicas available: Deployment does not have minimum availability. (...)``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

from gitopsguard.cluster.apply import Applier
from gitopsguard.errors import ApplyError, ClusterError, HealthCheckError, NotFoundError
from gitopsguard.model import Action, Change, ObjectKey
from gitopsguard.plan.health import Health, HealthCheck, State, health_of
from gitopsguard.policy.cel import CelCompileError, compile_expression
from gitopsguard.units.spec import UnitSpec

POLL_INTERVAL = 2.0  # seconds between rounds: a rollout takes seconds, and each round costs a GET per object
READERS = 16  # reads in flight: 400 objects in 0.34-0.40 s, against 0.82-0.96 s one by one (bench/wait_health.py)
MAX_NAMED = 5  # objects named in the message; the others are counted (a condition is read in `kubectl get`)
Subject = tuple[ObjectKey, str]  # an object and the apiVersion it was applied at


class Ending(StrEnum):
    HEALTHY = "healthy"  # every object Current
    FAILED = "failed"  # an object is Failed: waiting longer would not help
    TIMED_OUT = "timed-out"  # the deadline came first
    STOPPED = "stopped"  # the caller asked to stop (``sleep`` answered True: the process is shutting down)


@dataclass(frozen=True)
class ObjectHealth:
    key: ObjectKey
    api_version: str
    health: Health

    def __str__(self) -> str:
        return f"{self.key}: {self.health.reason}"


@dataclass(frozen=True)
class Waited:
    """How a wait ended, and each object's last health, in the order they were given."""

    ending: Ending
    objects: tuple[ObjectHealth, ...]
    seconds: float  # how long it waited

    @property
    def healthy(self) -> bool:
        return self.ending is Ending.HEALTHY

    @property
    def not_healthy(self) -> tuple[ObjectHealth, ...]:
        """The objects not Current, the Failed ones first."""
        bad = [o for o in self.objects if not o.health.current]
        return tuple(sorted(bad, key=lambda o: o.health.state is not State.FAILED))

    @property
    def message(self) -> str:
        """For a Unit's Ready condition (reason HealthCheckFailed): "" when healthy."""
        bad = self.not_healthy
        if self.healthy or not bad:
            return ""
        why = {Ending.FAILED: "failed", Ending.TIMED_OUT: f"not healthy after {self.seconds:.0f}s",
               Ending.STOPPED: "not healthy when the wait was stopped"}[self.ending]  # fmt: skip
        named = "; ".join(str(o) for o in bad[:MAX_NAMED])
        more = f"; and {len(bad) - MAX_NAMED} more" if len(bad) > MAX_NAMED else ""
        return f"{len(bad)} of {len(self.objects)} objects {why}: {named}{more}"


def compile_checks(unit: UnitSpec) -> tuple[HealthCheck, ...]:
    """The Unit's ``spec.wait.cel`` as health checks; HealthCheckError naming the file, the Unit, the field and
    the compiler's words when one does not compile (units/ cannot compile CEL: it imports no policy)."""
    checks = []
    for index, cel in enumerate(unit.wait.cel):
        where = f"{unit.origin}: {unit.ref}: spec.wait.cel[{index}]"
        try:
            predicate = compile_expression(cel.expression, over_self=True)
        except CelCompileError as error:
            raise HealthCheckError(f"{where}.expression: not valid CEL (the object is `self`): {error}; fix the "
                                   "expression") from error  # fmt: skip
        checks.append(HealthCheck(cel.api_version, cel.kind, where, predicate))
    return tuple(checks)


def waited_for(changes: Iterable[Change]) -> tuple[Subject, ...]:
    """What a pass left in the cluster as Git says (created, configured or unchanged): what its health is of.
    Skipped, failed and deleted objects are not (a report-only pass applied nothing)."""
    kept = (Action.CREATED, Action.CONFIGURED, Action.UNCHANGED)
    return tuple(dict.fromkeys((c.key, c.api_version) for c in changes if c.action in kept))


def wait_for_unit(
    unit: UnitSpec, changes: Iterable[Change], applier: Applier, deadline: float, *,
    sleep: Callable[[float], bool | None] = time.sleep,
) -> Waited | None:  # fmt: skip
    """A Unit's wait after its pass applied ``changes``, in one call for the loop: None when its spec does not
    ask to wait; HealthCheckError when a check does not compile (before anything is read)."""
    if not unit.wait.enabled:
        return None
    return wait_healthy(applier, waited_for(changes), compile_checks(unit), deadline, sleep=sleep)


def wait_healthy(
    applier: Applier, objects: Sequence[Subject], checks: Sequence[HealthCheck], deadline: float, *,
    interval: float = POLL_INTERVAL, clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], bool | None] = time.sleep,
) -> Waited:  # fmt: skip
    """Read ``objects`` until all are Current, one is Failed, or ``deadline`` (a ``clock`` time) passes; one
    round is read at the deadline itself. ``sleep`` waits between rounds; when it answers True (as
    ``threading.Event.wait`` does once the event is set) the wait stops at once."""
    started, latest = clock(), {key: ObjectHealth(key, v, _NOT_READ) for key, v in objects}
    pending = list(dict.fromkeys(objects))
    while True:
        for target, health in zip(pending, _round(applier, pending, checks), strict=True):
            latest[target[0]] = ObjectHealth(target[0], target[1], health)
        pending = [t for t in pending if not latest[t[0]].health.current]
        ending = _ending(pending, latest, clock() >= deadline)
        if ending is None and sleep(max(0.0, min(interval, deadline - clock()))):
            ending = Ending.STOPPED
        if ending is not None:
            ordered = tuple(latest[key] for key in dict.fromkeys(key for key, _ in objects))
            return Waited(ending, ordered, clock() - started)


_NOT_READ = Health(State.UNKNOWN, "not read yet")


def _ending(pending: Sequence[Subject], latest: dict[ObjectKey, ObjectHealth], late: bool) -> Ending | None:
    if not pending:
        return Ending.HEALTHY
    if any(latest[key].health.state is State.FAILED for key, _ in pending):
        return Ending.FAILED
    return Ending.TIMED_OUT if late else None


def _round(applier: Applier, pending: Sequence[Subject], checks: Sequence[HealthCheck]) -> list[Health]:
    """One round's reads, ``READERS`` in flight (the HTTP client's one event loop serves the threads' requests
    side by side); the paths are found first, in this thread (discovery's cache is not meant for threads)."""
    paths = [_path(applier, target, checks) for target in pending]
    if len(pending) < 2:
        return [_health(applier, target, path, checks) for target, path in zip(pending, paths, strict=True)]
    with ThreadPoolExecutor(min(READERS, len(pending)), thread_name_prefix="gitopsguard-wait") as pool:
        return list(pool.map(lambda target, path: _health(applier, target, path, checks), pending, paths))


def _path(applier: Applier, target: Subject, checks: Sequence[HealthCheck]) -> str | Health:
    try:
        return applier.object_path(_read_as(target, checks), target[0])
    except (ClusterError, ApplyError) as error:  # a kind the server no longer serves, discovery failing
        return Health(State.UNKNOWN, f"could not be read: {str(error).removeprefix(f'{target[0]}: ')}")


def _health(applier: Applier, target: Subject, path: str | Health, checks: Sequence[HealthCheck]) -> Health:
    if isinstance(path, Health):
        return path
    key = target[0]
    try:
        body = applier.raw.get(path, str(key))
    except NotFoundError:
        return Health(State.UNKNOWN, "not found: it was deleted after it was applied, or not created yet")
    except (ClusterError, ApplyError) as error:
        return Health(State.UNKNOWN, f"could not be read: {str(error).removeprefix(f'{key}: ')}")
    except RecursionError:  # json's, out of cluster/rest.py: the server stores what Python cannot parse
        return Health(State.UNKNOWN, f"could not be read: nested deeper than this client parses (about "
                                     f"{sys.getrecursionlimit()} levels)")  # fmt: skip
    if not isinstance(body.get("metadata"), Mapping) or ObjectKey.of(body) != key:  # rest.parsed's fallback
        return Health(State.UNKNOWN, "could not be read: the server's answer is not this object")
    return health_of(body, checks)


def _read_as(target: Subject, checks: Sequence[HealthCheck]) -> str:
    """The apiVersion to read an object at: a check's for its group and kind (the version its expression was
    written for; the server converts), else the one it was applied at."""
    key, api_version = target
    return next((c.api_version for c in checks if (c.group, c.kind) == (key.group, key.kind)), api_version)
