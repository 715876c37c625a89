"""Issue 17's numbers for gitopsguard as Pods on the dev cluster's node: Pod start to Ready, and the controller's
memory in the Pod (from its cgroup), with N managed objects.

    sudo .venv/bin/python bench/incluster_pod.py --kubeconfig KUBECONFIG [--objects 2020]

Needs root (the image is built with buildah and imported into the node) and a dev cluster with a node that no
gitopsguard is installed in (`gitopsguard dev-cluster up` as root). Installs with `kubectl apply -k` over
manifests/ exactly as tests/integration/test_incluster_install.py does (gitopsguard/devcluster/install.py), from
a repository
holding ``--objects`` objects (0, or bench/apply_2000.py's 2,020: 20 Namespaces, 1,000 ConfigMaps, 500
Deployments with 0 replicas so that no Pod floods the node, 500 Services). Prints, per Pod: created ->
container started -> Ready (the leader is Ready after its first pass, the standby once it serves admission),
the leader's first pass, and each container's memory (cgroup v1 memory.stat rss and usage_in_bytes, and the
peak, memory.max_usage_in_bytes) once the pass has applied everything. Uninstalls at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes import client

from bench.apply_2000 import objects
from gitopsguard.admission.configurations import remove
from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi
from gitopsguard.devcluster import StateLayout
from gitopsguard.devcluster.base_image import ImageCache
from gitopsguard.devcluster.image import build, gitopsguard_image
from gitopsguard.devcluster.install import NAMESPACE, InstallSettings, git_daemon, write_overlay
from gitopsguard.devcluster.node import import_image
from gitopsguard.devcluster.progress import StagedProgress
from tests.kubectl import kubectl
from tests.reviewrepo import ReviewRepo

SELECTOR = "app.kubernetes.io/name=gitopsguard,app.kubernetes.io/component=controller"
TAINT = "gitopsguard.io/tests-opt-in"  # the suite's taint, when the suite has run on this cluster


def repository_files(count: int) -> dict[str, str]:
    if count == 0:
        body = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one", "namespace": "default"}}]
    else:
        body = objects(f"incl{int(time.time()) % 10_000:04d}")[:count]
        for obj in body:
            if obj["kind"] == "Deployment":
                obj["spec"]["replicas"] = 0  # type: ignore[index]
    text = yaml.safe_dump_all(body)
    return {"clusters/dev/kustomization.yaml": "resources: [objects.yaml]\n", "clusters/dev/objects.yaml": text}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--objects", type=int, default=2020)
    args = parser.parse_args()
    built = build(gitopsguard_image(), ImageCache.default(), StagedProgress(sys.stderr), confirm=lambda _: False)
    import_image(built.archive, StateLayout(args.kubeconfig.parent))
    api = connect(args.kubeconfig)
    core = client.CoreV1Api(api)
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        repo = ReviewRepo(root / "source")
        for path, text in repository_files(args.objects).items():
            repo.write(path, text)
        first = repo.commit("carol", "the benchmark's objects")
        served = root / "served"
        served.mkdir()
        subprocess.run(["git", "clone", "-q", "--bare", str(repo.work), str(served / "cluster.git")], check=True)
        with git_daemon(served) as daemon:
            settings = InstallSettings(daemon.url("cluster.git"), "clusters/dev", repo.trust, first, TAINT)
            overlay = write_overlay(root / "overlay", settings)
            applied = time.time()
            run_kubectl(args.kubeconfig, "apply", "--server-side", "-k", str(overlay))
            try:
                measure(core, args.kubeconfig, applied, args.objects)
            finally:
                uninstall(args.kubeconfig, overlay, RawApi(api))


def measure(core: client.CoreV1Api, kubeconfig: Path, applied: float, count: int) -> None:
    pods = wait_ready(core, deadline=time.monotonic() + 900)
    for pod in pods:
        created = pod.metadata.creation_timestamp.timestamp()
        started = pod.status.container_statuses[0].state.running.started_at.timestamp()
        ready = next(c.last_transition_time for c in pod.status.conditions if c.type == "Ready").timestamp()
        print(f"{pod.metadata.name}: apply -k -> created {created - applied:.1f} s; created -> started "
              f"{started - created:.1f} s; created -> Ready {ready - created:.1f} s")  # fmt: skip
    leader, summary = wait_pass(core, pods, time.monotonic() + 1800)
    print(f"leader {leader}: {summary!r} ({count} objects) seen {time.time() - applied:.0f} s after apply -k")
    now = core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR).items
    print("restarts:", {p.metadata.name: p.status.container_statuses[0].restart_count for p in now})
    time.sleep(20)  # the live cache and the scan settle after the pass
    for pod in pods:
        print(
            f"{pod.metadata.name} ({'leader' if pod.metadata.name == leader else 'standby'}): {memory(kubeconfig, pod)}"
        )


def wait_ready(core: client.CoreV1Api, deadline: float) -> list[client.V1Pod]:
    while time.monotonic() < deadline:
        pods = [p for p in core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR).items
                if p.metadata.deletion_timestamp is None]  # fmt: skip
        if len(pods) == 2 and all(any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
                                  for p in pods):  # fmt: skip
            return pods
        time.sleep(0.5)
    raise SystemExit("the controller Pods were not both Ready in time")


def wait_pass(core: client.CoreV1Api, pods: list[client.V1Pod], deadline: float) -> tuple[str, str]:
    """(the leader, its pass's summary line "unit clusters-dev at COMMIT: N created") once a pass created objects."""
    while time.monotonic() < deadline:
        for pod in pods:
            log = core.read_namespaced_pod_log(pod.metadata.name, NAMESPACE, container="gitopsguard")
            summaries = (line for line in log.splitlines() if line.startswith("unit clusters-dev at "))
            lines = [line for line in summaries if "created" in line]
            if lines:
                return str(pod.metadata.name), lines[0]
        time.sleep(2)
    raise SystemExit("no pass applied the objects in time")


def memory(kubeconfig: Path, pod: client.V1Pod) -> str:
    """rss, usage and peak of the container's cgroup (v1 on this machine), read inside the container."""
    script = (
        "grep -E '^total_rss ' /sys/fs/cgroup/memory/memory.stat; "
        "cat /sys/fs/cgroup/memory/memory.usage_in_bytes /sys/fs/cgroup/memory/memory.max_usage_in_bytes"
    )
    done = subprocess.run(
        [
            kubectl(),
            "--kubeconfig",
            str(kubeconfig),
            "-n",
            NAMESPACE,
            "exec",
            pod.metadata.name,
            "--",
            "sh",
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
    )
    numbers = [int(word) for word in done.stdout.split() if word.isdigit()]
    if len(numbers) != 3:
        return f"could not read the cgroup: {done.stderr.strip()}"
    rss, usage, peak = (n / 2**20 for n in numbers)
    return f"rss {rss:.0f} MiB, usage {usage:.0f} MiB, peak {peak:.0f} MiB (limit 512 MiB)"


def run_kubectl(kubeconfig: Path, *args: str) -> None:
    done = subprocess.run([kubectl(), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {done.stderr.strip()}")


def uninstall(kubeconfig: Path, overlay: Path, raw: RawApi) -> None:
    with contextlib.suppress(SystemExit):
        run_kubectl(kubeconfig, "-n", NAMESPACE, "delete", "deployment", "gitopsguard", "--wait=true")
    remove(raw, "gitopsguard")
    with contextlib.suppress(SystemExit):
        run_kubectl(kubeconfig, "delete", "-k", str(overlay), "--wait=false")
    with contextlib.suppress(SystemExit):
        run_kubectl(kubeconfig, "delete", "namespace", "-l", "gitopsguard.io/bench=yes", "--wait=false")


if __name__ == "__main__":
    main()
