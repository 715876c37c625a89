"""A bad commit (10 MB of YAML) pushed while `gitopsguard run` holds a unit: how fast it is refused, what
it costs in memory, and whether drift is still repaired meanwhile.

    PYTHONPATH=$PWD .venv/bin/python bench/bad_commit.py [--megabytes 10] [--shape documents|list] [--kubeconfig PATH]

Needs a running dev cluster. Makes a git repository of its own (`policies/` with pss-restricted, `apps/`
with a Namespace of a fresh name and 20 ConfigMaps) and starts `python -m gitopsguard run` on its bare copy
(so the run's watch on a local repository wakes it on the push), with the live scan limited to that
namespace and `--metrics-address 127.0.0.1:0`. Once the unit is applied it commits `apps/big.yaml`: N MB of
ConfigMaps of 100 KB of incompressible data each (`--shape documents`: one YAML document each; `list`: one
`kind: List`), and pushes it. Then it measures, each printed with its target:

  * the time from the push until the revision is refused: the unit's inventory
    (ConfigMap gitopsguard-system/gitopsguard-inventory-<unit>), read every 0.1 s, holds an error and not
    the commit as last applied (it had no error before the push; its last attempted commit is printed), and
    the run's first output lines naming the commit and saying `error:` (<= 10 s). If the commit is applied
    instead, that is said (not met);
  * the run process's peak RSS, VmHWM from /proc/<pid>/status, read 5 s after the refusal (< 300 MB);
  * drift repair from the push until 5 s after the refusal: every 0.5 s one of the 20 ConfigMaps is
    patched with `kubectl patch` and read through the API every 10 ms until restored, timed from the
    patch's return, as in drift_latency.py (median < 1 s; p95 and max printed).

Then it stops the run and deletes its namespace and its unit's inventory. The reader of the inventory,
`attempt`, is kept small and at the top in case its format changes.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.runproc import (
    CONTROLLER_NAMESPACE,
    RunProcess,
    delete_configmap,
    delete_namespaces,
    percentile,
    verdict,
)
from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi
from gitopsguard.devcluster import StateLayout
from tests.gitrepo import Upstream, git
from tests.kubectl import kubectl

OBJECT_BYTES = 100_000  # the data of one ConfigMap of the bad commit (a ConfigMap may hold 1 MiB)
POLICY = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata:
  name: pod-security
spec:
  builtin: {name: pss-restricted}
  enforcement: enforce
"""


def attempt(raw: RawApi, unit: str) -> tuple[str, str, str]:
    """(last attempted commit, last error, last applied commit) of the unit. Format of 2026-12-05:
    ConfigMap gitopsguard-system/gitopsguard-inventory-<unit>, ``data.lastAttempted``, ``data.lastError``
    and ``data.lastApplied`` (gitopsguard/cluster/inventory.py)."""
    status, configmap = raw.request("GET", f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/configmaps/"
                                           f"gitopsguard-inventory-{unit}")  # fmt: skip
    data = (configmap.get("data") or {}) if status == 200 else {}
    return str(data.get("lastAttempted") or ""), str(data.get("lastError") or ""), str(data.get("lastApplied") or "")


def big_yaml(namespace: str, megabytes: float, shape: str) -> str:
    """About ``megabytes`` MB of ConfigMaps with long, incompressible data, as documents or one List."""
    count = max(1, round(megabytes * 1_000_000 / OBJECT_BYTES))
    blobs = (base64.b64encode(os.urandom(OBJECT_BYTES * 3 // 4)).decode() for _ in range(count))
    if shape == "list":
        items = "".join(f"- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: big-{i}\n"
                        f"    namespace: {namespace}\n  data:\n    blob: {blob}\n"
                        for i, blob in enumerate(blobs))  # fmt: skip
        return f"apiVersion: v1\nkind: List\nitems:\n{items}"
    return "".join(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big-{i}\n  namespace: {namespace}\n"
                   f"data:\n  blob: {blob}\n" for i, blob in enumerate(blobs))  # fmt: skip


class Drift:
    """Every 0.5 s, one owned ConfigMap patched with kubectl and timed until the run restores it."""

    def __init__(self, raw: RawApi, kube: list[str], namespace: str, longest: float = 60.0) -> None:
        self.raw, self.kube, self.namespace, self.longest = raw, kube, namespace, longest
        self.latencies: list[float] = []
        self.unrepaired = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def value(self, name: str) -> str | None:
        status, body = self.raw.request("GET", f"/api/v1/namespaces/{self.namespace}/configmaps/{name}")
        return (body.get("data") or {}).get("key") if status == 200 else None

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            began, name = time.monotonic(), f"cm-{i % 20}"
            patch = ["patch", "configmap", name, "-n", self.namespace, "--type", "merge",
                     "-p", '{"data":{"key":"edited"}}']  # fmt: skip
            subprocess.run([*self.kube, *patch], check=True, capture_output=True)
            start = time.monotonic()
            while self.value(name) != f"value-{i % 20}":
                if time.monotonic() - start > self.longest:
                    self.unrepaired += 1
                    self.latencies.append(float("inf"))  # counts against the median
                    break
                time.sleep(0.01)
            else:
                self.latencies.append(time.monotonic() - start)
            i += 1
            self.stop.wait(max(0.0, began + 0.5 - time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    parser.add_argument("--megabytes", type=float, default=10.0)
    parser.add_argument("--shape", choices=["documents", "list"], default="documents")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up waiting for the refusal")
    parser.add_argument("--log", type=Path, default=None, help="also write the run's output here")
    args = parser.parse_args()
    raw = RawApi(connect(args.kubeconfig))
    prefix = f"badc-{int(time.time()) % 100_000:05d}"  # fresh names: see apply_2000.py
    runs: list[RunProcess] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                measure(args, raw, Path(tmp), prefix, runs)
            finally:
                for run in runs:
                    run.stop()
    finally:
        delete_namespaces(raw, [prefix])
        delete_configmap(raw, f"gitopsguard-inventory-{prefix}")
        print(f"cleaned up: namespace {prefix} deleted, unit {prefix}'s inventory removed", file=sys.stderr)


def measure(args: argparse.Namespace, raw: RawApi, tmp: Path, prefix: str, runs: list[RunProcess]) -> None:
    namespace = unit = prefix
    upstream = Upstream(tmp / "git")
    upstream.write("policies/pod-security.yaml", POLICY)
    small = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    small += [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}", "namespace": namespace},
               "data": {"key": f"value-{i}"}} for i in range(20)]  # fmt: skip
    upstream.write("apps/small.yaml", yaml.safe_dump_all(small))
    first = upstream.commit("a small unit")
    run = RunProcess(
        ["--repo", str(upstream.bare), "--path", "apps", "--unit", unit, "--kubeconfig", str(args.kubeconfig),
         "--workdir", str(tmp / "gg"), "--audit-log", str(tmp / "audit.jsonl"), "--backup-dir", str(tmp / "backups"),
         "--interval", "30", "--scan-namespace", namespace, "--metrics-address", "127.0.0.1:0"], log=args.log,
    )  # fmt: skip
    runs.append(run)
    deadline = time.monotonic() + 90
    while attempt(raw, unit)[2] != first:
        if not run.alive() or time.monotonic() > deadline:
            raise SystemExit(f"the unit was never applied; the run said:\n{run.tail()}")
        time.sleep(0.2)
    time.sleep(3)  # let the passes caused by our own writes settle
    baseline = run.status_mb("VmHWM") or 0.0

    text = big_yaml(namespace, args.megabytes, args.shape)
    (upstream.work / "apps" / "big.yaml").write_text(text)
    git(upstream.work, "add", "-A")
    git(upstream.work, "commit", "-q", "-m", f"{len(text) / 1e6:.1f} MB of YAML")
    sha = git(upstream.work, "rev-parse", "HEAD")
    print(f"unit {unit} applied at {first[:12]}; pushing {sha[:12]} with apps/big.yaml of {len(text) / 1e6:.1f} MB "
          f"({args.shape})", file=sys.stderr)  # fmt: skip
    drift = Drift(raw, [kubectl(), "--kubeconfig", str(args.kubeconfig)], namespace)
    pushed = time.monotonic()
    drift.thread.start()
    git(upstream.work, "push", "-q", "origin", "main")
    push_took = time.monotonic() - pushed
    refused = applied = None
    error = ""
    while refused is None and applied is None and time.monotonic() - pushed < args.timeout and run.alive():
        attempted, error, last_applied = attempt(raw, unit)
        if error and last_applied != sha:  # no error before the push; a refusal at fetch keeps the old attempt
            refused = time.monotonic() - pushed
        elif last_applied == sha:
            applied = time.monotonic() - pushed
        time.sleep(0.1)
    said = run.first_line(lambda line: sha[:12] in line, since=pushed)
    said_error = run.first_line(lambda line: line.startswith("error:"), since=pushed)
    time.sleep(5)  # drift is still measured for 5 s after the refusal
    drift.stop.set()
    drift.thread.join(120)
    peak, alive = run.status_mb("VmHWM"), run.alive()

    state = "was still running" if alive else f"had ENDED (exit {run.child.returncode})"
    print(f"\nbad commit: {len(text) / 1e6:.1f} MB of YAML in one file ({args.shape}), pushed in {push_took:.2f} s; "
          f"the run {state} at the end")  # fmt: skip
    if refused is not None:
        print(f"  refused {refused:.2f} s after the push (inventory: last attempted {attempted[:12] or '-'}, error "
              f"{error.splitlines()[0][:160]!r}) (target <= 10 s): {verdict(refused <= 10)}")  # fmt: skip
    elif applied is not None:
        print(f"  NOT refused: applied {applied:.2f} s after the push (target: refused within 10 s): {verdict(False)}")
    else:
        print(f"  NOT refused within {args.timeout:.0f} s (target <= 10 s): {verdict(False)}")
    if said is not None:
        print(f"    (the run's first output line naming {sha[:12]} came {said - pushed:.2f} s after the push)")
    if said_error is not None:
        print(f"    (the run's first error line came {said_error - pushed:.2f} s after the push)")
    if peak is not None:
        print(f"  peak RSS of the run process (VmHWM): {peak:.0f} MB, {baseline:.0f} MB before the push "
              f"(target < 300 MB): {verdict(peak < 300)}")  # fmt: skip
    else:
        print(f"  peak RSS of the run process: unknown (the process had ended) (target < 300 MB): {verdict(False)}")
    if drift.latencies:
        median = statistics.median(drift.latencies)
        print(f"  drift repair from the push until 5 s after: {len(drift.latencies)} edits, "
              f"{drift.unrepaired} not repaired within {drift.longest:.0f} s; median {median:.2f} s, "
              f"p95 {percentile(drift.latencies, 0.95):.2f} s, max {max(drift.latencies):.2f} s "
              f"(target: median < 1 s): {verdict(median < 1)}")  # fmt: skip
    else:
        print(f"  drift repair: no edit was made (target: median < 1 s): {verdict(False)}")
    if not alive:
        print(f"the run's last output:\n{run.tail()}")


if __name__ == "__main__":
    main()
