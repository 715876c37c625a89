"""The node's network on the machine: its bridge, its iptables guard chains and the sysctls it changes.

Who could abuse a node on a developer's machine, and what stops them:

- **A Pod reaching loopback services** (the anonymous kubelet, etcd without auth): kube-proxy turns on
  ``net.ipv4.conf.all.route_localnet``, after which packets sent *to* 127.0.0.1 from another interface are
  routed to loopback listeners (CVE-2020-8558). The guard drops every packet for 127.0.0.0/8 that did not
  arrive on ``lo``.
- **Pod or Service traffic leaving the machine**: a Service IP that kube-proxy has not (yet) programmed would
  go out of the default route. The guard rejects forwarded Pod traffic that would leave by any interface but
  the bridge, and any packet still addressed to the Service range after kube-proxy's DNAT.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

from gitopsguard.devcluster.node_config import BRIDGE, BRIDGE_IP, POD_CIDR, SERVICE_CIDR
from gitopsguard.errors import DevClusterError

# sysctls the node (the CNI bridge plugin, kube-proxy) changes; `down` puts back what was there before.
CHANGED_SYSCTLS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.route_localnet")

# (table, built-in chain it hangs from, our chain, rules)
_GUARDS: tuple[tuple[str, str, str, tuple[tuple[str, ...], ...]], ...] = (
    ("filter", "INPUT", "GITOPSGUARD-NODE-IN", (("!", "-i", "lo", "-d", "127.0.0.0/8", "-j", "DROP"),)),
    ("filter", "FORWARD", "GITOPSGUARD-NODE-FWD", (
        ("-s", POD_CIDR, "!", "-o", BRIDGE, "-j", "REJECT"),
        ("-d", SERVICE_CIDR, "-j", "REJECT"),
    )),
    ("filter", "OUTPUT", "GITOPSGUARD-NODE-OUT", (("-d", SERVICE_CIDR, "-j", "REJECT"),)),
)  # fmt: skip
GUARD_CHAINS = tuple(chain for _, _, chain, _ in _GUARDS)
# `kube-proxy --cleanup` removes its service chains but leaves these (seen on 1.20.2 with iptables-nft): its
# canaries and the two marking chains. Only one node runs on a machine, so they are this node's.
LEFTOVER_CHAINS = ("KUBE-PROXY-CANARY", "KUBE-KUBELET-CANARY", "KUBE-MARK-DROP", "KUBE-MARK-MASQ")


def save_sysctls(path: Path) -> None:
    """Record the sysctls the node will change, once: a restart of a running node keeps the first record."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({name: read_sysctl(name) for name in CHANGED_SYSCTLS}, indent=2) + "\n")


def restore_sysctls(path: Path) -> None:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # nothing recorded: the node never changed anything
    for name in CHANGED_SYSCTLS:
        value = saved.get(name) if isinstance(saved, dict) else None
        if isinstance(value, str) and value.isdigit():
            write_sysctl(name, value)


def read_sysctl(name: str) -> str:
    return _sysctl_path(name).read_text().strip()


def write_sysctl(name: str, value: str) -> None:
    try:
        _sysctl_path(name).write_text(value + "\n")
    except OSError as error:
        raise DevClusterError(f"sysctl {name}: cannot set it to {value} ({error.strerror})") from error


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def ensure_bridge() -> None:
    """The Pods' bridge with its gateway address, made before the API server binds that address."""
    if not Path("/sys/class/net", BRIDGE).exists():
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"], f"bridge {BRIDGE}")
    addresses = _run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE], f"bridge {BRIDGE}")
    if f" {BRIDGE_IP}/" not in addresses:
        _run(["ip", "addr", "add", f"{BRIDGE_IP}/24", "dev", BRIDGE], f"bridge {BRIDGE}")
    _run(["ip", "link", "set", BRIDGE, "up"], f"bridge {BRIDGE}")


def remove_bridge() -> None:
    if Path("/sys/class/net", BRIDGE).exists():
        _run(["ip", "link", "delete", BRIDGE], f"bridge {BRIDGE}")


def ensure_guards() -> None:
    """Create (or refill) the guard chains and hang each first in its built-in chain.

    Called again once kube-proxy has synced: it prepends its own jumps (KUBE-FORWARD accepts some traffic
    outright), and it only ever checks that they exist, so ours, put back in front, stay in front."""
    for table, parent, chain, rules in _GUARDS:
        if not _iptables(table, "-n", "-L", chain, check=False):
            _iptables(table, "-N", chain)
        _iptables(table, "-F", chain)
        for rule in rules:
            _iptables(table, "-A", chain, *rule)
        if first_rule(table, parent) != f"-A {parent} -j {chain}":
            while _iptables(table, "-D", parent, "-j", chain, check=False):
                pass
            _iptables(table, "-I", parent, "1", "-j", chain)


# The jumps kube-proxy (iptables mode) hangs from the built-in chains once it has written its rules.
KUBE_PROXY_JUMPS = (("INPUT", "KUBE-EXTERNAL-SERVICES"), ("FORWARD", "KUBE-FORWARD"), ("FORWARD", "KUBE-SERVICES"),
                    ("OUTPUT", "KUBE-SERVICES"))  # fmt: skip


def kube_proxy_synced() -> bool:
    """Whether kube-proxy has written its rules: its health port answers 200 before its first sync."""
    listing = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True, check=False).stdout
    return all(
        any(line.startswith(f"-A {parent} ") and line.endswith(f"-j {chain}") for line in listing.splitlines())
        for parent, chain in KUBE_PROXY_JUMPS
    )


def first_rule(table: str, chain: str) -> str | None:
    listing = subprocess.run(["iptables", "-w", "-t", table, "-S", chain], capture_output=True, text=True, check=False)
    rules = [line for line in listing.stdout.splitlines() if line.startswith("-A ")]
    return rules[0] if rules else None


def remove_guards() -> None:
    for table, parent, chain, _ in _GUARDS:
        _remove_chain(table, chain, (parent,))
    for chain in LEFTOVER_CHAINS:
        for table in ("mangle", "nat", "filter"):
            _remove_chain(table, chain, ())


def _remove_chain(table: str, chain: str, parents: Sequence[str]) -> None:
    for parent in parents:
        while _iptables(table, "-D", parent, "-j", chain, check=False):
            pass
    if _iptables(table, "-n", "-L", chain, check=False):
        _iptables(table, "-F", chain)
        _iptables(table, "-X", chain, check=False)


def _iptables(table: str, *args: str, check: bool = True) -> bool:
    result = subprocess.run(["iptables", "-w", "-t", table, *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise DevClusterError(
            f"iptables -t {table} {' '.join(args)}: failed (exit {result.returncode}): {result.stderr.strip()}; "
            "the node's network guard is incomplete, run `gitopsguard dev-cluster down`"
        )
    return result.returncode == 0


def _run(command: list[str], what: str) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise DevClusterError(f"{what}: cannot run {command[0]} ({error.strerror}); install iproute2") from error
    if result.returncode != 0:
        raise DevClusterError(f"{what}: `{' '.join(command)}` failed (exit {result.returncode}): {result.stderr}")
    return result.stdout
