"""Admission in a running controller: certificates from the Secret, the server, the recorder, and a keeper
thread that rotates the certificate and keeps both configurations current (caBundle, and the kinds the
policies of the applied revision target). Every replica runs all of it; writes are idempotent and the
Secret is shared through its resourceVersion, so replicas agree without a leader.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

from gitopsguard.admission.certs import Certificates, CertificateStore
from gitopsguard.admission.configurations import (
    EVERY_KIND,
    SERVICE,
    WebhookSettings,
    configurations,
    keep,
    kinds_for,
    mutated_kinds,
)
from gitopsguard.admission.configurations import label_system_namespaces as label_exempt
from gitopsguard.admission.record import AdmissionRecorder
from gitopsguard.admission.review import Judgement, PodSecurity
from gitopsguard.admission.server import DEFAULT, WHOAMI, AdmissionServer, Settings
from gitopsguard.cluster.namespaces import NamespaceView
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError, GitOpsGuardError, UnreachableError
from gitopsguard.model import KubeObject
from gitopsguard.policy import PolicySet

KEEP_EVERY = 60.0  # seconds between checks of the certificate and the configurations
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
NAMESPACE_TTL = 5.0  # seconds a namespace's labels are reused (a label change is seen within this)


@dataclass(frozen=True)
class Admission:
    server: AdmissionServer
    settings: WebhookSettings
    certificates: Certificates


def hosts_for(settings: WebhookSettings) -> list[str]:
    """The names the serving certificate must hold: the Service's, and the URL's host when one is given."""
    names = [f"{SERVICE}.{settings.namespace}.svc", f"{SERVICE}.{settings.namespace}.svc.cluster.local"]
    host = urlsplit(settings.url).hostname if settings.url else None
    return [host, *names] if host else names


POD_SECURITY_KINDS = frozenset(
    {
        "Pod",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "ReplicationController",
        "PodTemplate",
        "Namespace",
    }
)


def start_admission(
    raw: RawApi, address: tuple[str, int], settings: WebhookSettings, judgement: Callable[[], Judgement | None],
    recorder: AdmissionRecorder, stop: threading.Event, *, pod_security: PodSecurity | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC), server_settings: Settings = DEFAULT,
    label_system_namespaces: bool = True, learn_identity: bool = True, me: str | None = None,
    namespaces: Callable[[str], KubeObject | None] | None = None,
) -> Admission:  # fmt: skip
    """Serve admission at ``address`` and keep its certificate and configurations until ``stop``. With the Pod
    Security seam, Pods and the workload kinds are always sent to us, whatever the policies target: the
    namespace labels hold without a single repository policy (red team)."""
    if pod_security is not None:
        settings = replace(settings, always=settings.always | POD_SECURITY_KINDS)
    hosts = hosts_for(settings)
    certificates = CertificateStore(raw, settings.namespace).ensure(hosts, datetime.now(UTC))
    server = AdmissionServer(address, certificates.context(), judgement, namespaces=namespaces or namespace_cache(raw),
                             observe=recorder.observe, clock=clock, pod_security=pod_security,
                             settings=server_settings)  # fmt: skip
    # Known up front in a Pod (the service account's name): the probe below goes through the Service and may
    # reach another replica, which cannot tell it from anyone's, so a replica could never learn who it is.
    server.me = me
    server.start()
    recorder.start(stop)
    kept = _Keeper(raw, settings, hosts, server, judgement, certificates, learn_identity, label_system_namespaces)
    kept.once()
    threading.Thread(target=kept.run, args=(stop,), name="admission-keeper", daemon=True).start()
    return Admission(server, settings, certificates)


class _Keeper:
    def __init__(
        self, raw: RawApi, settings: WebhookSettings, hosts: list[str], server: AdmissionServer,
        judgement: Callable[[], Judgement | None], certificates: Certificates, learn_identity: bool,
        label_system_namespaces: bool,
    ) -> None:  # fmt: skip
        self._raw, self._settings, self._hosts, self._server = raw, settings, hosts, server
        self._judgement, self._certificates, self._learn = judgement, certificates, learn_identity
        self._label = label_system_namespaces
        self._judged: Judgement | None = None  # what the configurations were last written for

    def run(self, stop: threading.Event) -> None:
        last = time.monotonic()
        while not stop.wait(1.0):
            current = self._judgement()
            changed = current is not None and current is not self._judged
            if self._learn and self._server.me is None:
                with contextlib.suppress(GitOpsGuardError):
                    self.introduce()
            if changed or time.monotonic() - last >= KEEP_EVERY:
                last = time.monotonic()
                with contextlib.suppress(GitOpsGuardError):  # the API server is away: again next round
                    self.once()
        self._server.stop()

    def once(self) -> None:
        if self._label:  # every round: gitopsguard-system may be created after we start (by the leader)
            label_exempt(self._raw)
        certificates = CertificateStore(self._raw, self._settings.namespace).ensure(self._hosts, datetime.now(UTC))
        if certificates != self._certificates:
            self._server.set_tls(certificates.context())
            self._certificates = certificates
        judged = self._judgement()
        policies = _every_policy(judged) if judged is not None else None  # its kinds: the object changes with them
        # nothing applied yet: cover every kind, each denied until there are policies (fail closed)
        # a Unit's policies are not read yet: their kinds are not known either, so every kind is sent (and refused)
        pending = judged is None or bool(judged.pending)
        kinds = kinds_for(policies, self._settings.always)[0] if policies is not None and not pending else EVERY_KIND
        kinds |= {"Namespace"}  # always: break glass is seen switching, and the server learns who we are
        mutated = mutated_kinds(policies) if policies is not None else frozenset()
        keep(self._raw, configurations(self._settings, kinds, certificates.bundle, mutated))
        self._judged = judged

    def introduce(self) -> None:
        """A dry-run create of a Namespace only this process names: our webhook sees it, with our user name.
        It carries the labels the configurations require (their ``In`` terms), so that it is sent to us."""
        labels = {t["key"]: t["values"][0] for t in self._settings.also_match if t.get("operator") == "In"}
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": WHOAMI + self._server.nonce, "labels": labels}}  # fmt: skip
        try:
            self._raw.call("POST", "/api/v1/namespaces", f"Namespace/{WHOAMI}{self._server.nonce}", body=body,
                           query={"dryRun": "All"})  # fmt: skip
        except UnreachableError:
            raise
        except ClusterError:  # our webhook may refuse it (or the server answer otherwise): seen is what counts
            pass


def _every_policy(judged: Judgement) -> PolicySet:
    """The root's policies and every Unit's own: the webhooks are sent every kind one of them targets (a Unit's
    Pod rule needs Pods sent, whatever the root's target)."""
    if judged.governance is None:
        return judged.policies
    return PolicySet(judged.governance.every_policy(), digest=judged.governance.digest)


Namespaces = Callable[[str], KubeObject | None]


def watched_namespaces(view: NamespaceView, read: Namespaces) -> Namespaces:
    """A namespace's object as the watch of every Namespace saw it last: a label change counts at once, not
    after NAMESPACE_TTL (a tenant's Pod created just after an operator tightened its namespace's enforce level
    was judged by the old one for up to 5 s). One not seen (just made, or the watch not in sync): ``read``.

    The watch's copy counts only when it is at least as new as ``read``'s (at most NAMESPACE_TTL old): a watch
    whose connection went silent stays "in sync" until its read timeout (WATCH_SECONDS + READ_SLACK, over 5
    minutes) and would serve labels an operator tightened since. None read (unreadable): None, as before."""

    def get(name: str) -> KubeObject | None:
        in_sync, seen = view.known(name)
        fallback = read(name)
        if not in_sync or seen is None or fallback is None:
            return fallback
        return seen if _version(seen) >= _version(fallback) >= 0 else fallback

    return get


def _version(namespace: KubeObject) -> int:
    """The object's resourceVersion as a number (etcd's revision, as the API server writes it), -1 otherwise."""
    version = (namespace.get("metadata") or {}).get("resourceVersion")
    if not isinstance(version, str) or not 0 < len(version) <= 20 or not (version.isascii() and version.isdigit()):
        return -1
    return int(version)


def namespace_cache(raw: RawApi) -> Callable[[str], KubeObject | None]:
    """A namespace's object, read at most every NAMESPACE_TTL seconds; None when it cannot be read."""
    cache: dict[str, tuple[float, KubeObject | None]] = {}
    lock = threading.Lock()

    def get(name: str) -> KubeObject | None:
        if not DNS_LABEL.fullmatch(name):  # it goes into a URL path; the API server's names are DNS labels
            return None
        with lock:
            hit = cache.get(name)
        if hit is not None and time.monotonic() - hit[0] < NAMESPACE_TTL:
            return hit[1]
        try:
            found: KubeObject | None = raw.get(f"/api/v1/namespaces/{name}", f"Namespace/{name}")
        except UnreachableError:
            return None
        except ClusterError:
            found = None
        with lock:
            if len(cache) > 10_000:  # names come from requests: bounded
                cache.clear()
            cache[name] = (time.monotonic(), found)
        return found

    return get
