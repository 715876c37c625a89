"""Issue 19's numbers in the shape of Flux's own benchmark: 1,000 Units of 4 objects each, from one repository.

    PYTHONPATH=$PWD .venv/bin/python bench/units_1000.py [--units 1000] [--objects 4] [--namespaces 10]
        [--interval 60] [--kubeconfig K] [--apiserver-audit-log FILE] [--keep DIR] [--no-live-scan] [--self-test]

Needs a running dev cluster. Commits one repository: ``root/`` holds the Namespaces (``--namespaces``, shared by
the Units, labelled ``gitopsguard.io/bench-units-1000``) and one file per Unit; each Unit's folder
``units/u-NNNN/`` holds ``--objects`` objects (ConfigMaps, a ServiceAccount, a Service: no Pods, the shared
dev cluster has no node). Installs the Unit CRD from ``manifests/crds/`` and starts ``gitopsguard run --repo
... --root root`` as a child process, with every Unit's interval and the fetch interval at ``--interval``
seconds. Measures:

- the seconds from the controller's start until every Unit is Ready for its generation (one list of the
  Units per poll, by the root's unit label, never a read per Unit);
- the controller's peak RSS (``VmHWM`` of ``/proc/PID/status`` at the end, and ``wait4``'s ``ru_maxrss``);
- a no-op cycle: ``--settle`` seconds after the last Unit became Ready, one full ``--interval`` with nothing
  changed in Git or the cluster (every Unit comes due once in any window of that length): the CPU-seconds
  the controller spent (``/proc/PID/stat`` utime+stime, and its waited-for children's), and the writes it
  made, counted from the API server's audit log (every create, update, patch or delete, status included,
  that succeeded and was no dry run, on an object of this run: in its namespaces, or whose name holds its
  prefix) or, without an audit log, from the resourceVersions of the run's objects before and after.

Removes its Namespaces and the inventories of its units afterwards, and those an interrupted run left.
``--self-test`` checks the harness without gitopsguard's Units loop: the bench applies the root itself, and
a stand-in controller (this file, ``--stand-in``) writes every Unit Ready, then makes ``--stand-in-writes``
status writes inside the no-op window, which the count must find. ``--gitopsguard DIR`` runs the controller
from another checkout (default: this bench's own). ``--profile`` runs it under cProfile (``controller.prof``
in ``--keep DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import smaps
from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi, Request
from gitopsguard.devcluster import StateLayout
from gitopsguard.model import UNIT_LABEL
from gitopsguard.units import PassOutcome, Phase, readiness_of, status_of
from tests.gitrepo import Upstream

ROOT = Path(__file__).resolve().parents[1]
CRD = ROOT / "manifests" / "crds" / "unit.yaml"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/units.gitopsguard.io"
# A label of its own: other benches remove every `gitopsguard.io/bench` Namespace when they start (seen to take
# this bench's away in the middle of a run on the shared cluster)
BENCH_LABEL, BENCH_VALUE = "gitopsguard.io/bench-units-1000", "yes"
PREFIX = "u1k-"  # every name of a run starts with PREFIX + its token: how its objects are found in the audit log
INVENTORIES = "/api/v1/namespaces/gitopsguard-system/configmaps"
UNITS = "/apis/gitopsguard.io/v1alpha1/units"  # of every namespace: the run's are picked by label or prefix
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
OURS = " by gitopsguard/"  # the User-Agent gitopsguard's RawApi sends (the stand-in's too)
WRITES = frozenset(("create", "update", "patch", "delete", "deletecollection"))
KINDS = ("ConfigMap", "ServiceAccount", "Service", "ConfigMap")  # a Unit's objects, in turn


@dataclass(frozen=True)
class Layout:
    """One run's repository: names, counts and the interval of every Unit."""

    units: int = 1000
    objects: int = 4
    namespaces: int = 10
    interval: int = 60  # seconds: the fetch interval, and the no-op window's length
    unit_interval: int = 0  # seconds: every Unit's (0: ``interval``)
    token: str = "0"  # noqa: S105 (a name, not a secret)

    @property
    def every_unit(self) -> int:
        return self.unit_interval or self.interval

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.token}"

    @property
    def root_unit(self) -> str:
        return f"{self.prefix}-root"

    def namespace(self, unit: int) -> str:
        return f"{self.prefix}-{unit % self.namespaces:02d}"

    def all_namespaces(self) -> list[str]:
        return [self.namespace(n) for n in range(min(self.units, self.namespaces))]


# -- the repository ------------------------------------------------------------------------------------


def repository_files(layout: Layout) -> dict[str, str]:
    """Every file of the repository, by path: ``root/`` (Namespaces, one file per Unit) and the Units' folders."""
    labels = {BENCH_LABEL: BENCH_VALUE}
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}
                  for ns in layout.all_namespaces()]  # fmt: skip
    files = {"root/namespaces.yaml": yaml.safe_dump_all(namespaces)}
    for n in range(layout.units):
        name, namespace = f"u-{n:04d}", layout.namespace(n)
        unit = {"apiVersion": "gitopsguard.io/v1alpha1", "kind": "Unit",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"path": f"units/{name}", "interval": f"{layout.every_unit}s"}}  # fmt: skip
        files[f"root/units/{name}.yaml"] = yaml.safe_dump(unit)
        files[f"units/{name}/objects.yaml"] = yaml.safe_dump_all(unit_objects(name, namespace, layout.objects))
    return files


def unit_objects(unit: str, namespace: str, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(count):
        kind, meta = KINDS[i % len(KINDS)], {"name": f"{unit}-{i}", "namespace": namespace, "labels": {"app": unit}}
        if kind == "ConfigMap":
            out.append({"apiVersion": "v1", "kind": kind, "metadata": meta, "data": {"unit": unit, "index": str(i)}})
        elif kind == "ServiceAccount":
            out.append({"apiVersion": "v1", "kind": kind, "metadata": meta, "automountServiceAccountToken": False})
        else:  # protocol written out: the 1.20 server refuses a server-side apply of ports without it
            ports = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
            out.append({"apiVersion": "v1", "kind": kind, "metadata": meta,
                        "spec": {"selector": {"app": unit}, "ports": ports}})  # fmt: skip
    return out


def build_repository(folder: Path, layout: Layout) -> Upstream:
    upstream = Upstream(folder)
    for path, text in repository_files(layout).items():
        target = upstream.work / path  # written as is: Upstream.write would dedent
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    upstream.commit(f"{layout.units} Units of {layout.objects} objects")
    return upstream


# -- the cluster ---------------------------------------------------------------------------------------


def install_crd(raw: RawApi) -> None:
    """The Unit CRD as ``manifests/crds`` has it (server-side apply: it may be installed already), Established."""
    query = {"fieldManager": "gitopsguard-bench", "force": "true"}
    raw.call("PATCH", CRD_PATH, "CRD units", query=query, body=yaml.safe_load(CRD.read_text()), content_type=APPLY)

    def established() -> bool:
        conditions = (raw.get(CRD_PATH).get("status") or {}).get("conditions") or ()
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

    wait_until(established, 30, "CRD units.gitopsguard.io Established")


def unit_path(namespace: str, name: str, subresource: str = "") -> str:
    tail = f"/{subresource}" if subresource else ""
    return f"/apis/gitopsguard.io/v1alpha1/namespaces/{namespace}/units/{name}{tail}"


def ready_units(raw: RawApi, layout: Layout) -> tuple[int, int]:
    """(Ready, all) of the run's Units, from ONE list (by the root's unit label)."""
    items = raw.get(UNITS, "Units", query={"labelSelector": f"{UNIT_LABEL}={layout.root_unit}"})["items"]
    ready = sum(1 for u in items if readiness_of(u.get("status"), u["metadata"].get("generation", 0)).ready)
    return ready, len(items)


def cleanup(raw: RawApi) -> int:
    """Delete every Namespace of this bench (this run's and an interrupted one's) and the units' inventories
    in gitopsguard-system; how many objects were asked to go."""
    selector = {"labelSelector": f"{BENCH_LABEL}={BENCH_VALUE}"}
    doomed = [f"/api/v1/namespaces/{ns['metadata']['name']}"
              for ns in raw.get("/api/v1/namespaces", "Namespaces", query=selector)["items"]]  # fmt: skip
    for path in (INVENTORIES, "/apis/coordination.k8s.io/v1/namespaces/gitopsguard-system/leases"):
        status, found = raw.request("GET", path)
        items = found.get("items") or () if status == 200 else ()
        doomed += [f"{path}/{i['metadata']['name']}" for i in items if PREFIX in i["metadata"]["name"]]
    answers = raw.send_all([Request("DELETE", path, {}, None) for path in doomed], 16)  # 1,001 inventories
    return sum(1 for a in answers if a.status < 300)


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(every)
    return time.monotonic() - start


# -- the controller, from outside ----------------------------------------------------------------------


class Child:
    """A controller process: its log in a file, its peak RSS and CPU from /proc, its rusage when it ends."""

    def __init__(self, command: list[str], log: Path, checkout: Path, extra: dict[str, str]) -> None:
        self.folder = log.parent
        self._log = log.open("w")
        self.started = time.monotonic()
        env = {**os.environ, "PYTHONPATH": str(checkout), **extra}  # `-m` puts the working directory first too
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=checkout)
        self.max_rss_mib, self.stop_seconds = 0.0, 0.0

    def alive(self) -> bool:
        return self.process.poll() is None

    def vm_hwm_mib(self) -> float:
        """Peak RSS so far, from /proc (0 once the process is gone)."""
        return self._status("VmHWM") / 1024

    def threads(self) -> int:
        return self._status("Threads")

    def _status(self, field: str) -> int:
        try:
            lines = Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        except OSError:
            return 0
        return next((int(line.split()[1]) for line in lines if line.startswith(f"{field}:")), 0)

    def cpu_seconds(self) -> tuple[float, float]:
        """(its own utime+stime, its waited-for children's cutime+cstime), in seconds."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick

    def stop(self, grace: float) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (as the kubelet does); its exit code. ``max_rss_mib``
        from wait4 (its own rusage), ``stop_seconds`` from SIGTERM to its end."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            asked = time.monotonic()
            while self.alive() and time.monotonic() < asked + grace:
                time.sleep(0.1)
            self.stop_seconds = time.monotonic() - asked
            if self.alive():
                self.process.kill()
        if self.process.returncode is None:
            _, status, usage = os.wait4(self.process.pid, 0)
            self.process.returncode = os.waitstatus_to_exitcode(status)
            self.max_rss_mib = usage.ru_maxrss / 1024
        self._log.close()
        return self.process.returncode


# -- writes in a window --------------------------------------------------------------------------------


class AuditWindow:
    """The audit log's lines written between ``open`` and ``count``: the file handle follows a rotation (the
    renamed file is read to its end, then the new one from its start)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] = path.open("rb")
        self._handle.seek(0, 2)
        self._inode = os.fstat(self._handle.fileno()).st_ino

    def lines(self) -> Iterator[bytes]:
        yield from self._handle
        if self.path.stat().st_ino != self._inode:
            with self.path.open("rb") as rotated:
                yield from rotated
        self._handle.close()


def write_of_run(line: bytes, prefix: str) -> str | None:
    """``verb resource namespace/name by agent`` when this audit line records a successful write (no dry run)
    on an object of the run (in its namespaces, or named after it); else None."""
    found = audited(line, prefix)
    return found[1] if found and not found[0] else None


def audited(line: bytes, prefix: str) -> tuple[bool, str] | None:
    """(whether a dry run, ``verb resource namespace/name by agent``) when this audit line records a write
    that succeeded, on an object of the run; else None."""
    if prefix.encode() not in line:  # cheap: most lines are other engineers'
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    ref, code = event.get("objectRef") or {}, (event.get("responseStatus") or {}).get("code", 0)
    if event.get("stage") != "ResponseComplete" or event.get("verb") not in WRITES or not 200 <= code < 300:
        return None
    namespace, name = str(ref.get("namespace") or ""), str(ref.get("name") or "")
    if not (namespace.startswith(prefix) or prefix in name):
        return None
    resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    agent = str(event.get("userAgent", "")).split(" ")[0]
    return "dryRun=" in str(event.get("requestURI")), f"{event['verb']} {resource} {namespace}/{name} by {agent}"


def quiet_for(audit_log: Path, prefix: str, quiet: float, limit: float) -> tuple[float, str | None]:
    """Wait until no client has written an object of the run for ``quiet`` seconds (the controller-manager
    writes tokens into the new ServiceAccounts, late on a loaded machine, and each write makes that Unit due:
    a window holding them is not one with nothing changed), at most ``limit`` seconds; the seconds waited and
    the last write seen."""
    start = last = time.monotonic()
    seen: str | None = None
    with audit_log.open("rb") as handle:
        handle.seek(0, 2)
        while (now := time.monotonic()) - last < quiet and now - start < limit:
            for line in handle:
                if (write := write_of_run(line, prefix)) is not None:
                    last, seen = time.monotonic(), write
            time.sleep(0.5)
    return time.monotonic() - start, seen


def requests_of_run(lines: Iterator[bytes], prefix: str) -> dict[str, int]:
    """The controller's audited requests on the run's objects (writes and dry runs: the dev cluster's audit
    policy leaves reads and Events out), counted by verb and resource."""
    counted = Counter[str]()
    for line in lines:
        found = audited(line, prefix)
        if found is not None and OURS in found[1]:
            verb, resource = found[1].split(" ")[:2]
            counted[f"{verb} {resource}{' (dry run)' if found[0] else ''}"] += 1
    return dict(counted)


def versions(raw: RawApi, layout: Layout) -> dict[str, str]:
    """Every object of the run with its resourceVersion (the fallback count, without an audit log)."""
    found: dict[str, str] = {}
    for ns in layout.all_namespaces():
        for path in ("configmaps", "serviceaccounts", "services"):
            for item in raw.get(f"/api/v1/namespaces/{ns}/{path}")["items"]:
                found[f"{path}/{ns}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    for path in (UNITS, INVENTORIES):
        for item in raw.get(path)["items"]:
            meta = item["metadata"]
            if str(meta.get("namespace")).startswith(layout.prefix) or layout.prefix in meta["name"]:
                found[f"{path}/{meta.get('namespace')}/{meta['name']}"] = meta["resourceVersion"]
    return found


# -- the stand-in controller (--self-test) -------------------------------------------------------------


def apply_root(raw: RawApi, layout: Layout) -> None:
    """What the root unit would apply: the Namespaces, then the Units with the root's unit label."""
    docs = [yaml.safe_load(text) for path, text in repository_files(layout).items() if path.startswith("root/units/")]
    for ns in layout.all_namespaces():
        raw.call("POST", "/api/v1/namespaces", body={"metadata": {"name": ns, "labels": {BENCH_LABEL: BENCH_VALUE}}})
    requests = []
    for doc in docs:
        doc["metadata"]["labels"] = {UNIT_LABEL: layout.root_unit}
        where = unit_path(doc["metadata"]["namespace"], doc["metadata"]["name"])
        requests.append(Request("PATCH", where, {"fieldManager": "gitopsguard-bench"}, json.dumps(doc).encode(), APPLY))
    failed = [a for a in raw.send_all(requests, 32) if not 200 <= a.status < 300]
    if failed:
        raise SystemExit(f"self-test: {len(failed)} Units not applied: {failed[0].body[:300]!r}")


def stand_in(raw: RawApi, layout: Layout, writes: int) -> None:
    """Write every Unit Ready (its status, as the Units loop writes it); on SIGUSR1 (the no-op window has
    opened), ``writes`` more status writes, which the bench must count; then idle until SIGTERM."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    items = raw.get(UNITS, query={"labelSelector": f"{UNIT_LABEL}={layout.root_unit}"})["items"]

    def request(unit: dict[str, Any], revision: str) -> Request:
        meta = unit["metadata"]
        outcome = PassOutcome(Phase.SUCCEEDED, meta.get("generation", 0), revision=revision, objects=layout.objects)
        body = {"status": status_of(outcome, unit.get("status"), datetime.now(UTC))}
        path = unit_path(meta["namespace"], meta["name"], "status")
        return Request("PATCH", path, {"fieldManager": "gitopsguard-bench"}, json.dumps(body).encode(), MERGE)

    raw.send_all([request(u, "main@stand-in") for u in items], 32)
    signal.sigwait({signal.SIGUSR1})
    raw.send_all([request(u, "main@stand-in-2") for u in items[:writes]], 8)
    while True:
        time.sleep(3600)  # until SIGTERM, whose default ends the process


# -- the run -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Numbers:
    ready_seconds: float
    peak_rss_mib: float
    noop_cpu: float  # the controller's own
    noop_children_cpu: float  # its subprocesses' (git, kustomize), once waited for
    noop_writes: tuple[str, ...]  # the controller's (User-Agent gitopsguard/)
    counted_by: str
    window: float
    load: float
    others: tuple[str, ...] = ()  # writes on the run's objects by other clients meanwhile (the controller-manager)
    dry_runs: dict[str, int] = field(default_factory=dict)  # the controller's, by resource: no write, but load
    ready_cpu: float = 0.0  # the controller's CPU-seconds (its subprocesses' included) from its start to all Ready
    ready_requests: dict[str, int] = field(default_factory=dict)  # its audited requests until then, by kind


def controller_command(o: argparse.Namespace, layout: Layout, upstream: Upstream, folder: Path) -> list[str]:
    if o.self_test:
        return [sys.executable, __file__, "--stand-in", "--token", layout.token, "--units", str(layout.units),
                "--objects", str(layout.objects), "--namespaces", str(layout.namespaces),
                "--kubeconfig", str(o.kubeconfig), "--stand-in-writes", str(o.stand_in_writes)]  # fmt: skip
    scan = ["--no-live-scan"]
    if o.live_scan:  # of the run's namespaces only: the shared cluster holds other engineers' workloads
        scan = [a for ns in layout.all_namespaces() for a in ("--scan-namespace", ns)]
    profile = ["-m", "cProfile", "-o", str(folder / "controller.prof")] if o.profile else ["-m"]
    if o.sample:
        profile = [str(ROOT / "bench" / "thread_cpu.py"), str(folder / "cpu.txt")]
    return [sys.executable, *profile, "gitopsguard", "run", "--repo", upstream.url, "--root", "root",
            "--unit", layout.root_unit, "--kubeconfig", str(o.kubeconfig), "--workdir", str(folder / "gg"),
            "--audit-log", str(folder / "audit.jsonl"), "--metrics-address", "", "--interval", str(layout.interval),
            "--default-unit-interval", f"{layout.interval}s", *scan, *o.controller_arg]  # fmt: skip


def time_to_ready(raw: RawApi, layout: Layout, child: Child, timeout: float, log: Path) -> float:
    """Seconds from the controller's start until all of the run's Units are Ready (one list per poll)."""
    said = 0.0
    while True:
        ready, listed = ready_units(raw, layout)
        now = time.monotonic() - child.started
        if ready == layout.units:
            return now
        if not child.alive() or now > timeout:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise SystemExit(f"{ready} of {layout.units} Units Ready after {now:.0f} s (controller "
                             f"{'running' if child.alive() else 'ended'}); its log ends:\n{tail}")  # fmt: skip
        if now - said >= 5:
            said = now
            print(f"  {now:5.1f} s: {listed} Units listed, {ready} Ready, RSS peak {child.vm_hwm_mib():.0f} MiB, "
                  f"{child.threads()} threads", flush=True)  # fmt: skip
        time.sleep(0.5)


def noop_window(raw: RawApi, layout: Layout, child: Child, audit_log: Path | None, o: argparse.Namespace) -> Numbers:
    """One full interval with nothing changed: the controller's CPU and its writes."""
    audit = AuditWindow(audit_log) if audit_log else None
    before = versions(raw, layout) if audit is None else {}
    marker = child.folder / "cpu.txt.window"  # bench/thread_cpu.py charges what it samples meanwhile apart
    start, cpu = time.monotonic(), child.cpu_seconds()
    marker.touch()
    if o.self_test:
        child.process.send_signal(signal.SIGUSR1)
    time.sleep(layout.interval)
    own, children = (after - was for after, was in zip(child.cpu_seconds(), cpu, strict=True))
    marker.unlink()
    window = time.monotonic() - start
    if audit is not None:
        found = [a for line in audit.lines() if (a := audited(line, layout.prefix))]
        writes = tuple(w for dry, w in found if OURS in w and not dry)
        others = tuple(w for dry, w in found if OURS not in w and not dry)
        dry_runs = Counter(w.split(" ")[1] for dry, w in found if OURS in w and dry)
        counted_by = f"the API server's audit log ({audit.path})"
    else:
        after = versions(raw, layout)
        writes, others = tuple(f"changed {k}" for k, v in after.items() if before.get(k) != v), ()
        dry_runs = Counter[str]()
        counted_by = "resourceVersions before and after (objects written, by anyone; not writes)"
    return Numbers(0.0, 0.0, own, children, writes, counted_by, window, 0.0, others, dict(dry_runs))


def measure(raw: RawApi, o: argparse.Namespace, layout: Layout, folder: Path) -> Numbers:
    upstream = build_repository(folder / "git", layout)
    if o.self_test:
        apply_root(raw, layout)
    load, log = os.getloadavg()[0], folder / "controller.log"
    extra = {"PYTHONTRACEMALLOC": "10"} if o.tracemalloc else {}  # bench/thread_cpu.py reports it at exit
    ramp = AuditWindow(o.apiserver_audit_log) if o.apiserver_audit_log else None
    child = Child(controller_command(o, layout, upstream, folder), log, o.gitopsguard, extra)
    try:
        ready = time_to_ready(raw, layout, child, o.timeout, log)
        ready_cpu = sum(child.cpu_seconds())
        ready_requests = requests_of_run(ramp.lines(), layout.prefix) if ramp else {}
        print(f"all {layout.units} Units Ready {ready:.1f} s after start; no-op window in {o.settle:.0f} s", flush=True)
        time.sleep(o.settle)
        if o.apiserver_audit_log and o.quiet > 0:
            waited, last = quiet_for(o.apiserver_audit_log, layout.prefix, o.quiet, o.interval)
            print(f"then {waited:.1f} s until no write on the run's objects for {o.quiet:.0f} s"
                  + (f" (the last: {last})" if last else ""), flush=True)  # fmt: skip
        numbers = noop_window(raw, layout, child, o.apiserver_audit_log, o)
        peak = child.vm_hwm_mib()
        print(f"the controller's memory after the window: {smaps.summary(child.process.pid)}", flush=True)
    finally:
        code = child.stop(o.stop_grace)
    print(f"the controller ended {child.stop_seconds:.1f} s after SIGTERM, exit code {code}"
          + (f" (killed after {o.stop_grace:.0f} s)" if code == -signal.SIGKILL else ""), flush=True)  # fmt: skip
    return Numbers(ready, max(peak, child.max_rss_mib), numbers.noop_cpu, numbers.noop_children_cpu,
                   numbers.noop_writes, numbers.counted_by, numbers.window, load, numbers.others,
                   numbers.dry_runs, ready_cpu, ready_requests)  # fmt: skip


def report(layout: Layout, n: Numbers, o: argparse.Namespace) -> None:
    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    what = "stand-in controller (self-test)" if o.self_test else "gitopsguard run --root"
    print(f"{layout.units} Units x {layout.objects} objects in {layout.namespaces} namespaces, interval "
          f"{layout.interval} s (Units: {layout.every_unit} s), {what}, load {n.load:.2f} "
          "at start:")  # fmt: skip
    print(f"  all Ready: {n.ready_seconds:.1f} s after start (target <= 60 s: {verdict(n.ready_seconds <= 60)})")
    print(f"  until all Ready: {n.ready_cpu:.1f} CPU-s of the controller (subprocesses included)")
    if n.ready_requests:
        per_unit = sum(n.ready_requests.values()) / layout.units
        print(
            f"    its audited requests (writes and dry runs): {per_unit:.1f} a Unit; "
            + ", ".join(f"{c} {w}" for w, c in sorted(n.ready_requests.items(), key=lambda i: -i[1]))
        )
    print(f"  peak RSS: {n.peak_rss_mib:.0f} MiB (target <= 175 MiB: {verdict(n.peak_rss_mib <= 175)})")
    print(f"  no-op cycle ({n.window:.1f} s): {n.noop_cpu:.2f} CPU-s (+{n.noop_children_cpu:.2f} in subprocesses; "
          f"target < 1: {verdict(n.noop_cpu + n.noop_children_cpu < 1)}), {len(n.noop_writes)} writes "
          f"(target 0: {verdict(not n.noop_writes)}), counted from {n.counted_by}")  # fmt: skip
    for write in n.noop_writes[:10]:
        print(f"    {write}")
    if n.dry_runs:
        print(f"  dry runs by the controller in the window: {sum(n.dry_runs.values())} "
              f"({', '.join(f'{r} {c}' for r, c in sorted(n.dry_runs.items()))})")  # fmt: skip
    if n.others:
        print(f"  not counted: {len(n.others)} writes on the run's objects by other clients, e.g. {n.others[0]}")


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=4)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--interval", type=int, default=60, help="seconds: every Unit's, and the fetch interval")
    parser.add_argument("--unit-interval", type=int, default=0, help="seconds: every Unit's interval, when it "
                        "should differ (longer: the window sees fetches and watches, no pass)")  # fmt: skip
    parser.add_argument("--settle", type=float, default=10.0, help="seconds from all Ready to the no-op window")
    parser.add_argument("--quiet", type=float, default=10.0, help="then, with --apiserver-audit-log, seconds "
                        "without a write on the run's objects by anyone (at most --interval)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=600.0, help="give up when not all Ready by then")
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    parser.add_argument("--apiserver-audit-log", type=Path, default=None, help="default: the dev cluster's")
    parser.add_argument("--count-by-versions", action="store_true", help="count writes by resourceVersions, "
                        "not from the audit log")  # fmt: skip
    parser.add_argument("--keep", type=Path, default=None, help="keep the repository and the controller's log here")
    parser.add_argument("--live-scan", action=argparse.BooleanOptionalAction, default=True,
                        help="the controller's live scan, of the run's namespaces only")  # fmt: skip
    parser.add_argument("--gitopsguard", type=Path, default=ROOT, help="the checkout whose gitopsguard the "
                        "controller runs (default: this bench's)")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="run the controller under cProfile (slower)")
    parser.add_argument("--sample", action="store_true", help="run the controller under bench/thread_cpu.py: its "
                        "CPU by thread and function, in the no-op window apart (cpu.txt in --keep DIR)")  # fmt: skip
    parser.add_argument("--tracemalloc", action="store_true", help="with --sample: what holds the controller's "
                        "memory at exit, by file and line (slower; RSS higher)")  # fmt: skip
    parser.add_argument("--stop-grace", type=float, default=30.0, help="seconds from SIGTERM to SIGKILL (the "
                        "default is Kubernetes' terminationGracePeriodSeconds)")  # fmt: skip
    parser.add_argument("--controller-arg", action="append", default=[], help="one more option for `run`")
    parser.add_argument("--self-test", action="store_true", help="measure a stand-in, not gitopsguard")
    parser.add_argument("--stand-in", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stand-in-writes", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--token", default="", help=argparse.SUPPRESS)
    o = parser.parse_args()
    if o.count_by_versions:
        o.apiserver_audit_log = None
    elif o.apiserver_audit_log is None and o.kubeconfig == StateLayout.default().kubeconfig:
        found = StateLayout.default().audit_log
        o.apiserver_audit_log = found if found.is_file() else None
    return o


def main() -> None:
    o = options()
    layout = Layout(o.units, o.objects, o.namespaces, o.interval, o.unit_interval, o.token or secrets.token_hex(3))
    raw = RawApi(connect(o.kubeconfig))
    if o.stand_in:
        stand_in(raw, layout, o.stand_in_writes)
        return
    if left := cleanup(raw):
        print(f"removed {left} objects an earlier run left (Namespaces, inventories)")
    install_crd(raw)
    with tempfile.TemporaryDirectory(prefix="units-1000-") as tmp:
        folder = o.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            numbers = measure(raw, o, layout, folder)
        finally:
            cleanup(raw)
        report(layout, numbers, o)
        if o.self_test and len(numbers.noop_writes) != o.stand_in_writes:
            raise SystemExit(f"self-test: the stand-in made {o.stand_in_writes} writes in the window; "
                             f"{len(numbers.noop_writes)} counted")  # fmt: skip
        if o.self_test:
            print(f"self-test passed: the {o.stand_in_writes} writes the stand-in made in the window were counted")


if __name__ == "__main__":
    main()
