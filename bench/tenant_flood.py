"""Issue 21's numbers: one tenant floods its namespace with 5,000 non-compliant Pods while `gitopsguard run`
holds a unit and scans live workloads. Measured from outside, against the run process:

    PYTHONPATH=$PWD .venv/bin/python bench/tenant_flood.py [--pods 5000] [--kubeconfig PATH]

Needs a running dev cluster (no scheduler or kubelet: the Pods stay Pending, which is all the scan needs).
Makes a git repository of its own (`policies/` with pss-restricted, `live: notify`, as repo-template's
pod-security.yaml; `apps/` with one ConfigMap), installs the PolicyReport CRD as manifests/ does, creates two
namespaces of fresh names (the flooded tenant's and another), and one privileged Pod in the other namespace.
It then starts `python -m gitopsguard run` on the repository's bare copy with `--live-scan --scan-namespace`
for just those two namespaces, `--metrics-address 127.0.0.1:0`, and the platform webhook
(`GITOPSGUARD_SLACK_WEBHOOK`) pointed at a local fake Slack (tests/fakeslack.py). Once the scan remembers
the other namespace's Pod, it creates N privileged Pods in the tenant's namespace (16 in flight) and,
once they exist and the first flood notice has reached the fake Slack, pushes a commit that the policy gate
refuses (a privileged Pod in apps/). It prints, each with its target:

  * the "Revision blocked by policy" notice: time from the push to the fake Slack's receipt (<= 5 s);
  * the other namespace's Pod keeps its first sighting in the scan state, sampled every 2 s through the
    flood and read once at the end (unchanged);
  * the run process's peak RSS, VmHWM from /proc/<pid>/status (< 300 MB);
  * the flooded namespace's PolicyReports name every Pod (N of N), waited for up to --settle seconds.

Then it stops the run, deletes its namespaces and its unit's inventory, and removes its rows from the scan
state. The two readers of state whose format may change, `first_sightings` and `reported_workloads`, are
kept small and at the top.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.runproc import (
    RunProcess,
    delete_configmap,
    delete_namespaces,
    verdict,
    wait_for_default_accounts,
)
from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi, Request
from gitopsguard.devcluster import StateLayout
from gitopsguard.scan.state import ScanStateStore
from tests.fakeslack import WEBHOOK_PATH, FakeSlack
from tests.gitrepo import Upstream, git

ROOT = Path(__file__).resolve().parents[1]
CRD = ROOT / "manifests" / "crds" / "policyreport.yaml"
POLICY = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata:
  name: pod-security
spec:
  builtin: {name: pss-restricted}
  enforcement: enforce
  live:
    action: notify
"""


# -- reading state whose format may change: adapt these two after a merge ----------------------------------


def first_sightings(raw: RawApi) -> dict[str, tuple[str, str]]:
    """uid -> (subject, first sighting) of every workload the live scan remembers, read as the scan reads
    it (one compressed ConfigMap per namespace in gitopsguard-system, ``scan/state.py``)."""
    tracked, _ = ScanStateStore(raw).load()
    return {uid: (row.subject, row.first_seen.isoformat()) for uid, row in tracked.items()}


def reported_workloads(raw: RawApi, namespace: str) -> tuple[set[str], int]:
    """The workloads (Kind/name) failing in the namespace's PolicyReports (wgpolicyk8s.io/v1alpha2), and how
    many results name them. Format of 2026-12-05: one report, ``gitopsguard``, one result per finding, each
    with ``resources: [{kind, name, uid, ...}]``; every report in the namespace is read."""
    status, listed = raw.request("GET", f"/apis/wgpolicyk8s.io/v1alpha2/namespaces/{namespace}/policyreports")
    if status != 200:
        return set(), 0
    workloads, results = set(), 0
    for report in listed.get("items") or []:
        for result in report.get("results") or []:
            if result.get("result") == "fail":
                results += 1
                workloads |= {f"{r.get('kind')}/{r.get('name')}" for r in result.get("resources") or []}
    return workloads, results


def forget_rows(raw: RawApi, namespaces: set[str]) -> int:
    """Cleanup: remove our namespaces' scan state (one ConfigMap each)."""
    store = ScanStateStore(raw)
    for namespace in namespaces:
        store.save(namespace, [])
    return len(namespaces)


# -- the bench ----------------------------------------------------------------------------------------------


def pod(namespace: str, name: str, **labels: str) -> dict[str, Any]:
    box = {"name": "app", "image": "registry.example/app:1", "securityContext": {"privileged": True}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name, **labels}},
            "spec": {"containers": [box], "automountServiceAccountToken": False}}  # fmt: skip


@dataclass
class Watchful:
    """Samples the other namespace's first sighting through the flood."""

    raw: RawApi
    uid: str
    expected: str
    samples: int = 0
    wrong: list[str] = field(default_factory=list)  # what was read instead, when it was not as expected
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(2.0):
            self.check()

    def check(self) -> bool:
        row = first_sightings(self.raw).get(self.uid)
        self.samples += 1
        seen = row[1] if row else "missing"
        if seen != self.expected:
            self.wrong.append(seen)
        return seen == self.expected


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, default=StateLayout.default().kubeconfig)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--notice-timeout", type=float, default=60.0, help="give up waiting for the notice")
    parser.add_argument("--settle", type=float, default=180.0, help="longest wait for the PolicyReports")
    parser.add_argument("--log", type=Path, default=None, help="also write the run's output here")
    args = parser.parse_args()
    raw = RawApi(connect(args.kubeconfig))
    prefix = f"flood-{int(time.time()) % 100_000:05d}"  # fresh names: see apply_2000.py
    tenant, other = f"{prefix}-tenant", f"{prefix}-other"
    runs: list[RunProcess] = []
    fake = FakeSlack()
    try:
        with tempfile.TemporaryDirectory() as tmp, fake.serving() as slack_url:
            try:
                measure(args, raw, Path(tmp), prefix, tenant, other, fake, slack_url, runs)
            finally:
                for run in runs:
                    run.stop()
    finally:
        delete_namespaces(raw, [tenant, other])
        delete_configmap(raw, f"gitopsguard-inventory-{prefix}")
        dropped = forget_rows(raw, {tenant, other})
        print(f"cleaned up: namespaces {tenant} and {other} deleted, unit {prefix}'s inventory removed, "
              f"{dropped} rows dropped from the scan state", file=sys.stderr)  # fmt: skip


def measure(args: argparse.Namespace, raw: RawApi, tmp: Path, prefix: str, tenant: str, other: str,
            fake: FakeSlack, slack_url: str, runs: list[RunProcess]) -> None:  # fmt: skip
    crd = yaml.safe_load(CRD.read_text())  # as manifests/ installs it (the integration tests do the same)
    raw.request("PATCH", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}",
                query={"fieldManager": "bench", "force": "true"}, body=crd,
                content_type="application/apply-patch+yaml")  # fmt: skip
    for ns in (tenant, other):
        raw.request("POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    wait_for_default_accounts(raw, [tenant, other])
    status, early = raw.request("POST", f"/api/v1/namespaces/{other}/pods", body=pod(other, "early-bird"))
    if status != 201:
        raise SystemExit(f"cannot create the other namespace's Pod: HTTP {status} {early}")
    early_uid = str(early["metadata"]["uid"])

    upstream = Upstream(tmp / "git")
    upstream.write("policies/pod-security.yaml", POLICY)
    settings = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": other},
                "data": {"key": "value"}}  # fmt: skip
    upstream.write("apps/settings.yaml", yaml.safe_dump(settings))
    upstream.commit("a unit with policies")
    run = RunProcess(
        ["--repo", str(upstream.bare), "--path", "apps", "--unit", prefix, "--kubeconfig", str(args.kubeconfig),
         "--workdir", str(tmp / "gg"), "--audit-log", str(tmp / "audit.jsonl"), "--backup-dir", str(tmp / "backups"),
         "--interval", "30", "--live-scan", "--scan-namespace", tenant, "--scan-namespace", other,
         "--metrics-address", "127.0.0.1:0"],
        env={"GITOPSGUARD_SLACK_WEBHOOK": slack_url + WEBHOOK_PATH}, log=args.log,
    )  # fmt: skip
    runs.append(run)

    # 1. The other namespace's Pod is remembered before the flood.
    deadline = time.monotonic() + 90
    while (row := first_sightings(raw).get(early_uid)) is None:
        if not run.alive() or time.monotonic() > deadline:
            raise SystemExit(f"the scan never remembered Pod/{other}/early-bird; the run said:\n{run.tail()}")
        time.sleep(0.5)
    first_seen = row[1]
    print(f"Pod/{other}/early-bird first seen at {first_seen}; flooding {tenant} with {args.pods} Pods",
          file=sys.stderr)  # fmt: skip
    watch = Watchful(raw, early_uid, first_seen)
    threading.Thread(target=watch.run, daemon=True).start()

    # 2. The flood: N privileged Pods, 16 requests in flight.
    flood_notices = lambda: sum(1 for m in fake.messages if f"/{tenant}/" in m.text)  # noqa: E731
    bodies = [json.dumps(pod(tenant, f"flood-{i}")).encode() for i in range(args.pods)]
    started = time.monotonic()
    answers = raw.send_all([Request("POST", f"/api/v1/namespaces/{tenant}/pods", {}, b) for b in bodies], 16)
    created = sum(1 for answer in answers if answer.status == 201)
    took = time.monotonic() - started
    print(f"created {created} of {args.pods} Pods in {took:.1f} s", file=sys.stderr)
    deadline = time.monotonic() + 60
    while flood_notices() == 0 and time.monotonic() < deadline and run.alive():
        time.sleep(0.1)

    # 3. A commit the gate refuses, during the flood: the platform notice's latency.
    upstream.write("apps/privileged.yaml", yaml.safe_dump(pod(other, "from-git")))
    git(upstream.work, "add", "-A")
    git(upstream.work, "commit", "-q", "-m", "a privileged Pod: the gate refuses it")
    sha = git(upstream.work, "rev-parse", "HEAD")
    before = flood_notices()
    pushed = time.monotonic()
    git(upstream.work, "push", "-q", "origin", "main")
    received = None
    while received is None and time.monotonic() - pushed < args.notice_timeout and run.alive():
        received = next((m.at for m in list(fake.messages) if sha[:12] in m.text and "Revision blocked" in m.text),
                        None)  # fmt: skip
        time.sleep(0.02)
    printed = run.first_line(lambda line: sha[:12] in line, since=pushed)

    # 4. The flooded namespace's findings, all reported.
    deadline, reported, results = time.monotonic() + args.settle, set(), 0
    while time.monotonic() < deadline and run.alive():
        reported, results = reported_workloads(raw, tenant)
        if len({w for w in reported if w.startswith("Pod/flood-")}) >= created:
            break
        time.sleep(2)
    flooded = len({w for w in reported if w.startswith("Pod/flood-")})
    watch.stop.set()
    intact = watch.check() and not watch.wrong
    remembered = sum(1 for subject, _ in first_sightings(raw).values() if subject.startswith(f"Pod/{tenant}/"))
    peak, alive = run.status_mb("VmHWM"), run.alive()

    print(f"\ntenant flood: {created} non-compliant Pods created in {tenant} in {took:.1f} s; the run "
          f"{'was still running' if alive else f'had ENDED (exit {run.child.returncode})'} at the end")  # fmt: skip
    if received is not None:
        latency = received - pushed
        print(f"  platform notice (revision {sha[:12]} blocked), push to fake Slack: {latency:.2f} s "
              f"(target <= 5 s): {verdict(latency <= 5)}")  # fmt: skip
    else:
        print(f"  platform notice (revision {sha[:12]} blocked): NOT received within {args.notice_timeout:.0f} s "
              f"(target <= 5 s): {verdict(False)}")  # fmt: skip
    if printed is not None:
        print(f"    (the run printed the refusal {printed - pushed:.2f} s after the push)")
    print(f"    (fake Slack had {before} flood notices at the push, {flood_notices()} at the end; "
          f"{len(fake.messages)} messages in all)")  # fmt: skip
    print(f"  other namespace's scan state: Pod/{other}/early-bird first seen {first_seen}; "
          f"{watch.samples} reads, {len(watch.wrong)} not as before"
          + (f" (read: {sorted(set(watch.wrong))[:3]})" if watch.wrong else "")
          + f" (target: unchanged): {verdict(intact)}")  # fmt: skip
    print(f"    (the scan state remembers {remembered} of the {created} flooded Pods)")
    if peak is not None:
        print(f"  peak RSS of the run process (VmHWM): {peak:.0f} MB (target < 300 MB): {verdict(peak < 300)}")
    else:
        print(f"  peak RSS of the run process: unknown (the process had ended) (target < 300 MB): {verdict(False)}")
    print(f"  flooded namespace's PolicyReports: {flooded} of {created} Pods reported ({results} failing results) "
          f"(target: all): {verdict(flooded >= created)}")  # fmt: skip
    if not alive:
        print(f"the run's last output:\n{run.tail()}")


if __name__ == "__main__":
    main()
